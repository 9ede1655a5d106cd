"""SIGKILL crash consistency (issue #7): the harness in crash_harness.py, seeded.

The default run does CRASH_TRIALS_QUICK trials; ``make crash-test`` (``-m slow``) does 100.
Every trial must leave every repo at its old or new refs, fsck-clean and clonable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hardening.crash_harness import CrashHarness, summary

CRASH_TRIALS_QUICK = 8


def _run(tmp_path: Path, trials: int, seed: int) -> None:
    harness = CrashHarness(tmp_path, seed)
    results = harness.run(trials)
    report = summary(results, len(harness.blob_temp_files))
    print(report)
    assert len(results) == trials
    assert not any(r.problems for r in results), report


def test_crash_consistency_quick(tmp_path: Path) -> None:
    _run(tmp_path, CRASH_TRIALS_QUICK, seed=7)


@pytest.mark.slow
def test_crash_consistency_100(tmp_path: Path) -> None:
    _run(tmp_path, int(os.environ.get("CRASH_TRIALS", "100")), seed=int(os.environ.get("CRASH_SEED", "1")))


_SLOW_PUT = """
import sys, time
from storage.blob_file import FileBlobStore

def data():
    yield b"x" * 65536
    print("writing", flush=True)
    time.sleep(60)
    yield b"y"

FileBlobStore(sys.argv[1]).put("repos/r/manifest.json", data())
"""


def test_blob_put_killed_mid_write_leaves_nothing_after_reopen(tmp_path: Path) -> None:
    """A put killed before its rename leaves a temp file; opening the store removes it,
    while a put still running in another process keeps its own."""
    import signal
    import subprocess
    import sys

    from storage.blob_file import FileBlobStore

    root = tmp_path / "blobs"

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_PUT, str(root)], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
        return proc

    def temps() -> list[Path]:
        return list(root.rglob("*.tmp"))

    killed = start()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.stdout is not None
    killed.stdout.close()
    assert len(temps()) == 1  # the crash left it
    live = start()  # its own store opening swept the dead put's file
    try:
        [live_tmp] = temps()
        FileBlobStore(root)  # a put still running keeps its temp file
        assert temps() == [live_tmp]
    finally:
        live.kill()
        live.wait()
        assert live.stdout is not None
        live.stdout.close()
    FileBlobStore(root)
    assert temps() == []
