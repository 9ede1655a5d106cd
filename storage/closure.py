"""The closure check of one ingest: every object a new object names must be stored.

Rules:
- New commits, trees and tags are parsed (storage.objlinks) as resolution produces them;
  their links go to the ``links`` TEMP table in batches, never into an unbounded set. A
  bounded window of recent (target, type) pairs drops repeats before SQL sees them: the
  trees of consecutive commits name mostly the same blobs (4x fewer rows on real history).
- After resolution one anti-join against ``objects`` finds links to absent objects and
  one join finds links to objects of the wrong type. Only the few links absent from this
  store are looked up in the alternates.
- Gitlinks (mode 160000) are not links: they name commits of other repositories.
- ``unnamed(pack_id)`` lists the new objects (``objects`` rows of this pack) that no object
  of the pack names: the tips of the pushed history. When they are all pushed ref values,
  every new object is reachable from the refs (storage.fullclone uses that to keep its
  "whole store reachable" fact across a push without a walk).
- A commit listed in the ``shallow`` table (a shallow repository's boundary) may name
  absent parents; every other missing link is still an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from storage.errors import MissingObject, ObjectCorrupt
from storage.model import ObjType, Oid
from storage.objlinks import links

LINKS_DDL = ("CREATE TEMP TABLE links(src BLOB NOT NULL, oid BLOB NOT NULL, type INTEGER NOT NULL)",)

# Type of an object found only in an alternate store, or None.
AlternateType = Callable[[Oid], ObjType | None]

_BATCH = 5000
_RECENT = 1 << 16  # bound of the window in which repeated links are dropped


class ClosureCheck:
    def __init__(self, conn: sqlite3.Connection, alternate_type: AlternateType) -> None:
        self._conn = conn
        self._alternate_type = alternate_type
        self._pending: list[tuple[Oid, Oid, int]] = []
        self._recent: dict[Oid, int] = {}  # links recorded lately: target -> type

    def add(self, oid: Oid, obj_type: int, data: bytes) -> None:
        """Validate a new object and record what it names. Raises ObjectCorrupt."""
        recent, pending = self._recent, self._pending
        for target, t in links(obj_type, data, oid):
            if recent.get(target) == t:
                continue  # the same link again (an unchanged file in the next commit's tree)
            if len(recent) >= _RECENT:
                recent.clear()
            recent[target] = t
            pending.append((oid, target, t))
        if len(pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._conn.executemany("INSERT INTO links(src, oid, type) VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def check(self) -> None:
        """Raise MissingObject or ObjectCorrupt unless every recorded link is satisfied."""
        self._flush()
        conn = self._conn
        wrong = conn.execute(
            "SELECT l.src, l.oid, l.type, o.type FROM links l JOIN objects o ON o.oid = l.oid"
            " WHERE o.type != l.type LIMIT 1"
        ).fetchone()
        if wrong is not None:
            src, oid, want, got = wrong
            raise ObjectCorrupt(
                f"object {bytes(src).hex()} names {bytes(oid).hex()} as a {ObjType(want).name.lower()},"
                f" but it is a {ObjType(got).name.lower()}",
                bytes(src),
            )
        cur = conn.execute(
            "SELECT l.src, l.oid, l.type FROM links l LEFT JOIN objects o ON o.oid = l.oid WHERE o.oid IS NULL"
            " AND NOT (l.type = ? AND l.src IN (SELECT oid FROM shallow))",
            (int(ObjType.COMMIT),),
        )
        for src, oid, want in cur:
            oid = bytes(oid)
            got = self._alternate_type(oid)
            if got is None:
                raise MissingObject(oid, f"(named by {bytes(src).hex()})")
            if got != want:
                raise ObjectCorrupt(
                    f"object {bytes(src).hex()} names {oid.hex()} with the wrong type", bytes(src)
                )

    def unnamed(self, pack_id: int, limit: int) -> list[Oid] | None:
        """New objects of pack ``pack_id`` that no object of the pack names; None when there
        are more than ``limit`` of them. Call after ``check``."""
        self._flush()
        rows = self._conn.execute(
            "SELECT oid FROM objects WHERE pack_id = ? EXCEPT SELECT oid FROM links LIMIT ?",
            (pack_id, limit + 1),
        ).fetchall()
        if len(rows) > limit:
            return None
        return [bytes(r[0]) for r in rows]
