"""Commits made by the server (commit API) and ref restores, as one writer's transaction.

Rules:
- Runs on the repo's single writer (the caller's job). ``commit_files`` reads the
  branch tip, checks ``parent`` (compare-and-swap: the given parent must be the tip; no
  parent means the branch must not exist yet), builds blobs, the changed trees and the
  commit from the parent's tree, stores them (``write_objects``) and moves the ref with
  a reflog entry (``via`` from the context, "api").
- Only the directories on the way to a changed path are rewritten; emptied directories
  disappear (git keeps no empty trees). A file keeps its mode unless one is given.
- ``restore_ref`` moves a ref to an existing object with a new reflog entry (never
  rewriting history); a deleted ref is re-created.
- Errors: ``CommitConflict`` (parent is not the tip / ref moved meanwhile),
  ``InvalidEdit`` (bad path, deleting what is not there, a file in the way of a
  directory, bad identity, refused ref update).
"""

from __future__ import annotations

from dataclasses import dataclass

import native
from storage.errors import StorageError
from storage.model import ZERO_OID, ObjType, Oid, PushContext, RefCommand
from storage.objparse import parse_commit
from storage.repo_store import RepoStore
from storage.treeview import MODE_TREE, encode_name, entries, normalize_path

FILE_MODES = (0o100644, 0o100755, 0o120000)


class CommitConflict(StorageError):
    """The branch is not where the caller said it was."""

    def __init__(self, ref: str, expected: Oid | None, actual: Oid | None) -> None:
        want = expected.hex() if expected else "absent"
        have = actual.hex() if actual else "absent"
        super().__init__(f"{ref} is at {have}, not at the given parent ({want})")
        self.ref, self.expected, self.actual = ref, expected, actual


class InvalidEdit(StorageError):
    """The request cannot make a valid commit."""


@dataclass(frozen=True, slots=True)
class FileEdit:
    path: str
    content: bytes | None  # None = delete
    mode: int | None = None  # None = keep the existing mode (100644 for a new file)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    time: int  # unix seconds
    offset_minutes: int = 0

    def line(self) -> bytes:
        for part in (self.name, self.email):
            if any(c in part for c in "<>\n\0"):
                raise InvalidEdit("author name and email may not contain <, >, newlines or NUL")
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"{self.name} <{self.email}> {self.time} {sign}{hours:02d}{minutes:02d}".encode()


@dataclass(frozen=True, slots=True)
class CommitResult:
    commit: Oid
    tree: Oid
    parents: tuple[Oid, ...]
    ref: str


def tree_bytes(items: dict[bytes, tuple[int, Oid]]) -> bytes:
    """A git tree object's content from ``{name: (mode, oid)}``, in git's order."""

    def key(name: bytes) -> bytes:
        return name + b"/" if items[name][0] == MODE_TREE else name

    return b"".join(b"%o %s\0%s" % (items[n][0], n, items[n][1]) for n in sorted(items, key=key))


def _apply(
    store: RepoStore,
    tree: Oid | None,
    edits: dict[str, FileEdit],
    base: str,
    out: list[tuple[ObjType, bytes]],
) -> Oid | None:
    """The new tree for ``tree`` with ``edits`` (paths relative to it); None if it ends empty."""
    items: dict[bytes, tuple[int, Oid]] = {n: (m, o) for n, m, o in entries(store, tree)} if tree else {}
    here: dict[str, FileEdit] = {}
    below: dict[str, dict[str, FileEdit]] = {}
    for path, edit in edits.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head, {})[rest] = edit
        else:
            here[head] = edit
    for name, edit in here.items():
        key = encode_name(name)
        current = items.get(key)
        if name in below:
            raise InvalidEdit(f"{base}{name} is given both as a file and as a directory")
        if edit.content is None:
            if current is None or current[0] == MODE_TREE:
                raise InvalidEdit(f"cannot delete {base}{name}: no such file")
            del items[key]
            continue
        if current is not None and current[0] == MODE_TREE:
            raise InvalidEdit(f"{base}{name} is a directory")
        mode = edit.mode or (current[0] if current else 0o100644)
        out.append((ObjType.BLOB, edit.content))
        items[key] = (mode, native.object_id(ObjType.BLOB, edit.content))
    for name, sub in below.items():
        key = encode_name(name)
        current = items.get(key)
        if current is not None and current[0] != MODE_TREE:
            raise InvalidEdit(f"{base}{name} is a file, not a directory")
        new_sub = _apply(store, current[1] if current else None, sub, f"{base}{name}/", out)
        if new_sub is None:
            items.pop(key, None)
        else:
            items[key] = (MODE_TREE, new_sub)
    if not items:
        return None
    data = tree_bytes(items)
    out.append((ObjType.TREE, data))
    return native.object_id(ObjType.TREE, data)


