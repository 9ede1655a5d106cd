"""A byte-bounded LRU cache of resolved object contents.

Rules:
- The bound is on the sum of ``len(value)``; an entry larger than the whole bound is not
  cached at all (it would evict everything for one use).
- Not thread-safe: one cache per RepoStore or per ingest, used by one thread at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ByteLRU(Generic[K]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[K, tuple[int, bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> tuple[int, bytes] | None:
        """The cached ``(type, data)`` for ``key``, marking it recently used; None if absent."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: K, type_: int, data: bytes) -> None:
        size = len(data)
        if size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= len(old[1])
        self._items[key] = (type_, data)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= len(evicted)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
