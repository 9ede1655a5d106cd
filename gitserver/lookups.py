"""The Git remote's per-request lookups (token, catalog record), cached in the event loop.

Rules:
- ``Lookups.resolve(header, ns, name)`` returns the caller's live token (None for
  anonymous) and the repo's catalog record (None when there is none), exactly what
  ``auth.authenticate`` plus ``Catalog.get`` would: 401 for bad credentials is raised
  the same way. A hit costs no worker thread; a miss does both lookups in one thread hop.
- Only positive results are cached (a live token, an existing repo), at most
  ``MAX_ENTRIES`` of each; a cached token is re-checked against its ``expires_at`` on
  every use.
- Never stale, across processes too: every entry was filled under a version pair
  (the catalog file's and the KV file's ``PRAGMA data_version``, each read on a
  read-only connection of its own: a few microseconds, no I/O with WAL), read on every
  request before the cache is consulted; any commit to either file since (a revocation,
  a repo deleted, renamed or updated, a token minted, by this process or another one
  sharing the files, e.g. the offline CLI) changes the pair and empties the cache. So a
  revoked token is refused, and a deleted repo gone, on the next request, as SPEC says.
- Token caching needs that version: with a KV store that has none (Redis, whose keys
  other processes change) tokens are verified in the KV store on every request; catalog
  records are still cached. When a version cannot be read, nothing is cached.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from gitserver.auth import credentials
from gitserver.catalog import Catalog, RepoRecord
from gitserver.clock import now_us
from gitserver.errors import unauthorized
from gitserver.tokens import TokenInfo, TokenStore, token_hash

if TYPE_CHECKING:
    from storage.kv import KV

log = logging.getLogger(__name__)

MAX_ENTRIES = 4096


class _FileVersion:
    """``PRAGMA data_version`` of a SQLite file, on a read-only connection of its own."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._db: sqlite3.Connection | None = None

    def __call__(self) -> int:
        """Changes after any commit to the file by another connection (any process)."""
        if self._db is None:
            uri = self._path.resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=0.05, isolation_level=None)
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _kv_version(kv: KV) -> _FileVersion | None:
    from storage.kv_sqlite import SqliteKV

    return _FileVersion(str(kv.path)) if isinstance(kv, SqliteKV) else None


class Lookups:
    """See the module rules. Used from the event loop only."""

    def __init__(self, tokens: TokenStore, catalog: Catalog, limiter: trio.CapacityLimiter) -> None:
        self._tokens = tokens
        self._catalog = catalog
        self._limiter = limiter
        self._catalog_version = _FileVersion(catalog.path)
        self._kv_version = _kv_version(tokens.kv)
        self._version: tuple[int, int] | None = None
        self._by_hash: dict[str, TokenInfo] = {}
        self._records: dict[tuple[str, str], RepoRecord] = {}
        self.hits = 0
        self.misses = 0

    def _current(self) -> tuple[int, int] | None:
        """The version pair now, emptying the cache when it moved; None: cache unusable."""
        try:
            version = (self._catalog_version(), self._kv_version() if self._kv_version else 0)
        except sqlite3.Error as exc:
            log.warning("cannot read the catalog or KV version, not caching: %s", exc)
            version = None
        if version != self._version or version is None:
            self._by_hash.clear()
            self._records.clear()
            self._version = version
        return version

    async def resolve(
        self, header: str | None, ns: str, name: str
    ) -> tuple[TokenInfo | None, RepoRecord | None]:
        secret = credentials(header)  # raises 401 for an unusable header
        version = self._current()
        key = (ns.lower(), name.lower())
        digest = token_hash(secret) if secret is not None else None
        token = None
        if digest is not None and self._kv_version is not None:
            token = self._by_hash.get(digest)
            if token is not None and token.expires_at is not None and token.expires_at <= now_us():
                del self._by_hash[digest]
                token = None
        record = self._records.get(key)
        if (secret is None or token is not None) and record is not None:
            self.hits += 1
            return token, record
        self.misses += 1
        token, record = await trio.to_thread.run_sync(self._lookup, secret, ns, name, limiter=self._limiter)
        if secret is not None and token is None:
            raise unauthorized("invalid, expired or revoked token")
        if version is not None and version == self._version:  # nothing moved meanwhile
            if len(self._by_hash) >= MAX_ENTRIES or len(self._records) >= MAX_ENTRIES:
                self._by_hash.clear()
                self._records.clear()
            if token is not None and digest is not None and self._kv_version is not None:
                self._by_hash[digest] = token
            if record is not None:
                self._records[key] = record
        return token, record

    def _lookup(self, secret: str | None, ns: str, name: str) -> tuple[TokenInfo | None, RepoRecord | None]:
        token = self._tokens.verify(secret) if secret is not None else None
        record = self._catalog.get(ns, name) if secret is None or token is not None else None
        return token, record

    def close(self) -> None:
        self._catalog_version.close()
        if self._kv_version is not None:
            self._kv_version.close()
