"""Big pushes stay inside the memory budget: pack bytes stream to chunk rows, entries to a
TEMP table. Prints peak Python allocations (tracemalloc), RSS growth and throughput."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.model import ZERO_OID, PushContext, RefCommand, oid_raw
from storage.repo_store import RepoStore
from tests.storage.gitpacks import WorkRepo

MiB = 1 << 20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def _measure(trace: bool = True) -> Iterator[dict[str, float]]:
    """Peak tracemalloc bytes (when ``trace``) and peak RSS growth (sampled every 5 ms)."""
    out: dict[str, float] = {}
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss())

    t = threading.Thread(target=sample, daemon=True)
    if trace:
        tracemalloc.start()
    t.start()
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start
        out["py_peak"] = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
        stop.set()
        t.join()
        out["rss_growth"] = max(peak[0], _rss()) - base


def _ingest_file(
    store: RepoStore, pack: Path, tip: str, trace: bool = True
) -> tuple[dict[str, float], list[str]]:
    msgs: list[str] = []
    with pack.open("rb") as f, _measure(trace) as m:
        result = store.receive(
            [RefCommand(ZERO_OID, oid_raw(tip), "refs/heads/main")], f.read, PushContext(), msgs.append
        )
    assert result.unpack_error is None, result.unpack_error
    assert result.refs[0].error is None
    return m, msgs


def _report(what: str, m: dict[str, float], pack_size: int, store: RepoStore) -> None:
    print(
        f"\n{what}: pack {pack_size / MiB:.1f} MiB, {store.object_count()} objects in {m['seconds']:.1f} s"
        f" ({pack_size / MiB / m['seconds']:.1f} MiB/s); python peak {m['py_peak'] / MiB:.1f} MiB"
        f"{' (tracemalloc on: slower)' if m['py_peak'] else ' (tracemalloc off)'};"
        f" RSS growth {m['rss_growth'] / MiB:.1f} MiB; sqlite file+wal / pack = {_file_bytes(store) / pack_size:.3f}"
    )


def _file_bytes(store: RepoStore) -> int:
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(str(store.path) + "-wal")
    return store.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _git_pack(repo: WorkRepo, dest: Path, *extra: str) -> None:
    with dest.open("wb") as out:
        subprocess.run(
            ["git", "pack-objects", "--stdout", "--revs", "-q", *extra],
            cwd=repo.path,
            env=repo.env,
            input=b"main\n",
            stdout=out,
            check=True,
        )


def test_large_random_blobs_stream(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "w")
    rnd = random.Random(1)
    for i in range(40):
        repo.write(f"blob{i:02}.bin", rnd.randbytes(2 * MiB + rnd.randrange(MiB)))
    repo.write("huge.bin", rnd.randbytes(12 * MiB))
    repo.git("-c", "core.compression=1", "add", "-A")
    tip = repo.commit("random")
    pack = tmp_path / "big.pack"
    _git_pack(repo, pack, "--window=0", "--compression=1")
    size = pack.stat().st_size
    assert size > 100 * MiB
    store = RepoStore.create(tmp_path / "big.sqlite")
    try:
        m, _ = _ingest_file(store, pack, tip)
        _report("large random blobs", m, size, store)
        assert store.stored_bytes() == size
        assert m["py_peak"] < 16 * MiB
        assert m["rss_growth"] < 64 * MiB
        # reading a 12 MiB object back costs about its own size
        huge = repo.git("rev-parse", "main:huge.bin").decode().strip()
        with _measure() as r:
            _, data = store.get_object(oid_raw(huge))
        assert len(data) == 12 * MiB
        assert r["py_peak"] < 3 * 12 * MiB + 4 * MiB
    finally:
        store.close()


def _fast_import(
    repo: WorkRepo, files: int, per_dir: int, rounds: int, changed: Callable[[int, int], bool]
) -> str:
    """Make ``rounds`` commits of ``files`` small text files; later rounds edit some of them."""
    lines: list[bytes] = []
    mark = 0
    parent: int | None = None
    for r in range(rounds):
        paths: list[tuple[str, int]] = []
        for i in range(files):
            if r and not changed(r, i):
                continue
            mark += 1
            body = "".join(f"file {i} line {k} rev {r if k == 3 else 0}\n" for k in range(12)).encode()
            lines.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(body), body))
            paths.append((f"d{i // per_dir:04}/f{i:06}.txt", mark))
        mark += 1
        msg = f"round {r}".encode()
        lines.append(
            b"commit refs/heads/main\nmark :%d\ncommitter A <a@x> %d +0000\ndata %d\n%s\n"
            % (mark, 1_700_000_000 + r, len(msg), msg)
        )
        if parent is not None:
            lines.append(b"from :%d\n" % parent)
        lines.extend(b"M 100644 :%d %s\n" % (m, p.encode()) for p, m in paths)
        lines.append(b"\n")
        parent = mark
    repo.git("fast-import", "--quiet", input=b"".join(lines))
    return repo.rev("main")


@pytest.mark.parametrize(
    ("files", "trace"),
    [(20_000, True), pytest.param(110_000, False, marks=pytest.mark.slow)],
    ids=["20k-traced", "110k"],
)
def test_many_small_objects(tmp_path: Path, files: int, trace: bool) -> None:
    """Three rounds of ``files`` small files: about 1.3 objects per file, 1/7 of them deltas."""
    repo = WorkRepo(tmp_path / "w")
    tip = _fast_import(repo, files, 500, 3, lambda r, i: i % 7 == r)
    pack = tmp_path / "many.pack"
    _git_pack(repo, pack, "--delta-base-offset")
    size = pack.stat().st_size
    store = RepoStore.create(tmp_path / "many.sqlite")
    try:
        m, msgs = _ingest_file(store, pack, tip, trace)
        _report(f"{files} files x 3 rounds", m, size, store)
        print(f"  {msgs[-1].strip()}")
        assert store.object_count() == len(repo.objects("--all"))
        assert m["py_peak"] < 48 * MiB
        assert m["rss_growth"] < 96 * MiB
    finally:
        store.close()
