"""`make bench` in miniature: the harness runs end to end on the small repo, once.

No timing is asserted (the machine is shared); the test only proves that every scenario
ran on every server and produced a figure, so the harness cannot rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.scenarios import SCENARIOS
from benchmarks.targets import LIGHTTPD

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_smoke_runs_every_scenario(tmp_path: Path) -> None:
    targets = ["git", "ours"] if Path(LIGHTTPD).exists() else ["ours"]
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_server",
            "--smoke",
            "--size",
            "small",
            "--targets",
            ",".join(targets),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| repo | scenario |" in proc.stdout
    result = json.loads(out.read_text())
    assert len(result["rows"]) == len(SCENARIOS)
    for row in result["rows"]:
        assert sorted(row["samples"]) == sorted(targets)
        for samples in row["samples"].values():
            assert len(samples) == 1 and samples[0]["value"] > 0
    assert result["extra"]["small"]["wake_p50_ms"] > 0
    assert result["extra"]["many_repos"]["active_rss"] > 0
