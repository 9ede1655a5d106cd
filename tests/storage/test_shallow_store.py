"""A store's own shallow commits: recorded with the refs, the only allowed missing
parents (ingest and fsck), and older files without the table still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import native
from storage.model import ZERO_OID, ObjType, PushContext, RefCommand
from storage.packwrite import PieceReader, iter_pack
from storage.repo_store import RepoStore

_IDENT = b"A U Thor <a@example.com> 1700000000 +0000"


def _objects(parent: bytes) -> tuple[list[tuple[ObjType, bytes]], bytes]:
    blob = (ObjType.BLOB, b"hello\n")
    tree = (ObjType.TREE, b"100644 a.txt\0" + native.object_id(*blob))
    body = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\nboundary\n" % (
        native.object_id(*tree).hex().encode(),
        parent.hex().encode(),
        _IDENT,
        _IDENT,
    )
    commit = (ObjType.COMMIT, body)
    return [blob, tree, commit], native.object_id(*commit)


def test_only_listed_shallow_commits_may_lack_parents(tmp_path: Path) -> None:
    store = RepoStore.create(tmp_path / "r.sqlite")
    objects, tip = _objects(bytes(range(20)))
    ctx = PushContext(via="import")
    cmd = [RefCommand(ZERO_OID, tip, "refs/heads/main")]

    refused = store.receive(cmd, PieceReader(iter_pack(objects)), ctx)
    assert refused.unpack_error and "missing" in refused.unpack_error
    assert store.refs() == {} and store.shallow_commits() == frozenset()

    other = bytes(20 * [7])  # listing another commit allows nothing
    refused = store.receive(cmd, PieceReader(iter_pack(objects)), ctx, shallow=lambda: [other])
    assert refused.unpack_error and store.shallow_commits() == frozenset()

    done = store.receive(cmd, PieceReader(iter_pack(objects)), ctx, shallow=lambda: [tip])
    assert done.unpack_error is None and store.refs() == {"refs/heads/main": tip}
    assert store.shallow_commits() == {tip}
    assert store.verify() == []
    store.close()


def test_older_file_without_the_table_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    RepoStore.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE shallow")
    conn.commit()
    conn.close()
    with RepoStore.open(path, readonly=True) as ro:
        assert ro.shallow_commits() == frozenset()
        assert ro.verify() == []
    with RepoStore.open(path) as rw:  # a writer adds the table
        assert rw.shallow_commits() == frozenset()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'shallow'").fetchone()
    conn.close()
