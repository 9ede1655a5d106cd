"""``make bench``: gitserver against C git's http-backend on the same repos, same run.

Run: .venv/bin/python -m benchmarks.bench_server [--size default,large] [--runs 3]
(``make bench SIZE=default`` skips the large repo). For each size: both servers start,
the generated history is loaded into both (untimed), then every scenario runs ``--runs``
times, alternating which server goes first, and the table of medians is printed with
the ratio ours/git, server CPU seconds and peak RSS. Then the actor figures (ours only):
wake latency from hibernation and the RSS of ``--repos`` repos with ``--active`` served.
``--smoke`` shrinks every count (tests/benchmarks runs it so the harness cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import actor_bench, scenarios  # noqa: E402
from benchmarks.history import generate  # noqa: E402
from benchmarks.procstat import machine, rss_bytes  # noqa: E402
from benchmarks.report import Row, print_table  # noqa: E402
from benchmarks.targets import LIGHTTPD, Ours, Reference, Target, git_env, run_git  # noqa: E402

MIB = 1 << 20


def bench_size(size: str, args: argparse.Namespace, workdir: Path, rows: list[Row], extra: dict) -> None:
    work = workdir / size
    work.mkdir(parents=True)
    env = git_env(work)
    source = work / "source.git"
    run_git("clone", "-q", "--mirror", generate(size), source, env=env)
    ctx = scenarios.Context(source, work, env, fetches=args.fetches, concurrency=args.concurrency)
    targets: list[Target] = []
    try:
        if "git" in args.targets:
            targets.append(Reference(work / "ref"))
        if "ours" in args.targets:
            targets.append(Ours(work / "ours"))
        for target in targets:
            start = time.perf_counter()
            ctx.urls[target.label] = target.load("main", source, env)
            print(f"[{size}] loaded into {target.label} in {time.perf_counter() - start:.1f}s", flush=True)
            extra.setdefault(size, {})[f"{target.label}_idle_rss"] = rss_bytes(target.pid)
        ctx.pids = [t.pid for t in targets]
        for name, fn, goal, on_large in scenarios.SCENARIOS:
            if args.only and not any(word in name for word in args.only):
                continue
            if size == "large" and not on_large and not args.all_on_large:
                continue
            samples: dict[str, list[scenarios.Sample]] = {t.label: [] for t in targets}
            for run in range(args.runs):
                order = targets if run % 2 == 0 else targets[::-1]
                for target in order:
                    samples[target.label].append(fn(ctx, target, run))
            row = Row(size, _label(name, args), goal, samples)
            rows.append(row)
            print(row.progress_line(), flush=True)
            if any(s.after_wall for got in samples.values() for s in got):
                print(row.after_line(), flush=True)
        ours = next((t for t in targets if isinstance(t, Ours)), None)
        if ours is not None and args.wakes:
            p50, p99 = actor_bench.wake_latency(ours.store_path("main"), args.wakes, [t.pid for t in targets])
            extra[size]["wake_p50_ms"] = p50 * 1000
            extra[size]["wake_p99_ms"] = p99 * 1000
            print(
                f"[{size}] wake from hibernation over {args.wakes}: p50 {p50 * 1000:.2f} ms, "
                f"p99 {p99 * 1000:.2f} ms",
                flush=True,
            )
    finally:
        for target in targets:
            target.stop()


def _label(name: str, args: argparse.Namespace) -> str:
    return (
        name.replace("N)", f"{args.fetches})")
        if "N)" in name
        else (f"{args.concurrency} concurrent clones" if name == "concurrent clones" else name)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default=os.environ.get("SIZE", "default,large"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fetches", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--wakes", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--targets", default="git,ours")
    parser.add_argument("--only", action="append", help="run scenarios whose name contains this")
    parser.add_argument("--all-on-large", action="store_true", help="also the concurrent clones on large")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, one run (the test's mode)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.fetches, args.concurrency, args.wakes, args.repos, args.active = 1, 2, 2, 20, 20, 2
    if "git" in args.targets and not Path(LIGHTTPD).exists():
        print("lighttpd is missing: `make bench` installs it (apt-get install lighttpd)", file=sys.stderr)
        return 2
    print(f"machine: {machine()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gitserver-bench-"))
    rows: list[Row] = []
    extra: dict = {}
    try:
        for size in [s for s in args.size.split(",") if s]:
            bench_size(size, args, workdir, rows, extra)
        if args.repos:
            many = actor_bench.many_repos(workdir / "many", args.repos, args.active)
            extra["many_repos"] = vars(many)
            print(
                f"{many.repos} repos, {many.active} active: server RSS idle {many.idle_rss / MIB:.1f} MiB, "
                f"after {many.active} served {many.active_rss / MIB:.1f} MiB, peak {many.peak_rss / MIB:.1f} MiB",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"machine at the end: {machine()}")
    print_table(rows, extra)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "rows": [r.as_dict() for r in rows],
                    "extra": extra,
                    "median": statistics.median.__name__,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
