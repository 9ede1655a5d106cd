"""Diff between two trees, file by file, each with a ``git diff``-identical patch.

Rules:
- ``diff_trees`` yields one ``FileDiff`` at a time: the list of changed paths (and the
  rename pairing, which needs every added and deleted file) is computed first, then each
  file's patch is made only when the consumer asks for it, so memory stays at one file
  pair plus the change list, however big the whole diff is.
- The patch text is what ``git diff OLD NEW`` prints with git's defaults (renames on,
  ``-M50%``, 3 lines of context, indent heuristic, no colour, ``a/``/``b/`` prefixes,
  core.quotePath on): ``diff --git`` line, mode lines, ``similarity index`` and
  ``rename from/to``, ``index A..B [mode]`` with abbreviated ids as long as git makes
  them in this repo (7 digits, more in big repos or when 7 would be ambiguous), ``---``/
  ``+++`` lines, hunks, ``\\ No newline at end of file``, ``Binary files ... differ``.
- A file is binary when either side has a NUL byte in its first 8000 bytes (git's test);
  a submodule entry diffs as the text ``Subproject commit <id>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from storage.hunks import text_diff
from storage.model import Oid
from storage.repo_store import RepoStore
from storage.treediff import MAX_SCORE, FileChange, Side, detect_renames, is_binary, tree_changes
from storage.treeview import MODE_GITLINK, encode_name, read_blob

MIN_ABBREV = 7
_ESCAPES = {
    7: b"\\a",
    8: b"\\b",
    9: b"\\t",
    10: b"\\n",
    11: b"\\v",
    12: b"\\f",
    13: b"\\r",
    34: b'\\"',
    92: b"\\\\",
}


@dataclass(frozen=True, slots=True)
class FileDiff:
    change: FileChange
    additions: int
    deletions: int
    binary: bool
    patch: bytes  # this file's section of the patch, from "diff --git" on


def quote_path(path: bytes) -> bytes:
    """git's C-style quoting of a path (with quotePath on), or the path as is."""
    if not any(c < 0x20 or c in (34, 92) or c >= 0x7F for c in path):
        return path
    out = bytearray(b'"')
    for c in path:
        if c in _ESCAPES:
            out += _ESCAPES[c]
        elif c < 0x20 or c >= 0x7F:
            out += b"\\%03o" % c
        else:
            out.append(c)
    out += b'"'
    return bytes(out)


class Abbrev:
    """Abbreviated object ids as git prints them in this repository."""

    def __init__(self, store: RepoStore) -> None:
        self.store = store
        count = store.object_count()
        self.length = max(MIN_ABBREV, (count.bit_length() - 1 + 1 + 1) // 2) if count else MIN_ABBREV

    def __call__(self, oid: Oid | None) -> bytes:
        if oid is None:
            return b"0" * self.length
        hexid = oid.hex()
        n = self.length
        while n < 40:
            lo = bytes.fromhex(hexid[:n] + "0" * (40 - n))
            hi = bytes.fromhex(hexid[:n] + "f" * (40 - n))
            if len(self.store.find_oid_range(lo, hi, 2)) < 2:
                break
            n += 1
        return hexid[:n].encode()


def diff_trees(store: RepoStore, old: Oid | None, new: Oid | None, prefix: str = "") -> Iterator[FileDiff]:
    """Every changed file between two root trees (None = empty tree), in git's order."""
    changes = detect_renames(store, list(tree_changes(store, old, new, prefix)))
    abbrev = Abbrev(store)
    for change in changes:
        yield file_diff(store, change, abbrev)


def _content(store: RepoStore, side: Side | None) -> bytes:
    if side is None:
        return b""
    if side.mode == MODE_GITLINK:
        return b"Subproject commit %s\n" % side.oid.hex().encode()
    return read_blob(store, side.oid)


def file_diff(store: RepoStore, change: FileChange, abbrev: Abbrev) -> FileDiff:
    """One file's diff entry and patch section."""
    old, new = change.old, change.new
    name_a = encode_name((old or new).path)  # type: ignore[union-attr]
    name_b = encode_name((new or old).path)  # type: ignore[union-attr]
    label_a = quote_path(b"a/" + name_a)
    label_b = quote_path(b"b/" + name_b)
    head = [b"diff --git ", label_a, b" ", label_b, b"\n"]
    if old is None and new is not None:
        head.append(b"new file mode %06o\n" % new.mode)
    elif new is None and old is not None:
        head.append(b"deleted file mode %06o\n" % old.mode)
    elif old is not None and new is not None and old.mode != new.mode:
        head.append(b"old mode %06o\nnew mode %06o\n" % (old.mode, new.mode))
    if change.status == "R":
        head.append(b"similarity index %d%%\n" % (change.score * 100 // MAX_SCORE))
        head.append(b"rename from " + quote_path(name_a) + b"\n")
        head.append(b"rename to " + quote_path(name_b) + b"\n")
    old_oid = old.oid if old else None
    new_oid = new.oid if new else None
    if old_oid != new_oid:
        line = b"index " + abbrev(old_oid) + b".." + abbrev(new_oid)
        if old is not None and new is not None and old.mode == new.mode:
            line += b" %06o" % old.mode
        head.append(line + b"\n")
    a_data, b_data = _content(store, old), _content(store, new)
    lbl_a = label_a if old is not None else b"/dev/null"
    lbl_b = label_b if new is not None else b"/dev/null"
    binary = is_binary(a_data) or is_binary(b_data)
    additions = deletions = 0
    if a_data == b_data:
        pass
    elif binary:
        head.append(b"Binary files " + lbl_a + b" and " + lbl_b + b" differ\n")
    else:
        hunks, additions, deletions = text_diff(a_data, b_data)
        if hunks:
            tab_a = b"\t" if b" " in name_a else b""
            tab_b = b"\t" if b" " in name_b else b""
            head += [b"--- ", lbl_a, tab_a, b"\n+++ ", lbl_b, tab_b, b"\n", *hunks]
    return FileDiff(change, additions, deletions, binary, b"".join(head))
