"""The process-wide peel memo (storage.memo): a woken actor lists refs without reading
objects, with the same peeled values git shows, and absence is never remembered."""

from __future__ import annotations

from pathlib import Path

from storage import memo
from storage.repo_store import RepoStore
from storage.repository import Repository
from tests.storage.gitpacks import WorkRepo, push


def test_peeled_refs_survive_a_new_connection(tmp_path: Path) -> None:
    work = WorkRepo(tmp_path / "work")
    work.write("a.txt", "a\n")
    work.commit("one")
    work.git("tag", "-a", "-m", "annotated", "v1")
    work.git("tag", "light")
    path = tmp_path / "s.sqlite"
    store = RepoStore.create(path)
    tags = [work.rev("v1"), work.rev("light")]
    result = push(
        store,
        work.pack(["--all"]),
        (None, work.rev("main"), "refs/heads/main"),
        (None, tags[0], "refs/tags/v1"),
        (None, tags[1], "refs/tags/light"),
    )
    assert result.unpack_error is None
    store.close()
    expected = {"refs/tags/v1": bytes.fromhex(work.rev("v1^{}")), "refs/tags/light": None}
    for _ in range(2):  # the second connection answers from the memo
        with RepoStore.open(path, readonly=True) as reader:
            got = {
                r.name: r.peeled for r in Repository(reader).list_refs() if r.name.startswith("refs/tags/")
            }
        assert got == expected
    assert memo.peeled(str(path), bytes.fromhex(work.rev("v1"))) == expected["refs/tags/v1"]
    assert memo.peeled(str(path), b"\1" * 20) is memo.MISSING
