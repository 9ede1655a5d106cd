"""Refs, compare-and-swap ref moves, and the permanent reflog.

Rules:
- Ref names follow git check-ref-format and must start with ``refs/``.
- A move succeeds only when the ref's current value equals the command's ``old``
  (ZERO_OID meaning "must not exist"). A delete of a missing ref fails.
- The new value must be a stored object (this repo or an alternate); under
  ``refs/heads/`` it must be a commit.
- ``atomic``: when any command fails, every command fails and nothing is written.
- Every applied move appends one reflog row (UTC microseconds, never decreasing within a
  repo, so time-travel reads by ``at`` agree with reads by row order). Rows are never
  updated or deleted.
- Everything here runs inside the caller's transaction; nothing commits.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from storage.model import ZERO_OID, ObjType, Oid, PushContext, RefCommand, ReflogEntry, RefResult

# Looks an object up in the store (own tables, then alternates): its type, or None.
TypeLookup = Callable[[Oid], ObjType | None]

_FORBIDDEN_CHARS = frozenset(" ~^:?*[\\\x7f")


def check_ref_name(name: str) -> str | None:
    """Why ``name`` is not a valid ref name (git check-ref-format rules), or None if it is."""
    if not name.startswith("refs/") or len(name) <= len("refs/"):
        return "ref name must start with refs/"
    if len(name.encode("utf-8", "surrogatepass")) > 4096:
        return "ref name too long"
    if name.endswith("/") or "//" in name:
        return "empty path component"
    if name.endswith("."):
        return "ref name ends with '.'"
    if ".." in name:
        return "ref name contains '..'"
    if "@{" in name:
        return "ref name contains '@{'"
    for ch in name:
        if ord(ch) < 0x20 or ch in _FORBIDDEN_CHARS:
            return f"ref name contains forbidden character {ch!r}"
    for part in name.split("/"):
        if part.startswith("."):
            return "path component starts with '.'"
        if part.endswith(".lock"):
            return "path component ends with '.lock'"
    return None


def read_refs(conn: sqlite3.Connection) -> dict[str, Oid]:
    return {name: bytes(oid) for name, oid in conn.execute("SELECT name, oid FROM refs ORDER BY name")}


def read_ref(conn: sqlite3.Connection, name: str) -> Oid | None:
    row = conn.execute("SELECT oid FROM refs WHERE name = ?", (name,)).fetchone()
    return bytes(row[0]) if row else None


def check_commands(
    conn: sqlite3.Connection, commands: Sequence[RefCommand], lookup_type: TypeLookup, atomic: bool
) -> list[RefResult]:
    """Decide every command without writing: a RefResult per command, error None if it may apply."""
    results: list[RefResult] = []
    seen: set[str] = set()
    for cmd in commands:
        results.append(RefResult(cmd.ref, _check_one(conn, cmd, lookup_type, seen)))
        seen.add(cmd.ref)
    if atomic and any(r.error for r in results):
        results = [r if r.error else RefResult(r.ref, "atomic push failed") for r in results]
    return results


def _check_one(
    conn: sqlite3.Connection, cmd: RefCommand, lookup_type: TypeLookup, seen: set[str]
) -> str | None:
    problem = check_ref_name(cmd.ref)
    if problem:
        return f"funny refname: {problem}"
    if cmd.ref in seen:
        return "duplicate ref update"
    if len(cmd.old) != 20 or len(cmd.new) != 20:
        return "bad object id"
    current = read_ref(conn, cmd.ref)
    if cmd.is_delete:
        if current is None:
            return "ref does not exist"
        if cmd.old != ZERO_OID and cmd.old != current:
            return "stale old value"
        return None
    if cmd.is_create:
        if current is not None:
            return "ref already exists"
    elif current is None:
        return "ref does not exist"
    elif current != cmd.old:
        return "stale old value"
    obj_type = lookup_type(cmd.new)
    if obj_type is None:
        return "missing necessary objects"
    if cmd.ref.startswith("refs/heads/") and obj_type != ObjType.COMMIT:
        return "not a commit (refs/heads/ may only point at commits)"
    return None


def apply_commands(
    conn: sqlite3.Connection,
    commands: Sequence[RefCommand],
    results: Sequence[RefResult],
    context: PushContext,
    message: str = "",
) -> int:
    """Write every command whose result is ok, with its reflog row. Returns how many moved.

    ``results`` must come from ``check_commands`` in the same transaction.
    """
    at = now_us(conn)
    moved = 0
    for cmd, res in zip(commands, results, strict=True):
        if res.error:
            continue
        old = read_ref(conn, cmd.ref) or ZERO_OID
        if cmd.is_delete:
            conn.execute("DELETE FROM refs WHERE name = ?", (cmd.ref,))
        else:
            conn.execute("INSERT OR REPLACE INTO refs(name, oid) VALUES (?, ?)", (cmd.ref, cmd.new))
        conn.execute(
            "INSERT INTO reflog(ref, old, new, at, token_id, via, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cmd.ref, old, cmd.new, at, context.token_id, context.via, message),
        )
        moved += 1
    return moved


def now_us(conn: sqlite3.Connection) -> int:
    """Current UTC time in microseconds, never before the repo's latest reflog entry."""
    now = time.time_ns() // 1000
    row = conn.execute("SELECT MAX(at) FROM reflog").fetchone()
    return max(now, row[0]) if row and row[0] is not None else now


def read_reflog(
    conn: sqlite3.Connection,
    ref: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    limit: int | None = None,
) -> list[ReflogEntry]:
    """Reflog rows, newest first; ``since_us``/``until_us`` are inclusive bounds on ``at``."""
    where: list[str] = []
    args: list[object] = []
    if ref is not None:
        where.append("ref = ?")
        args.append(ref)
    if since_us is not None:
        where.append("at >= ?")
        args.append(since_us)
    if until_us is not None:
        where.append("at <= ?")
        args.append(until_us)
    sql = "SELECT ref, old, new, at, token_id, via, message FROM reflog"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [
        ReflogEntry(r, bytes(o), bytes(n), at, tok, via, msg or "")
        for r, o, n, at, tok, via, msg in conn.execute(sql, args)
    ]
