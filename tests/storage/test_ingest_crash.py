"""A process killed in the middle of a push leaves the repo at its old refs and fsck clean."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from storage.repo_store import RepoStore
from tests.helpers import ROOT
from tests.storage.gitpacks import WorkRepo, push, row_counts

_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from storage.model import ZERO_OID, PushContext, RefCommand, oid_raw
    from storage.repo_store import RepoStore

    store = RepoStore.open(sys.argv[2])
    pack = open(sys.argv[3], "rb")
    stage = sys.argv[5]

    def read(n):
        data = pack.read(min(n, 256 * 1024))
        if stage == "stream" and pack.tell() > 4 << 20:
            print("streaming", flush=True)
            time.sleep(60)
        return data

    def progress(msg):
        if stage == "resolve":
            print("resolving", flush=True)
            time.sleep(60)

    cmd = RefCommand(oid_raw(sys.argv[4][:40]), oid_raw(sys.argv[4][40:]), "refs/heads/main")
    store.receive([cmd], read, PushContext(), progress)
    print("finished", flush=True)
    """
)


def _kill_during(stage: str, store_path: Path, pack: Path, old: str, new: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(ROOT), str(store_path), str(pack), old + new, stage],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line in ("streaming", "resolving"), line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_killed_push_leaves_old_state(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "w")
    rnd = random.Random(3)
    repo.write("a.txt", "".join(f"line {i}\n" for i in range(5000)))
    old = repo.commit("one")
    repo.write("a.txt", "".join(f"line {i} changed\n" if i % 10 == 0 else f"line {i}\n" for i in range(5000)))
    for i in range(6):
        repo.write(f"r{i}.bin", rnd.randbytes(1 << 20))
    new = repo.commit("two")
    path = tmp_path / "repo.sqlite"
    store = RepoStore.create(path)
    assert push(store, repo.pack([old]), (None, old, "refs/heads/main")).refs[0].error is None
    store.close()
    before = row_counts(path)
    pack = tmp_path / "new.pack"
    pack.write_bytes(repo.pack([new, f"^{old}"], thin=True))  # a delta, so resolution reports progress
    for stage in ("stream", "resolve"):
        _kill_during(stage, path, pack, old, new)
        with RepoStore.open(path) as after:
            assert after.refs()["refs/heads/main"].hex() == old
            assert row_counts(path) == before
            assert after.verify() == []
    # and the same push then goes through
    with RepoStore.open(path) as store, pack.open("rb") as f:
        from storage.model import PushContext, RefCommand, oid_raw

        cmd = RefCommand(oid_raw(old), oid_raw(new), "refs/heads/main")
        assert store.receive([cmd], f.read, PushContext(), None).refs[0].error is None
        assert store.verify() == []
