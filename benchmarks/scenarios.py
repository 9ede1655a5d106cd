"""The client-side scenarios of the server benchmark, run the same way on every target.

Rules:
- A scenario is ``fn(ctx, target, run) -> Sample``: untimed preparation first, then the
  timed part inside ``ctx.meter(target)``, which records wall time, the server tree's CPU
  seconds and its sampled peak RSS. ``Sample.value`` is the figure compared (seconds).
- Every target gets the same inputs: the same source repo and the same deterministic
  commits (fixed dates), made once per run and pushed to each target.
- Scenarios that write (pushes) come after the read-only ones in ``SCENARIOS``; their
  commits go to ``refs/heads/bench-push``, a branch of the source's history.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procstat import PeakSampler, cpu_seconds, settle
from benchmarks.targets import Target, run_git


@dataclass
class Sample:
    value: float  # the compared figure, seconds
    cpu: float = 0.0  # server CPU seconds during the timed part
    rss: int = 0  # server peak RSS (bytes) during the timed part
    rss_before: int = 0


@dataclass
class Context:
    """Shared state of one repo size across scenarios and targets."""

    source: Path  # bare repo with the generated history (a local mirror: commits are added)
    work: Path  # scratch directory
    env: dict[str, str]
    fetches: int = 20
    concurrency: int = 20
    urls: dict[str, str] = field(default_factory=dict)  # target label -> main repo url
    mirrors: dict[str, Path] = field(default_factory=dict)  # target label -> local mirror
    commits: dict[tuple[str, int], str] = field(default_factory=dict)
    _last: Sample | None = None

    @contextmanager
    def meter(self, target: Target) -> Iterator[list[float]]:
        """Measure the block: yields a list the block may fill with its own value."""
        sampler = PeakSampler(target.pid)
        cpu0 = cpu_seconds(target.pid)
        sampler.start()
        box: list[float] = []
        start = time.perf_counter()
        try:
            yield box
        finally:
            wall = time.perf_counter() - start
            settle(target.pid)  # CGI children finish and are reaped: their CPU counts
            peak = sampler.stop()
            self._last = Sample(box[0] if box else wall, cpu_seconds(target.pid) - cpu0, peak, sampler.before)

    def take(self) -> Sample:
        assert self._last is not None
        sample, self._last = self._last, None
        return sample

    def scratch(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        return path

    def commit(self, label: str, run: int) -> str:
        """A deterministic small commit on top of the previous one of ``label`` (or main)."""
        key = (label, run)
        if key not in self.commits:
            parent = (
                self.commits.get((label, run - 1))
                or run_git("rev-parse", "refs/heads/main", cwd=self.source, env=self.env).strip()
            )
            text = f"bench {label} run {run}\n".encode() * 20
            blob = (
                subprocess.run(
                    ["git", "hash-object", "-w", "--stdin"],
                    cwd=self.source,
                    env=self.env,
                    input=text,
                    capture_output=True,
                    check=True,
                )
                .stdout.decode()
                .strip()
            )
            index_env = dict(self.env, GIT_INDEX_FILE=str(self.work / f"index-{label}"))
            run_git("read-tree", parent, cwd=self.source, env=index_env)
            run_git(
                "update-index",
                "--add",
                "--cacheinfo",
                f"100644,{blob},bench/{label}.txt",
                cwd=self.source,
                env=index_env,
            )
            tree = run_git("write-tree", cwd=self.source, env=index_env).strip()
            self.commits[key] = run_git(
                "commit-tree", tree, "-p", parent, "-m", f"bench {label} {run}", cwd=self.source, env=self.env
            ).strip()
        return self.commits[key]


Scenario = Callable[[Context, Target, int], Sample]


def _clone(*flags: str, version: str = "2") -> Scenario:
    def scenario(ctx: Context, target: Target, run: int) -> Sample:
        dest = ctx.scratch(f"clone-{target.label}")
        with ctx.meter(target):
            run_git(
                "-c",
                f"protocol.version={version}",
                "clone",
                "-q",
                "--bare",
                *flags,
                ctx.urls[target.label],
                dest,
                env=ctx.env,
            )
        shutil.rmtree(dest)
        return ctx.take()

    return scenario


def _mirror(ctx: Context, target: Target) -> Path:
    path = ctx.mirrors.get(target.label)
    if path is None:
        path = ctx.mirrors[target.label] = ctx.work / f"mirror-{target.label}"
        run_git("clone", "-q", "--mirror", ctx.urls[target.label], path, env=ctx.env)
    return path


def noop_fetch(ctx: Context, target: Target, run: int) -> Sample:
    mirror = _mirror(ctx, target)
    times: list[float] = []
    with ctx.meter(target) as box:
        for _ in range(ctx.fetches):
            t = time.perf_counter()
            run_git("fetch", "-q", cwd=mirror, env=ctx.env)
            times.append(time.perf_counter() - t)
        box.append(statistics.median(times))
    return ctx.take()


def _push(ctx: Context, target: Target, label: str, run: int) -> None:
    oid = ctx.commit(label, run)
    run_git(
        "push",
        "-q",
        "-f",
        ctx.urls[target.label],
        f"{oid}:refs/heads/bench-{label}",
        cwd=ctx.source,
        env=ctx.env,
    )


def incremental_fetch(ctx: Context, target: Target, run: int) -> Sample:
    mirror = _mirror(ctx, target)
    _push(ctx, target, "fetch", run)
    with ctx.meter(target):
        run_git("fetch", "-q", cwd=mirror, env=ctx.env)
    return ctx.take()


def push_small(ctx: Context, target: Target, run: int) -> Sample:
    oid = ctx.commit("push", run)
    with ctx.meter(target):
        run_git(
            "push",
            "-q",
            "-f",
            ctx.urls[target.label],
            f"{oid}:refs/heads/bench-push",
            cwd=ctx.source,
            env=ctx.env,
        )
    return ctx.take()


def push_mirror(ctx: Context, target: Target, run: int) -> Sample:
    name = f"mirror-{run}"
    url = target.create_empty(name)
    with ctx.meter(target):
        run_git("push", "-q", "--mirror", url, cwd=ctx.source, env=ctx.env)
    target.delete(name)
    return ctx.take()


def concurrent_clones(ctx: Context, target: Target, run: int) -> Sample:
    dests = [ctx.scratch(f"cc-{target.label}-{i}") for i in range(ctx.concurrency)]
    url = ctx.urls[target.label]

    def one(dest: Path) -> None:
        run_git("-c", "protocol.version=2", "clone", "-q", "--bare", url, dest, env=ctx.env)

    with ctx.meter(target), ThreadPoolExecutor(ctx.concurrency) as pool:
        list(pool.map(one, dests))
    for dest in dests:
        shutil.rmtree(dest)
    return ctx.take()


# (name, scenario, issue target ratio for wall time, also on the large repo)
SCENARIOS: list[tuple[str, Scenario, float | None, bool]] = [
    ("full clone v2", _clone(), 1.05, True),
    ("full clone v0", _clone(version="0"), 1.05, True),
    ("shallow clone depth 1", _clone("--depth", "1"), 1.1, True),
    ("partial clone blob:none", _clone("--filter=blob:none"), 1.1, True),
    ("no-op fetch (median of N)", noop_fetch, 0.8, True),
    ("incremental fetch", incremental_fetch, 1.0, True),
    ("push one small commit", push_small, 1.0, True),
    ("push --mirror (empty repo)", push_mirror, 1.5, True),
    ("concurrent clones", concurrent_clones, 1.0, False),
]
