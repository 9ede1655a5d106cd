"""Revision expressions (SPEC "REV") parsed and resolved against one RepoStore.

Rules:
- Grammar: ``BASE SUFFIX*``. BASE is a full or abbreviated (4..39 hex) object id, a ref
  name (``HEAD``, ``main``, ``refs/heads/main``, ``v1.0``), ``REF@{TIME}`` (RFC 3339
  instant, taken from the permanent reflog) or ``REF@{N}`` (the N-th previous value).
  SUFFIX is ``~N`` (N first parents back, ``~`` = ``~1``) or ``^N`` (N-th parent,
  ``^`` = ``^1``, ``^0`` = the commit itself).
- Ref lookup order is git's (gitrevisions): ``NAME``, ``refs/NAME``, ``refs/tags/NAME``,
  ``refs/heads/NAME``, ``refs/remotes/NAME``, ``refs/remotes/NAME/HEAD``. A ref wins over
  an abbreviated id of the same spelling; a 40-digit id is always an object id.
- ``REF@{TIME}``: the value of the latest reflog entry of REF at or before TIME. No entry
  by then: the ref did not exist yet (``UnknownRevision``). A delete entry: the ref did
  not exist at that time either.
- Errors: ``BadRevision`` (syntax), ``AmbiguousRevision`` (abbreviation names several
  objects): the caller's input is wrong; ``UnknownRevision``: nothing by that name.
  Messages are meant for the user.
- Pure reads: no writes, no caching beyond the store's own.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from storage.errors import StorageError
from storage.model import ZERO_OID, ObjType, Oid
from storage.objparse import parse_commit, parse_tag
from storage.refs import check_ref_name
from storage.repo_store import RepoStore

MIN_ABBREV = 4
MAX_REV_LENGTH = 1024
MAX_STEPS = 100_000  # total ~N/^N generations one expression may walk
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_SUFFIX = re.compile(r"([~^])(\d*)")
_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+\- ]\d{2}:\d{2})"
)


class RevisionError(StorageError):
    """Root of revision errors; ``rev`` is the expression as given."""

    def __init__(self, rev: str, message: str) -> None:
        super().__init__(message)
        self.rev = rev


class BadRevision(RevisionError):
    """The expression does not follow the REV grammar."""


class AmbiguousRevision(RevisionError):
    """An abbreviated object id matches more than one object."""


class UnknownRevision(RevisionError):
    """The expression is well formed but names nothing (or nothing usable here)."""


@dataclass(frozen=True, slots=True)
class RevSpec:
    """A parsed expression: ``base`` text, optional ``at_us`` instant or ``nth`` entry, suffixes."""

    base: str
    at_us: int | None
    nth: int | None
    suffixes: tuple[tuple[str, int], ...]


def parse_instant(text: str) -> int:
    """An RFC 3339 instant as UTC microseconds (sub-microsecond digits are dropped).

    A space where the offset sign should be is read as ``+`` (a ``+`` left unencoded in
    a query string arrives as a space). Raises ValueError."""
    return parse_instant_offset(text)[0]


def parse_instant_offset(text: str) -> tuple[int, int]:
    """``parse_instant`` plus the instant's UTC offset in minutes. Raises ValueError."""
    m = _INSTANT.fullmatch(text)
    if not m:
        raise ValueError(f"not an RFC 3339 instant: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(6, "0")[:6]
    zone = m.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 60 + int(zone[4:6]))
    try:
        tz = timezone(timedelta(minutes=offset))
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 instant: {text!r} ({exc})") from None
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), int(frac), tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 instant: {text!r} ({exc})") from None
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds, offset


