"""Driver for ``GET info/refs?service=...``: the ref or capability advertisement.

Rules:
- Only the two smart services are served; anything else raises UnsupportedRequest with
  HTTP status 403 (gitprotocol-http "Smart Server Response").
- Protocol v2 is spoken for upload-pack only; receive-pack always answers v0 (git does
  the same, and the client then falls back).
- A shallow repository (``HasShallowRoots``) lists its shallow commits at the end of the
  v0/v1 upload-pack advertisement, as git's upload-pack does.
"""

from __future__ import annotations

from smart_http.advertise import service_preamble, v0_advertisement, v2_advertisement
from smart_http.backend import GitRepository
from smart_http.errors import UnsupportedRequest
from smart_http.extensions import HasObjectSize, HasShallowRoots

SERVICES = ("git-upload-pack", "git-receive-pack")


def protocol_version(git_protocol: str | None) -> int:
    """The version asked for in a ``Git-Protocol`` header (colon separated key=value
    parameters, unknown keys ignored); 0 when absent or unrecognised."""
    version = 0
    for param in (git_protocol or "").split(":"):
        key, _, value = param.strip().partition("=")
        if key == "version" and value in ("1", "2"):
            version = max(version, int(value))
    return version


def effective_version(service: str, requested: int) -> int:
    return requested if service == "git-upload-pack" else min(requested, 1)


def advertise_refs(repo: GitRepository, service: str, version: int = 0) -> bytes:
    """The whole info/refs response body. Raises UnsupportedRequest for an unknown service."""
    if service not in SERVICES:
        raise UnsupportedRequest(f"unsupported service {service[:60]!r}", http_status=403)
    version = effective_version(service, version)
    if version == 2:
        return v2_advertisement(object_info=isinstance(repo, HasObjectSize))
    shallow = []
    if service == "git-upload-pack" and isinstance(repo, HasShallowRoots):
        shallow = repo.shallow_roots()
    refs = v0_advertisement(repo.list_refs(), service, version=version, shallow=shallow)
    return service_preamble(service) + refs
