"""Rehydrate latency: rebuild the generated repo's SQLite file from its blob-store snapshot.

Loads ``benchmarks.history.generate(size)`` into a RepoStore (one push of git's pack),
writes a snapshot to a ``file://`` blob store (or ``--blob-store URL``), then times
``storage.rehydrate.rehydrate`` (streamed pack copy + index rows + refs, then verify)
a few times and prints the medians. Run:

    .venv/bin/python -m benchmarks.bench_rehydrate [--size default] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.history import generate
from storage.blobstore import open_blobstore
from storage.model import ZERO_OID, PushContext, RefCommand, oid_raw
from storage.rehydrate import ensure_writer_id, rehydrate
from storage.replica import Replica
from storage.repo_store import RepoStore
from storage.snapshot import write_snapshot


def _load(repo: Path, path: Path) -> RepoStore:
    pack = subprocess.run(
        ["git", "pack-objects", "--all", "--stdout", "-q"],
        cwd=repo,
        input=b"",
        capture_output=True,
        check=True,
    ).stdout
    refs = {}
    out = subprocess.run(["git", "show-ref"], cwd=repo, capture_output=True, check=True).stdout.decode()
    for line in out.splitlines():
        oid, name = line.split(" ", 1)
        refs[name] = oid_raw(oid)
    store = RepoStore.create(path)
    result = store.receive(
        [RefCommand(ZERO_OID, oid, name) for name, oid in refs.items()], io.BytesIO(pack).read, PushContext()
    )
    assert result.unpack_error is None, result
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blob-store", default=None, help="blob store URL (default: a temp file:// store)")
    args = parser.parse_args()
    repo = generate(args.size)
    with tempfile.TemporaryDirectory(prefix="bench-rehydrate-") as tmp:
        root = Path(tmp)
        blobs = open_blobstore(args.blob_store or f"file://{root / 'blobs'}")
        store = _load(repo, root / "source.sqlite")
        objects, stored = store.object_count(), store.stored_bytes()
        t0 = time.perf_counter()
        info = write_snapshot(store, blobs, "bench", "s1", writer=ensure_writer_id(store), at=0)
        Replica(blobs, "bench").commit_snapshot(info)
        snap_s = time.perf_counter() - t0
        store.close()
        times, verify_times = [], []
        for i in range(args.runs):
            target = root / f"r{i}.sqlite"
            t0 = time.perf_counter()
            assert rehydrate(blobs, "bench", target) is not None
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with RepoStore.open(target, readonly=True) as back:
                assert back.object_count() == objects
                first = next(back.iter_entries())
                back.get_object(first.oid)
            verify_times.append(time.perf_counter() - t0)
        blobs.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"repo {args.size}: {objects} objects, {stored / 2**20:.1f} MiB of packs")
    print(f"snapshot: {info.size / 2**20:.1f} MiB in the blob store, written in {snap_s:.2f} s")
    print(f"rehydrate latency (median of {args.runs}): {statistics.median(times) * 1000:.0f} ms")
    print(f"first object read after rehydrate: {statistics.median(verify_times) * 1000:.1f} ms")
    print(f"process peak RSS: {peak} MiB (includes loading the repo)")


if __name__ == "__main__":
    main()