def parse_rev(rev: str) -> RevSpec:
    """Split ``rev`` into its parts; raises BadRevision."""
    if not rev:
        raise BadRevision(rev, "empty revision")
    if len(rev) > MAX_REV_LENGTH:
        raise BadRevision(rev, f"revision longer than {MAX_REV_LENGTH} characters")
    at_us: int | None = None
    nth: int | None = None
    rest = rev
    brace = rev.find("@{")
    if brace >= 0:
        close = rev.find("}", brace)
        if close < 0:
            raise BadRevision(rev, f"unterminated @{{...}} in {rev!r}")
        inner = rev[brace + 2 : close]
        base = rev[:brace]
        rest = rev[close + 1 :]
        if inner.isascii() and inner.isdigit():
            if len(inner) > 6:
                raise BadRevision(rev, f"reflog position too large in {rev!r}")
            nth = int(inner)
        else:
            try:
                at_us = parse_instant(inner)
            except ValueError:
                raise BadRevision(
                    rev, f"{inner!r} is not an RFC 3339 instant (e.g. 2026-11-27T15:04:05.123Z)"
                ) from None
        if not base:
            raise BadRevision(rev, "a ref name is needed before @{...}")
    else:
        cut = len(rev)
        for i, ch in enumerate(rev):
            if ch in "~^":
                cut = i
                break
        base, rest = rev[:cut], rev[cut:]
        if not base:
            raise BadRevision(rev, f"revision {rev!r} has no base before ~ or ^")
    suffixes: list[tuple[str, int]] = []
    pos = 0
    while pos < len(rest):
        m = _SUFFIX.match(rest, pos)
        if not m:
            raise BadRevision(
                rev, f"unexpected {rest[pos:]!r} in revision {rev!r} (only ~N and ^N may follow)"
            )
        digits = m.group(2)
        if len(digits) > 6:
            raise BadRevision(rev, f"generation number too large in {rev!r}")
        suffixes.append((m.group(1), int(digits) if digits else 1))
        pos = m.end()
    if not _HEX.fullmatch(base) and base != "HEAD":
        problem = check_ref_name(base if base.startswith("refs/") else "refs/heads/" + base)
        if problem:
            raise BadRevision(rev, f"{base!r} is neither an object id nor a valid ref name: {problem}")
    if (at_us is not None or nth is not None) and _HEX.fullmatch(base) and len(base) == 40:
        raise BadRevision(rev, "@{...} needs a ref name, not an object id")
    return RevSpec(base, at_us, nth, tuple(suffixes))


def ref_candidates(name: str) -> list[str]:
    """Full ref names ``name`` may mean, in git's lookup order."""
    if name.startswith("refs/"):
        return [name]
    return [
        f"refs/{name}",
        f"refs/tags/{name}",
        f"refs/heads/{name}",
        f"refs/remotes/{name}",
        f"refs/remotes/{name}/HEAD",
    ]


def _full_ref(store: RepoStore, name: str, *, with_history: bool) -> str | None:
    if name == "HEAD":
        return store.head()
    refs = store.refs()
    for cand in ref_candidates(name):
        if cand in refs:
            return cand
    if with_history:  # a deleted ref still has its reflog
        for cand in ref_candidates(name):
            if store.reflog(cand, limit=1):
                return cand
    return None


def find_abbrev(store: RepoStore, prefix: str) -> list[Oid]:
    """Up to two stored objects whose id starts with hex ``prefix``."""
    pad = 40 - len(prefix)
    lo = binascii.unhexlify((prefix + "0" * pad).lower())
    hi = binascii.unhexlify((prefix + "f" * pad).lower())
    return store.find_oid_range(lo, hi, 2)


def describe_us(us: int) -> str:
    """UTC microseconds as RFC 3339 text (for messages)."""
    secs, micros = divmod(us, 1_000_000)
    try:
        stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{us} microseconds since the epoch"
    return f"{stamp}.{micros:06d}Z"


def _first_entry_us(store: RepoStore, ref: str) -> int | None:
    row = store.connection.execute("SELECT MIN(at) FROM reflog WHERE ref = ?", (ref,)).fetchone()
    return row[0] if row else None


def _at(store: RepoStore, rev: str, ref: str, at_us: int) -> Oid:
    entries = store.reflog(ref, until_us=at_us, limit=1)
    if not entries:
        first = _first_entry_us(store, ref)
        when = f" (its history starts at {describe_us(first)})" if first is not None else ""
        raise UnknownRevision(rev, f"{ref} did not exist yet at {describe_us(at_us)}{when}")
    if entries[0].new == ZERO_OID:
        raise UnknownRevision(
            rev, f"{ref} did not exist at {describe_us(at_us)} (deleted at {describe_us(entries[0].at_us)})"
        )
    return entries[0].new


