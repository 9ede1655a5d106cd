"""Actor economics: wake latency from hibernation, and the RSS of many repos.

Rules:
- ``wake_latency`` drives the real ``ActorHost`` in this process on a stored repo file:
  each sample is hibernated first, then timed from the request for a reader to a served
  ``list_refs`` (SQLite open, thread hop, refs read), as the first request after a
  hibernation sees it, without HTTP. It first waits (``targets.wait_quiet``) until the
  servers given in ``quiet`` use under 5 % of a core over a second: after the push
  scenarios ours writes snapshots of the large repo to the blob store for a while
  (gitserver.tiering), and on a 2-core machine that background work, not the wake, made
  the p99 (28 ms on ``large`` in the 18:31 run).
- ``many_repos`` fills a fresh data dir offline (catalog rows plus copies of an empty
  repo file), starts ``gitserver serve`` on it and reports its RSS idle, and after
  ``active`` of them received a one-commit push, a clone and a ``git ls-remote`` each.
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from benchmarks.procstat import PeakSampler, rss_bytes
from benchmarks.targets import NS, Ours, git_env, run_git, wait_quiet


def wake_latency(path: Path, wakes: int, quiet: list[int] | None = None) -> tuple[float, float]:
    """(p50, p99) seconds of ``wakes`` wakes of the repo file at ``path``, once the
    servers ``quiet`` are idle (module rules)."""
    from gitserver.actors import ActorHost

    if quiet:
        waited = wait_quiet(quiet)
        print(f"wake latency: waited {waited:.1f} s for the servers to go idle", flush=True)

    async def main() -> list[float]:
        host = ActorHost(idle_timeout=3600)
        times: list[float] = []
        for _ in range(wakes):
            start = time.perf_counter()
            async with host.actor("bench/wake", path).reading() as repo:
                await trio.to_thread.run_sync(repo.list_refs, limiter=host.limiter)
            times.append(time.perf_counter() - start)
            await host.forget("bench/wake")
        return times

    times = sorted(trio.run(main))
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


@dataclass
class ManyRepos:
    repos: int
    active: int
    idle_rss: int  # server RSS after start, nothing served
    active_rss: int  # after the active repos were served (actors resident)
    peak_rss: int


def _tiny_source(workdir: Path, env: dict[str, str]) -> Path:
    """A one-commit repository of a few small files (what each active repo receives)."""
    work = workdir / "tiny"
    run_git("init", "-q", "-b", "main", work, env=env)
    for i in range(10):
        (work / f"file{i}.txt").write_text(f"file {i}\n" * 200)
    run_git("add", ".", cwd=work, env=env)
    run_git("commit", "-q", "-m", "tiny", cwd=work, env=env)
    return work


def many_repos(workdir: Path, repos: int, active: int) -> ManyRepos:
    """Start a server over ``repos`` repos, of which ``active`` get traffic; see the rules."""
    from gitserver import catalog_mirror
    from gitserver.catalog import Catalog
    from storage.blobstore import open_blobstore
    from storage.repo_store import RepoStore

    data = workdir / "gitserver-data"
    data.mkdir(parents=True)
    template = workdir / "empty.sqlite"
    RepoStore.create(template).close()
    catalog = Catalog(data)
    names = [f"r{i:05d}" for i in range(repos)]
    try:
        for name in names:
            record = catalog.create(NS, name)
            record.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, record.path)
        # rows made here bypass the server's mirroring of new repos into the blob store; its
        # start-up would then mirror 10,000 rows (~1 min) before listening: do it untimed now
        catalog_mirror.reconcile(catalog, open_blobstore(f"file://{data / 'blobs'}"))
    finally:
        catalog.close()
    env = git_env(workdir)
    source = _tiny_source(workdir, env)
    server = Ours(workdir)
    try:
        idle = rss_bytes(server.pid)
        sampler = PeakSampler(server.pid)
        sampler.start()
        step = max(1, repos // max(1, active))
        for name in names[::step][:active]:
            server.tokens[name] = server.admin
            url = server.url(name)
            run_git("push", "-q", url, "refs/heads/main:refs/heads/main", cwd=source, env=env)
            dest = workdir / "clone"
            run_git("clone", "-q", "--bare", url, dest, env=env)
            run_git("ls-remote", url, env=env)
            shutil.rmtree(dest)
        peak = sampler.stop()
        return ManyRepos(repos, active, idle, rss_bytes(server.pid), peak)
    finally:
        server.stop()
