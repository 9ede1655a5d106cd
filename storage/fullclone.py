"""When a fetch is a full clone of the whole store, so pack reuse can send it verbatim.

Rules:
- A request qualifies when it is "plain" (no haves, no shallow boundary or deepen, no
  filter, ofs-delta taken) on a store without alternates, and the objects it needs are
  exactly every stored object. The last fact is read from meta when a push recorded it
  (below); otherwise it costs a walk, whose verdict is remembered process-wide (so it
  survives hibernation and serves every read connection), keyed by the store path, the
  exact refs state, the wants, include-tag and the object count. Any push, ref move or
  commit-API write changes the key, so a verdict is never stale.
- A ``blob:none`` request with the same wants shares the verdict: on a "yes" it is every
  stored commit, tree and tag, listed from the objects table in stored order.
- A recorded or remembered "yes" skips the walk entirely: pack reuse with no per-object
  work. A remembered "no" (dead entries) wins over the recorded fact.
- The memo is a bounded LRU guarded by a lock (worker threads share it).
- The push-time fact: meta ``whole_reachable`` holds ``state_digest(refs, object count)``
  of a refs state at which every stored object is reachable from the refs. Only a push
  that proves it without a walk writes it, in the push transaction (RepoStore.receive);
  any other write changes the refs or the count, so a stale row never matches. A plain
  request whose wants cover every ref value of that state needs the whole store: no walk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from storage.model import Oid, PackRequest

if TYPE_CHECKING:
    import sqlite3

MAX_VERDICTS = 4096
META_KEY = "whole_reachable"

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


# -- the push-time fact ------------------------------------------------------------------


def state_digest(refs: dict[str, Oid], object_count: int) -> bytes:
    """Digest of one refs state and object count: the key of the push-time fact."""
    h = hashlib.sha1(b"whole-reachable\0c%d" % object_count)
    for name in sorted(refs):
        h.update(b"\0r" + name.encode() + b"\0" + refs[name])
    return h.digest()


def recorded_whole(conn: sqlite3.Connection, refs: dict[str, Oid], object_count: int) -> bool:
    """True when meta says every stored object is reachable from exactly ``refs`` with
    ``object_count`` objects stored (an empty store with no refs trivially is)."""
    if object_count == 0 and not refs:
        return True
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
    return row is not None and isinstance(row[0], bytes) and row[0] == state_digest(refs, object_count)


def has_record(conn: sqlite3.Connection) -> bool:
    """Whether some state's fact is recorded at all (cheaper than matching it)."""
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (META_KEY,)).fetchone() is not None


def record_whole(conn: sqlite3.Connection, refs: dict[str, Oid], object_count: int | None) -> None:
    """Write the fact for this state (``None``: drop it). The caller holds the write transaction."""
    if object_count is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (META_KEY,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            (META_KEY, state_digest(refs, object_count)),
        )


def wants_every_ref(request: PackRequest, refs: dict[str, Oid]) -> bool:
    """The wants name every ref value (so on a whole-reachable store, every object is needed)."""
    return bool(refs) and set(refs.values()) <= set(request.wants)
