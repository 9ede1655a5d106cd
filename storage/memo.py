"""Process-wide memos of immutable facts about stored objects, shared by every
connection and surviving hibernation.

Rules:
- Only facts that can never change are kept: what an object id peels to (an object's
  content is fixed by its id). Keys include the store's path, so stores never mix; a
  deleted repo's entries just age out.
- Absence is never remembered (an object may be pushed later).
- Bounded LRU (``MAX_ENTRIES``) behind a lock: worker threads share it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from storage.model import Oid

MAX_ENTRIES = 1 << 16

_MISSING = object()
_lock = threading.Lock()
_peeled: OrderedDict[tuple[str, Oid], Oid | None] = OrderedDict()


def peeled(path: str, oid: Oid) -> Oid | object | None:
    """What ``oid`` peels to in the store at ``path`` (None: not a tag); ``MISSING`` if unknown."""
    with _lock:
        found = _peeled.get((path, oid), _MISSING)
        if found is not _MISSING:
            _peeled.move_to_end((path, oid))
        return found


def remember_peeled(path: str, oid: Oid, target: Oid | None) -> None:
    with _lock:
        _peeled[(path, oid)] = target
        _peeled.move_to_end((path, oid))
        while len(_peeled) > MAX_ENTRIES:
            _peeled.popitem(last=False)


MISSING = _MISSING
