"""The client-side scenarios of the server benchmark, run the same way on every target.

Rules:
- A scenario is ``fn(ctx, target, run) -> Sample``: untimed preparation first, then the
  timed part inside ``ctx.meter(target)``, which records wall time, the server tree's CPU
  seconds and its sampled peak RSS. ``Sample.value`` is the figure compared (seconds).
- Every target gets the same inputs: the same source repo and the same deterministic
  commits (fixed dates), made once per run and pushed to each target.
- Scenarios that write (pushes) come after the read-only ones in ``SCENARIOS``; their
  commits go to ``refs/heads/bench-push``, a branch of the source's history.
- A push scenario waits until every server is quiet (``targets.wait_quiet`` on
  ``Context.pids``) before its timed part: a big push sets off a blob-store snapshot in
  ours (gitserver.tiering), asynchronous work after the push was acknowledged, which
  would otherwise run into the next timed push (of either server: they share the cores).
  ``push --mirror`` also times that work apart: after the timed push it waits for the
  pushed-to server to be quiet and records the wait and the server CPU in it
  (``Sample.after_wall``, ``Sample.after_cpu``).
- Timed git commands reach our server with the token in an ``Authorization`` header
  from the first request (``Target.header_remote``), as automated clients send it; the
  informational row "no-op fetch, token in URL" keeps the token in the URL, where git
  pays a 401 round trip per fetch. Informational rows have no target ratio.
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
from benchmarks.targets import Target, run_git, wait_quiet


@dataclass
class Sample:
    value: float  # the compared figure, seconds
    cpu: float = 0.0  # server CPU seconds during the timed part
    rss: int = 0  # server peak RSS (bytes) during the timed part
    rss_before: int = 0
    after_wall: float = 0.0  # push --mirror: seconds until the server was quiet after it
    after_cpu: float = 0.0  # push --mirror: server CPU seconds in that time


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
    pids: list[int] = field(default_factory=list)  # every server (waited for before a push)
    _last: Sample | None = None

    def settle(self) -> None:
        """Wait until every server is quiet (module rules)."""
        wait_quiet(self.pids)

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


def _remote(ctx: Context, target: Target, url: str | None = None) -> tuple[str, dict[str, str]]:
    """The URL and env of a timed git command: credentials in a header (module rules)."""
    return target.header_remote(url or ctx.urls[target.label], ctx.env)


def _clone(*flags: str, version: str = "2") -> Scenario:
    def scenario(ctx: Context, target: Target, run: int) -> Sample:
        dest = ctx.scratch(f"clone-{target.label}")
        url, env = _remote(ctx, target)
        with ctx.meter(target):
            run_git("-c", f"protocol.version={version}", "clone", "-q", "--bare", *flags, url, dest, env=env)
        shutil.rmtree(dest)
        return ctx.take()

    return scenario


def _mirror(ctx: Context, target: Target, token_in_url: bool = False) -> tuple[Path, dict[str, str]]:
    """A local mirror of the main repo and the env to fetch it with; ``token_in_url``:
    its remote URL carries the token and the env no header."""
    key = f"{target.label}-url" if token_in_url else target.label
    url, env = (ctx.urls[target.label], ctx.env) if token_in_url else _remote(ctx, target)
    path = ctx.mirrors.get(key)
    if path is None:
        path = ctx.mirrors[key] = ctx.work / f"mirror-{key}"
        run_git("clone", "-q", "--mirror", url, path, env=env)
    return path, env


def _fetches(ctx: Context, target: Target, token_in_url: bool) -> Sample:
    mirror, env = _mirror(ctx, target, token_in_url)
    times: list[float] = []
    with ctx.meter(target) as box:
        for _ in range(ctx.fetches):
            t = time.perf_counter()
            run_git("fetch", "-q", cwd=mirror, env=env)
            times.append(time.perf_counter() - t)
        box.append(statistics.median(times))
    return ctx.take()


def noop_fetch(ctx: Context, target: Target, run: int) -> Sample:
    return _fetches(ctx, target, token_in_url=False)


def noop_fetch_token_in_url(ctx: Context, target: Target, run: int) -> Sample:
    return _fetches(ctx, target, token_in_url=True)


def _push(ctx: Context, target: Target, label: str, run: int) -> None:
    oid = ctx.commit(label, run)
    url, env = _remote(ctx, target)
    run_git("push", "-q", "-f", url, f"{oid}:refs/heads/bench-{label}", cwd=ctx.source, env=env)


def incremental_fetch(ctx: Context, target: Target, run: int) -> Sample:
    mirror, env = _mirror(ctx, target)
    _push(ctx, target, "fetch", run)
    with ctx.meter(target):
        run_git("fetch", "-q", cwd=mirror, env=env)
    return ctx.take()


def push_small(ctx: Context, target: Target, run: int) -> Sample:
    oid = ctx.commit("push", run)
    url, env = _remote(ctx, target)
    ctx.settle()
    with ctx.meter(target):
        run_git("push", "-q", "-f", url, f"{oid}:refs/heads/bench-push", cwd=ctx.source, env=env)
    return ctx.take()


def push_mirror(ctx: Context, target: Target, run: int) -> Sample:
    name = f"mirror-{run}"
    url, env = _remote(ctx, target, target.create_empty(name))
    ctx.settle()
    with ctx.meter(target):
        run_git("push", "-q", "--mirror", url, cwd=ctx.source, env=env)
    sample = ctx.take()
    cpu0 = cpu_seconds(target.pid)
    sample.after_wall = wait_quiet([target.pid])
    sample.after_cpu = cpu_seconds(target.pid) - cpu0
    target.delete(name)
    return sample


def concurrent_clones(ctx: Context, target: Target, run: int) -> Sample:
    dests = [ctx.scratch(f"cc-{target.label}-{i}") for i in range(ctx.concurrency)]
    url, env = _remote(ctx, target)

    def one(dest: Path) -> None:
        run_git("-c", "protocol.version=2", "clone", "-q", "--bare", url, dest, env=env)

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
    ("no-op fetch, token in URL (info; median of N)", noop_fetch_token_in_url, None, True),
    ("incremental fetch", incremental_fetch, 1.0, True),
    ("push one small commit", push_small, 1.0, True),
    ("push --mirror (empty repo)", push_mirror, 1.5, True),
    ("concurrent clones", concurrent_clones, 1.0, False),
]