def _base(store: RepoStore, rev: str, spec: RevSpec) -> Oid:
    base = spec.base
    timed = spec.at_us is not None or spec.nth is not None
    if _HEX.fullmatch(base) and len(base) == 40:
        oid = binascii.unhexlify(base.lower())
        if not store.has_object(oid):
            raise UnknownRevision(rev, f"object {base.lower()} not found")
        return oid
    ref = _full_ref(store, base, with_history=timed)
    if ref is not None:
        if spec.at_us is not None:
            return _at(store, rev, ref, spec.at_us)
        if spec.nth is not None:
            entries = store.reflog(ref, limit=spec.nth + 1)
            if len(entries) <= spec.nth:
                raise UnknownRevision(rev, f"the reflog of {ref} has only {len(entries)} entries")
            if entries[spec.nth].new == ZERO_OID:
                raise UnknownRevision(rev, f"{ref} did not exist at that point (deleted)")
            return entries[spec.nth].new
        tip = store.refs().get(ref)
        if tip is None:  # HEAD naming an unborn branch
            raise UnknownRevision(rev, f"{ref} does not exist yet (empty branch)")
        return tip
    if timed:
        raise UnknownRevision(rev, f"no ref named {base!r} (and no reflog for it)")
    if _HEX.fullmatch(base):
        found = find_abbrev(store, base)
        if len(found) > 1:
            raise AmbiguousRevision(rev, f"short object id {base} is ambiguous")
        if found:
            return found[0]
    raise UnknownRevision(rev, f"unknown revision {base!r}: no such ref or object")


def peel(store: RepoStore, oid: Oid) -> tuple[Oid, ObjType]:
    """Follow annotated tags to the object they finally name; MissingObject if absent."""
    for _ in range(64):
        obj_type, data = store.get_object(oid)
        if obj_type != ObjType.TAG:
            return oid, obj_type
        oid = parse_tag(data).target
    raise UnknownRevision(oid.hex(), "tag chain too long")


def _commit(store: RepoStore, rev: str, oid: Oid) -> Oid:
    oid, obj_type = peel(store, oid)
    if obj_type != ObjType.COMMIT:
        raise UnknownRevision(rev, f"{oid.hex()} is a {obj_type.name.lower()}, not a commit")
    return oid


def resolve(store: RepoStore, rev: str) -> Oid:
    """The object ``rev`` names (tags not peeled unless a suffix needs a commit).

    Raises BadRevision, AmbiguousRevision or UnknownRevision."""
    spec = parse_rev(rev)
    oid = _base(store, rev, spec)
    if sum(n for _, n in spec.suffixes) > MAX_STEPS:
        raise BadRevision(rev, f"more than {MAX_STEPS} generations in {rev!r}")
    for op, n in spec.suffixes:
        oid = _commit(store, rev, oid)
        if op == "~":
            for _ in range(n):
                parents = parse_commit(store.get_object(oid)[1]).parents
                if not parents:
                    raise UnknownRevision(rev, f"{rev}: commit {oid.hex()} has no parent")
                oid = parents[0]
        elif n > 0:
            parents = parse_commit(store.get_object(oid)[1]).parents
            if len(parents) < n:
                raise UnknownRevision(rev, f"{rev}: commit {oid.hex()} has {len(parents)} parent(s), not {n}")
            oid = parents[n - 1]
    return oid


def resolve_commit(store: RepoStore, rev: str) -> Oid:
    """The commit ``rev`` names (annotated tags peeled); UnknownRevision if not a commit."""
    return _commit(store, rev, resolve(store, rev))


def resolve_treeish(store: RepoStore, rev: str) -> Oid:
    """The root tree of what ``rev`` names: a commit's tree, or a tree itself."""
    oid, obj_type = peel(store, resolve(store, rev))
    if obj_type == ObjType.COMMIT:
        return parse_commit(store.get_object(oid)[1]).tree
    if obj_type == ObjType.TREE:
        return oid
    raise UnknownRevision(rev, f"{rev} names a {obj_type.name.lower()}, not a commit or tree")
