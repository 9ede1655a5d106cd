"""The repository catalog: which repos exist, their settings, and where their files are.

Rules:
- One SQLite file (``<data-dir>/catalog.sqlite``), one row per repo. The catalog knows
  names and settings; the repo's own SQLite file (``repos/<id[:2]>/<id>.sqlite``, stored
  relative to the data dir) knows refs and objects. Nothing here opens a repo file.
- A repo's ``id`` is 16 random hex digits, never reused: it keys the actor, the repo's
  tokens and its file, so a repo deleted and created again under the same name shares
  nothing with its predecessor.
- ``(namespace, name)`` is unique case-insensitively (``COLLATE NOCASE``); the case given
  at creation is kept for display.
- Methods are synchronous and thread-safe (one connection behind a lock); async callers
  use ``trio.to_thread``. Times are UTC microseconds (``gitserver.clock``).
- Forks (gitserver.forks): a fork's row names its parent (``forked_from``) and, until its
  file is made, its refs (``ref_set``, a row of ``ref_sets`` shared by every fork with the
  same refs). A deleted repo that forks still need moves to ``pools`` (no name, no
  tokens) until nothing names it as parent.
- Listing is keyset-paginated: the opaque cursor holds the last row's sort key and id,
  so pages stay stable while repos are created or deleted.
- ``path`` is the catalog file; gitserver.lookups watches its ``PRAGMA data_version``
  to validate the Git remote's caches.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitserver.clock import now_us

_SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    default_branch TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_push_at INTEGER,
    read_only INTEGER NOT NULL DEFAULT 0,
    public INTEGER NOT NULL DEFAULT 0,
    forked_from TEXT,
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, name)
);
CREATE INDEX IF NOT EXISTS repos_forked_from ON repos (forked_from);
CREATE TABLE IF NOT EXISTS ref_sets (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    forked_from TEXT,
    ref_set TEXT,
    default_branch TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pools_forked_from ON pools (forked_from);
"""
_COLUMNS = (
    "id, namespace, name, description, default_branch, created_at, updated_at, "
    "last_push_at, read_only, public, forked_from, path, size_bytes, object_count, ref_set"
)
# sort name -> SQL expression (NULL last_push_at sorts as 0, i.e. "never", first ascending)
SORTS: dict[str, str] = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "last_push_at": "COALESCE(last_push_at, 0)",
    "name": "name",
}


class CatalogError(Exception):
    """Root of catalog errors."""


class RepoExists(CatalogError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"repository {namespace}/{name} already exists")
        self.namespace = namespace
        self.name = name


class ParentGone(CatalogError):
    """A fork's parent was deleted before the fork's row could be written."""


class BadCursor(CatalogError):
    """A list cursor that this catalog did not produce (or for another sort)."""


@dataclass(frozen=True, slots=True)
class RepoRecord:
    id: str
    namespace: str
    name: str
    description: str
    default_branch: str  # short name, e.g. "main"
    created_at: int
    updated_at: int
    last_push_at: int | None
    read_only: bool
    public: bool
    forked_from: str | None  # the parent's repo id
    path: Path  # absolute path of the repo's SQLite file
    size_bytes: int = 0  # as of the last push seen by the server (GET recomputes)
    object_count: int = 0
    ref_set: str | None = None  # a fork whose file is not made yet: its refs (gitserver.forks)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def head_ref(self) -> str:
        return f"refs/heads/{self.default_branch}"


