"""Atheris campaign runner: ``python -m tests.fuzz.run TARGET [libFuzzer flags]``.

``make fuzz`` runs every target for FUZZ_RUNS executions (default 1,000,000) with the
committed seeds in tests/fuzz/corpus/TARGET and a per-input timeout. A crash leaves
``crash-*`` in tests/fuzz/findings/; add it to tests/fuzz/regressions/TARGET/ so the smoke
replays it forever. Needs ``pip install atheris``.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        from tests.fuzz.targets import TARGETS, TIME_BOUND_S
    name = sys.argv[1]
    target = TARGETS[name]
    here = os.path.dirname(os.path.abspath(__file__))
    findings = os.path.join(here, "findings")
    os.makedirs(findings, exist_ok=True)
    work = os.path.join(findings, f"corpus-{name}")  # new inputs; the committed seeds stay put
    os.makedirs(work, exist_ok=True)
    args = [
        sys.argv[0],
        *sys.argv[2:],
        f"-timeout={int(TIME_BOUND_S) + 1}",
        f"-artifact_prefix={findings}/{name}-",
        "-rss_limit_mb=1024",
        work,
        os.path.join(here, "corpus", name),
    ]
    atheris.Setup(args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
