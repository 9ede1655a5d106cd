"""A tiny run of the soak (``benchmarks/soak.py``, ``make soak``) so the script cannot rot.

Rules: 5 clients for 8 s against a real ``gitserver serve``, through the script's command
line; every kind of request (clone, fetch, push, API) must have happened, none may fail,
and the RSS sampler must have seen the server. RSS flatness needs minutes, so it is
checked by ``make soak`` only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_soak_smoke(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--clients", "5", "--duration", "8", "--no-check-rss",
         "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    printed = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, printed + proc.stderr.decode(errors="replace")
    result = json.loads(out.read_text())
    assert sum(result["errors"].values()) == 0, result["error_samples"]
    assert all(result["requests"][kind] > 0 for kind in ("clone", "fetch", "push", "api")), result["requests"]
    assert result["rss_end_kib"] > 10_000 and result["rss_samples"]
    assert "p99 ms" in printed and "server RSS" in printed and "cores" in printed
