"""The SQLite backend of the KV contract (``storage.kv.KV``): one table in one file.

How it works:
- ``kv(key TEXT PRIMARY KEY, value BLOB, expires_at REAL)``; ``expires_at`` is a unix time
  in seconds or NULL. Every read filters on it, so an expired row is invisible at once;
  expired rows are deleted in bulk every few hundred writes.
- One connection, shared by the threads that call in, serialized by a ``threading.Lock``
  (SQLite connections are not safe for concurrent use). Other processes (the offline CLI
  next to a running server) share the file through WAL and a busy timeout.
- ``compare_and_set`` runs in a ``BEGIN IMMEDIATE`` transaction, which takes SQLite's
  write lock before reading, so it is atomic across processes too.
- Prefix scans use a key range ``[prefix, successor(prefix))``: SQLite compares TEXT with
  memcmp on UTF-8, which orders like code points, so the range is exactly the prefix.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from storage.kv import KVError

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)"
_PURGE_EVERY = 256
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``; None if unbounded."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be encoded; skip past them
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl}")


class SqliteKV:
    """``storage.kv.KV`` on one SQLite file (created with its directory if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        """Open (or create) the store; ``clock`` gives unix seconds (tests pass a fake one)."""
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise KVError(f"cannot open KV store {self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise KVError("KV store is closed")
        return self._db

    def get(self, key: str) -> bytes | None:
        with self._lock:
            try:
                row = (
                    self._conn()
                    .execute(f"SELECT value FROM kv WHERE key = ? AND {_LIVE}", (key, self._clock()))
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise KVError(str(exc)) from exc
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        expires = None if ttl is None else self._clock() + ttl
        with self._lock:
            try:
                self._conn().execute(
                    "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                    (key, bytes(value), expires),
                )
                self._after_write()
            except sqlite3.Error as exc:
                raise KVError(str(exc)) from exc

    def delete(self, key: str) -> bool:
        with self._lock:
            try:
                cur = self._conn().execute(f"DELETE FROM kv WHERE key = ? AND {_LIVE}", (key, self._clock()))
                removed = cur.rowcount > 0
                # an expired row may linger under the key; it is dead either way
                self._conn().execute("DELETE FROM kv WHERE key = ?", (key,))
                self._after_write()
            except sqlite3.Error as exc:
                raise KVError(str(exc)) from exc
        return removed

    def scan(self, prefix: str, *, limit: int | None = None) -> list[tuple[str, bytes]]:
        upper = _successor(prefix)
        sql = f"SELECT key, value FROM kv WHERE key >= ? AND {_LIVE}"
        args: list[object] = [prefix, self._clock()]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key"
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must be >= 0")
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            try:
                rows = self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise KVError(str(exc)) from exc
        return [(str(k), bytes(v)) for k, v in rows]

    def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes | None, *, ttl: float | None = None
    ) -> bool:
        _check_ttl(ttl)
        expires = None if ttl is None else self._clock() + ttl
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(
                        f"SELECT value FROM kv WHERE key = ? AND {_LIVE}", (key, self._clock())
                    ).fetchone()
                    current = None if row is None else bytes(row[0])
                    if current != (None if expected is None else bytes(expected)):
                        db.execute("ROLLBACK")
                        return False
                    if new is None:
                        db.execute("DELETE FROM kv WHERE key = ?", (key,))
                    else:
                        db.execute(
                            "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                            (key, bytes(new), expires),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                self._after_write()
            except sqlite3.Error as exc:
                raise KVError(str(exc)) from exc
        return True

    def _after_write(self) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._conn().execute(
                "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),)
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
