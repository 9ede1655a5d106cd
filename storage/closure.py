"""The closure check of one ingest: every object a new object names must be stored.

Rules:
- Links are gathered by native.DeltaResolver as objects resolve (trees parsed in C,
  commits and tags by storage.resolve through storage.objlinks); each distinct target
  is kept once, in C, with the type it is named as and the first object naming it.
- After resolution: a link to an object of the pack (or a thin base) of another type is
  ObjectCorrupt; the links to ids outside the pack go to the ``links`` TEMP table in
  batches, and one join against ``objects`` finds wrong types, one anti-join absent
  objects. Only the few links absent from this store are looked up in the alternates.
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

import native
from storage.errors import MissingObject, ObjectCorrupt
from storage.model import ObjType, Oid

LINKS_DDL = (
    "CREATE TEMP TABLE links(src BLOB NOT NULL, oid BLOB NOT NULL, type INTEGER NOT NULL)",
    "CREATE TEMP TABLE unnamed(oid BLOB NOT NULL)",
)
DROP_DDL = ("DROP TABLE IF EXISTS temp.links", "DROP TABLE IF EXISTS temp.unnamed")

# Type of an object found only in an alternate store, or None.
AlternateType = Callable[[Oid], ObjType | None]


def _wrong_type(src: bytes, oid: bytes, want: int, got: int) -> ObjectCorrupt:
    return ObjectCorrupt(
        f"object {src.hex()} names {oid.hex()} as a {ObjType(want).name.lower()},"
        f" but it is a {ObjType(got).name.lower()}",
        src,
    )


class ClosureCheck:
    def __init__(
        self, conn: sqlite3.Connection, alternate_type: AlternateType, resolver: native.AnyDeltaResolver
    ) -> None:
        self._conn = conn
        self._alternate_type = alternate_type
        self._r = resolver

    def check(self) -> None:
        """Raise MissingObject or ObjectCorrupt unless every recorded link is satisfied."""
        wrong = self._r.wrong_link()
        if wrong is not None:
            raise _wrong_type(*wrong)
        conn = self._conn
        for batch in self._r.external_links():
            conn.executemany("INSERT INTO links(src, oid, type) VALUES (?, ?, ?)", batch)
        found = conn.execute(
            "SELECT l.src, l.oid, l.type, o.type FROM links l JOIN objects o ON o.oid = l.oid"
            " WHERE o.type != l.type LIMIT 1"
        ).fetchone()
        if found is not None:
            raise _wrong_type(bytes(found[0]), bytes(found[1]), found[2], found[3])
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
        conn = self._conn
        for batch in self._r.unnamed():
            conn.executemany("INSERT INTO unnamed(oid) VALUES (?)", [(o,) for o in batch])
        rows = conn.execute(
            "SELECT u.oid FROM unnamed u JOIN objects o ON o.oid = u.oid WHERE o.pack_id = ?"
            " ORDER BY u.oid LIMIT ?",
            (pack_id, limit + 1),
        ).fetchall()
        if len(rows) > limit:
            return None
        return [bytes(r[0]) for r in rows]
