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