def _check_edits(files: list[FileEdit]) -> dict[str, FileEdit]:
    edits: dict[str, FileEdit] = {}
    for edit in files:
        try:
            path = normalize_path(edit.path)
        except ValueError as exc:
            raise InvalidEdit(str(exc)) from None
        if not path or ".git" in path.split("/") or "\0" in path:
            raise InvalidEdit(f"bad file path {edit.path!r}")
        if path in edits:
            raise InvalidEdit(f"path {path!r} is given twice")
        if edit.mode is not None and edit.mode not in FILE_MODES:
            raise InvalidEdit(f"mode must be one of {', '.join(f'{m:o}' for m in FILE_MODES)}")
        edits[path] = edit
    return edits


def commit_files(
    store: RepoStore,
    ref: str,
    parent: Oid | None,
    message: str,
    author: Person,
    committer: Person,
    files: list[FileEdit],
    context: PushContext,
) -> CommitResult:
    """Make one commit on ``ref`` from ``parent`` with ``files`` changed; see module rules."""
    edits = _check_edits(files)
    tip = store.refs().get(ref)
    if tip != parent:
        raise CommitConflict(ref, parent, tip)
    base_tree = parse_commit(store.get_object(parent)[1]).tree if parent else None
    objects: list[tuple[ObjType, bytes]] = []
    tree = _apply(store, base_tree, edits, "", objects)
    if tree is None:
        data = tree_bytes({})
        objects.append((ObjType.TREE, data))
        tree = native.object_id(ObjType.TREE, data)
    text = message if message.endswith("\n") else message + "\n"
    lines = [b"tree " + tree.hex().encode()]
    if parent:
        lines.append(b"parent " + parent.hex().encode())
    lines += [b"author " + author.line(), b"committer " + committer.line()]
    body = b"\n".join(lines) + b"\n\n" + text.encode("utf-8")
    objects.append((ObjType.COMMIT, body))
    commit = store.write_objects(objects)[-1]
    result = store.update_refs([RefCommand(parent or ZERO_OID, commit, ref)], context, message="commit (api)")
    error = result.refs[0].error
    if error in ("stale old value", "ref already exists", "ref does not exist"):
        raise CommitConflict(ref, parent, store.refs().get(ref))
    if error:
        raise InvalidEdit(f"cannot update {ref}: {error}")
    return CommitResult(commit, tree, (parent,) if parent else (), ref)


def restore_ref(
    store: RepoStore, ref: str, target: Oid, context: PushContext, message: str = ""
) -> Oid | None:
    """Move ``ref`` to ``target`` (re-creating a deleted ref); returns the old value."""
    old = store.refs().get(ref)
    result = store.update_refs([RefCommand(old or ZERO_OID, target, ref)], context, message=message)
    error = result.refs[0].error
    if error in ("stale old value", "ref already exists", "ref does not exist"):
        raise CommitConflict(ref, old, store.refs().get(ref))
    if error:
        raise InvalidEdit(f"cannot move {ref}: {error}")
    return old
