"""What v0 and v2 upload-pack share: checking wants, resolving deepen-not names, and
streaming the pack through side-band.

Rules:
- Every want must pass ``repo.is_want_allowed``; the first that does not raises NotOurRef.
- A deepen-not name resolves as git's ref "dwim" rules do (``X``, ``refs/X``,
  ``refs/tags/X``, ``refs/heads/X``, ``refs/remotes/X``, ``refs/remotes/X/HEAD``), the
  first hit wins; a full object id is taken as is. Nothing found raises.
- ``send_pack`` hands ``write_pack`` a side-band writer; an error while the pack is
  being written goes to channel 3 (a GitUserError's message, else a generic text), and
  non-user errors are re-raised for the caller to log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from smart_http.backend import GitRepository
from smart_http.errors import NotOurRef, RemoteProtocolError
from smart_http.output import CoalescingWriter, SidebandWriter
from storage.errors import GitUserError
from storage.model import Oid, PackRequest, Ref, ShallowUpdate

log = logging.getLogger(__name__)

_HEX40 = re.compile(r"[0-9a-fA-F]{40}\Z")
_DWIM = ("{}", "refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")


def check_wants(repo: GitRepository, wants: Iterable[Oid]) -> None:
    for oid in wants:
        if not repo.is_want_allowed(oid):
            raise NotOurRef(oid.hex())


def resolve_deepen_not(refs: Sequence[Ref], names: Sequence[str]) -> list[Oid]:
    by_name = {r.name: r.oid for r in refs}
    out: list[Oid] = []
    for name in names:
        for rule in _DWIM:
            oid = by_name.get(rule.format(name))
            if oid is not None:
                out.append(oid)
                break
        else:
            if not _HEX40.match(name):
                raise RemoteProtocolError(f"git upload-pack: ambiguous deepen-not: {name[:200]}")
            out.append(bytes.fromhex(name))
    return out


def common_haves(repo: GitRepository, haves: Iterable[Oid]) -> list[Oid]:
    """The haves we also have, in the client's order, without repeats."""
    return [oid for oid in dict.fromkeys(haves) if repo.has_object(oid)]


def send_pack(
    repo: GitRepository,
    request: PackRequest,
    shallow: ShallowUpdate | None,
    out: CoalescingWriter,
    *,
    sideband_max: int | None,
    progress: bool,
) -> None:
    """Stream the pack; with side-band, end with a flush. Re-raises non-user errors."""
    sb = SidebandWriter(out, sideband_max, progress=progress)
    try:
        repo.write_pack(request, shallow, sb.data, sb.progress if progress else None)
    except GitUserError as exc:
        sb.error(f"upload-pack: {exc}")
        return
    except Exception:
        sb.error("upload-pack: internal server error")
        raise
    sb.flush()
    if sideband_max is not None:
        out.write(b"0000")