def _cursor_encode(sort: str, key: Any, repo_id: str) -> str:
    raw = json.dumps([sort, key, repo_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(sort: str, cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, key, repo_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise BadCursor("malformed cursor") from exc
    if got_sort != sort or not isinstance(repo_id, str) or not isinstance(key, int | str):
        raise BadCursor("cursor belongs to another listing")
    return key, repo_id


class Catalog:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "catalog.sqlite"
        self._lock = threading.Lock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # called with each new record after ``create`` (gitserver.catalog_mirror); errors logged
        self.on_create: Callable[[RepoRecord], None] | None = None
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(repos)")}
        if "ref_set" not in columns:  # catalogs made before lazy forks
            self._db.execute("ALTER TABLE repos ADD COLUMN ref_set TEXT")

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, under the catalog's lock (for
        gitserver.forks, whose decisions span several rows and tables)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _row(self, row: tuple[Any, ...]) -> RepoRecord:
        return RepoRecord(
            id=row[0],
            namespace=row[1],
            name=row[2],
            description=row[3],
            default_branch=row[4],
            created_at=row[5],
            updated_at=row[6],
            last_push_at=row[7],
            read_only=bool(row[8]),
            public=bool(row[9]),
            forked_from=row[10],
            path=self.data_dir / row[11],
            size_bytes=row[12],
            object_count=row[13],
            ref_set=row[14],
        )

    def create(
        self,
        namespace: str,
        name: str,
        *,
        description: str = "",
        default_branch: str = "main",
        read_only: bool = False,
        public: bool = False,
        forked_from: str | None = None,
        ref_set: str | None = None,
    ) -> RepoRecord:
        """Insert a new repo row (its file is the caller's job). Raises RepoExists, and
        ParentGone when ``forked_from`` names no live repo."""
        repo_id = secrets.token_hex(8)
        rel = f"repos/{repo_id[:2]}/{repo_id}.sqlite"
        now = now_us()
        with self._lock:
            try:
                cur = self._db.execute(
                    f"INSERT INTO repos ({_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, 0, 0, ? "
                    "WHERE ? IS NULL OR EXISTS (SELECT 1 FROM repos WHERE id = ?)",
                    (
                        repo_id,
                        namespace,
                        name,
                        description,
                        default_branch,
                        now,
                        now,
                        int(read_only),
                        int(public),
                        forked_from,
                        rel,
                        ref_set,
                        forked_from,
                        forked_from,
                    ),
                )
            except sqlite3.IntegrityError:
                raise RepoExists(namespace, name) from None
            if cur.rowcount == 0:
                raise ParentGone(f"repository {forked_from} no longer exists")
        record = self.get_by_id(repo_id)
        assert record is not None
        if self.on_create is not None:
            try:
                self.on_create(record)
            except Exception:  # the blob-store copy catches up at the next push or start
                logging.getLogger("gitserver.catalog").exception("could not mirror new repo %s", repo_id)
        return record

    def get(self, namespace: str, name: str) -> RepoRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM repos WHERE namespace = ? AND name = ?", (namespace, name)
            ).fetchone()
        return None if row is None else self._row(row)

    def get_by_id(self, repo_id: str) -> RepoRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM repos WHERE id = ?", (repo_id,)).fetchone()
        return None if row is None else self._row(row)

    def delete(self, repo_id: str) -> bool:
        """Remove the row; True when it existed. The file is the caller's job."""
        with self._lock:
            cur = self._db.execute("DELETE FROM repos WHERE id = ?", (repo_id,))
        return cur.rowcount > 0

    def set_default_branch(self, repo_id: str, branch: str) -> None:
        """Record the branch HEAD now names (an import can change it)."""
        with self._lock:
            self._db.execute("UPDATE repos SET default_branch = ? WHERE id = ?", (branch, repo_id))

    def note_push(self, repo_id: str, at_us: int | None, size_bytes: int, object_count: int) -> None:
        """Record the repo's state after a push: its newest ref update time (only ever
        moves ``last_push_at`` forward) and its size figures."""
        with self._lock:
            self._db.execute(
                "UPDATE repos SET size_bytes = ?, object_count = ? WHERE id = ?",
                (size_bytes, object_count, repo_id),
            )
            if at_us is not None:
                self._db.execute(
                    "UPDATE repos SET last_push_at = ?, updated_at = MAX(updated_at, ?) "
                    "WHERE id = ? AND (last_push_at IS NULL OR last_push_at < ?)",
                    (at_us, at_us, repo_id, at_us),
                )

    def list_page(
        self,
        namespace: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        search: str | None = None,
        sort: str = "created_at",
        descending: bool = False,
    ) -> tuple[list[RepoRecord], str | None]:
        """One page of a namespace's repos and the cursor of the next page (None at the end).

        ``search`` matches a substring of the name, case-insensitively. Raises BadCursor,
        and ValueError for an unknown ``sort``."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        expr = SORTS[sort]
        where = ["namespace = ?"]
        args: list[Any] = [namespace]
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        op = "<" if descending else ">"
        if cursor:
            key, last_id = _cursor_decode(sort, cursor)
            where.append(f"({expr} {op} ? OR ({expr} = ? AND id {op} ?))")
            args += [key, key, last_id]
        order = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {_COLUMNS}, {expr} FROM repos WHERE {' AND '.join(where)} "
            f"ORDER BY {expr} {order}, id {order} LIMIT ?"
        )
        args.append(limit + 1)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _cursor_encode(sort, rows[-1][-1], rows[-1][0]) if more and rows else None
        return [self._row(r[:-1]) for r in rows], next_cursor

    def forks_of(self, repo_id: str) -> list[RepoRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM repos WHERE forked_from = ? ORDER BY created_at", (repo_id,)
            ).fetchall()
        return [self._row(r) for r in rows]

    def count(self) -> int:
        """How many repos exist (for the hibernated-actors gauge)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM repos").fetchone()[0])
