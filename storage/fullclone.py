"""When a fetch is a full clone of the whole store, so pack reuse can send it verbatim.

Rules:
- A request qualifies when it is "plain" (no haves, no shallow boundary or deepen, no
  filter, ofs-delta taken) on a store without alternates, and the objects it needs are
  exactly every stored object. The last fact costs a walk; its verdict is remembered
  process-wide (so it survives hibernation and serves every read connection), keyed by
  the store path, the exact refs state, the wants, include-tag and the object count.
  Any push, ref move or commit-API write changes the key, so a verdict is never stale.
- A ``blob:none`` request with the same wants shares the verdict: on a "yes" it is every
  stored commit, tree and tag, listed from the objects table in stored order.
- A remembered "yes" skips the walk entirely: the first full clone after a change pays
  one walk, later ones stream stored packs with no per-object work.
- The memo is a bounded LRU guarded by a lock (worker threads share it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict

from storage.model import Oid, PackRequest

MAX_VERDICTS = 4096

_lock = threading.Lock()
_verdicts: OrderedDict[bytes, bool] = OrderedDict()


def is_plain(request: PackRequest) -> bool:
    """No haves, no shallow or deepen, no filter, and ofs-delta: a candidate full clone."""
    return (
        request.ofs_delta
        and not request.haves
        and not request.client_shallows
        and not request.is_shallow_request
        and request.filter is None
    )


def unfiltered(request: PackRequest) -> PackRequest | None:
    """The full-clone request behind ``request``: itself when plain, the same without its
    filter for a plain ``blob:none`` request (whose answer is then "every commit, tree and
    tag"), else None."""
    if request.filter is None:
        return request if is_plain(request) else None
    if request.filter.kind != "blob:none":
        return None
    bare = dataclasses.replace(request, filter=None)
    return bare if is_plain(bare) else None


def verdict_key(path: str, refs: dict[str, Oid], request: PackRequest, object_count: int) -> bytes:
    h = hashlib.sha1(path.encode())
    for name in sorted(refs):
        h.update(b"\0r" + name.encode() + b"\0" + refs[name])
    h.update(b"\0w")
    for oid in sorted(set(request.wants)):
        h.update(oid)
    h.update(b"\0t%d\0c%d" % (request.include_tag, object_count))
    return h.digest()


def known(key: bytes) -> bool | None:
    """The remembered verdict for ``key`` (True: the request needs every stored object)."""
    with _lock:
        verdict = _verdicts.get(key)
        if verdict is not None:
            _verdicts.move_to_end(key)
        return verdict


def remember(key: bytes, verdict: bool) -> None:
    with _lock:
        _verdicts[key] = verdict
        _verdicts.move_to_end(key)
        while len(_verdicts) > MAX_VERDICTS:
            _verdicts.popitem(last=False)
