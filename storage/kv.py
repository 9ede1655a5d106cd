"""The key-value store contract (tokens, and later leases and cluster state).

Rules:
- Keys are ``str``; values are ``bytes``. Keys sort by code point (UTF-8 byte order), and
  ``scan`` returns them in that order.
- Methods are synchronous, blocking and thread-safe: async code calls them through
  ``trio.to_thread.run_sync`` (with the server's ``CapacityLimiter``). No backend keeps an
  event loop of its own.
- A key whose TTL has passed is absent for every method (``get``, ``scan``,
  ``compare_and_set``), whether or not the backend has reclaimed it yet.
- ``set`` and ``delete`` are idempotent. Nothing raises for a missing key; backend
  failures (connection lost, disk full) raise ``KVError``.
- ``compare_and_set`` is atomic against every other writer of the same store, including
  other processes sharing it (the SQLite file, the Redis server).

Backends: ``storage.kv_sqlite`` (``sqlite:///PATH``), ``storage.kv_redis``
(``redis://HOST:PORT/DB``). ``open_kv`` picks one from a URL;
adding a backend is one entry in ``_BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from storage.errors import StorageError


class KVError(StorageError):
    """The KV backend failed (not: a key is missing)."""


class KV(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value and any previous TTL.

        ``ttl`` is in seconds (> 0); None keeps the key until it is deleted."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when a live value was removed, False when there was none."""
        ...

    def scan(self, prefix: str, *, limit: int | None = None) -> list[tuple[str, bytes]]:
        """Every live ``(key, value)`` whose key starts with ``prefix``, sorted by key,
        at most ``limit`` of them. An empty prefix scans everything."""
        ...

    def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes | None, *, ttl: float | None = None
    ) -> bool:
        """Atomically: if the current value equals ``expected`` (None = absent or expired),
        replace it by ``new`` (None = delete) with ``ttl``, and return True; otherwise
        change nothing and return False."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent; the store is unusable afterwards."""
        ...


def _open_sqlite(rest: str) -> KV:
    from storage.kv_sqlite import SqliteKV

    return SqliteKV(rest)


def _open_redis(rest: str) -> KV:
    from storage.kv_redis import RedisKV

    return RedisKV.from_url("redis://" + rest)


# scheme -> opener(rest of the URL after "scheme://")
_BACKENDS: dict[str, Callable[[str], KV]] = {
    "sqlite": _open_sqlite,
    "redis": _open_redis,
}


def open_kv(url: str) -> KV:
    """Open the store named by ``url``.

    ``sqlite:///abs/path.sqlite`` (three slashes: an absolute path) or
    ``sqlite://relative/path.sqlite``. Raises ValueError for an unknown scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _BACKENDS:
        raise ValueError(f"unsupported KV URL {url!r} (known: {', '.join(sorted(_BACKENDS))})")
    return _BACKENDS[scheme](rest)
