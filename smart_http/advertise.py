"""Serializers of ref and capability advertisements (gitprotocol-http "Smart Server
Response", gitprotocol-pack "Reference Discovery", gitprotocol-v2 "Capability
Advertisement" and ``ls-refs``).

Rules:
- Pure functions from ``storage.model.Ref`` lists to bytes; no repository access.
- v0/v1: the first ref carries the capability list after NUL; an empty list of refs is
  advertised as ``capabilities^{}`` with the zero id. upload-pack shows HEAD (first) and
  the peeled ``^{}`` line right after each annotated tag; receive-pack shows neither.
  A shallow repository's upload-pack advertisement ends with ``shallow <id>`` lines,
  one per shallow commit of the repository, before the flush (as git's).
- Over HTTP a v0/v1 answer starts with ``# service=<name>`` and a flush; a v2 answer
  does not (as git http-backend).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from smart_http.capabilities import v0_capability_line, v2_capabilities
from smart_http.pktline import pkt, pkt_text
from storage.model import ZERO_HEX, Oid, Ref

FLUSH_PKT = b"0000"


def service_preamble(service: str) -> bytes:
    return pkt_text(f"# service={service}") + FLUSH_PKT


def head_target_of(refs: Sequence[Ref]) -> str | None:
    for ref in refs:
        if ref.name == "HEAD":
            return ref.symref_target
    return None


def v0_advertisement(
    refs: Sequence[Ref],
    service: str,
    *,
    version: int = 0,
    session_id: str | None = None,
    shallow: Sequence[Oid] = (),
) -> bytes:
    """The pkt-line ref advertisement (without the HTTP service preamble); ``shallow``
    are the repository's own shallow commits (shown by upload-pack only)."""
    upload = service == "git-upload-pack"
    shown = [r for r in refs if upload or r.name != "HEAD"]
    caps = v0_capability_line(service, head_target=head_target_of(refs), session_id=session_id)
    out = [pkt_text("version 1")] if version == 1 else []
    if not shown:
        out.append(pkt(ZERO_HEX + b" capabilities^{}\0" + caps + b"\n"))
    for i, ref in enumerate(shown):
        line = ref.oid.hex().encode() + b" " + ref.name.encode()
        out.append(pkt(line + (b"\0" + caps if i == 0 else b"") + b"\n"))
        if upload and ref.peeled is not None:
            out.append(pkt(ref.peeled.hex().encode() + b" " + ref.name.encode() + b"^{}\n"))
    if upload and shown:
        out.extend(pkt(b"shallow " + oid.hex().encode() + b"\n") for oid in shallow)
    out.append(FLUSH_PKT)
    return b"".join(out)


def v2_advertisement(*, object_info: bool, session_id: str | None = None) -> bytes:
    lines = ["version 2", *v2_capabilities(object_info=object_info, session_id=session_id)]
    return b"".join(pkt_text(line) for line in lines) + FLUSH_PKT


def ls_refs_lines(
    refs: Iterable[Ref],
    *,
    peel: bool,
    symrefs: bool,
    prefixes: Sequence[str] = (),
    unborn_head: str | None = None,
) -> bytes:
    """The ls-refs response body, flush included. ``unborn_head`` is the symref target of
    an unborn HEAD, to be shown only when the client sent ``unborn``."""
    out: list[bytes] = []

    def wanted(name: str) -> bool:
        return not prefixes or any(name.startswith(p) for p in prefixes)

    if unborn_head is not None and wanted("HEAD"):
        out.append(pkt_text(f"unborn HEAD symref-target:{unborn_head}"))
    for ref in refs:
        if not wanted(ref.name):
            continue
        line = f"{ref.oid.hex()} {ref.name}"
        if symrefs and ref.symref_target is not None:
            line += f" symref-target:{ref.symref_target}"
        if peel and ref.peeled is not None:
            line += f" peeled:{ref.peeled.hex()}"
        out.append(pkt_text(line))
    out.append(FLUSH_PKT)
    return b"".join(out)
