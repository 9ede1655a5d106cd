"""Soak test: many clients mixing clone, fetch, push and API calls against one real server.

Rules:
- Starts ``gitserver serve`` (``benchmarks.targets.Ours``) on 127.0.0.1, creates a few
  repos, seeds each with a small history, then runs ``--clients`` threads for
  ``--duration`` seconds. Each client owns one repo slot, a working clone and its own
  branches (``c<i>`` for git pushes, ``api-c<i>`` for the commit API), so no push can be
  rejected for a reason other than a server fault: every failure is an error.
- Operations (weights): clone 15 (protocol v0 and v2 alternately), fetch 25, push 20,
  API 40 (repo info, refs, commits, tree, raw, diff, reflog, and ``POST /commits``).
- A sampler reads the server's RSS (``benchmarks.procstat.rss_bytes``) every second. After
  ``--warmup`` seconds the median of the next samples is the warm RSS; the median of the
  last samples is the end RSS. The run is flat when end <= warm x (1 + tolerance).
- Prints requests per kind, errors, RSS at warm-up, end and max, p50/p99 latency per
  kind, and the machine. Exit status 1 when there was any error, or RSS grew (with
  ``--check-rss``). ``--json FILE`` writes the same figures for tests.

    make soak [SOAK_CLIENTS=50] [SOAK_SECONDS=180]
    .venv/bin/python -m benchmarks.soak --clients 5 --duration 10 --no-check-rss
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from benchmarks.procstat import machine, rss_bytes
from benchmarks.targets import NS, Ours, git_env, run_git

KINDS = ("clone", "fetch", "push", "api")
WEIGHTS = (15, 25, 20, 40)
API_READS = ("", "/refs", "/commits?rev=main&limit=10", "/tree?rev=main", "/raw?rev=main&path=README.md",
             "/diff?from=main~1&to=main", "/reflog?limit=10")  # fmt: skip


@dataclass
class Result:
    clients: int
    duration_s: float
    warmup_s: float
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    p50_ms: dict[str, float] = field(default_factory=dict)
    p99_ms: dict[str, float] = field(default_factory=dict)
    rss_warm_kib: int = 0
    rss_end_kib: int = 0
    rss_max_kib: int = 0
    rss_growth: float = 0.0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    machine: str = ""

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())


class Recorder:
    """Latencies and errors from every client thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {k: [] for k in KINDS}
        self.errors: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.samples: list[str] = []

    def ok(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.latencies[kind].append(seconds)

    def error(self, kind: str, seconds: float, why: str) -> None:
        with self._lock:
            self.latencies[kind].append(seconds)
            self.errors[kind] += 1
            if len(self.samples) < 20:
                self.samples.append(f"{kind}: {why[-400:]}")


def _seed(source: Path, env: dict[str, str]) -> None:
    run_git("init", "-q", "-b", "main", source, env=env)
    for i in range(8):
        (source / "README.md").write_text(f"soak seed {i}\n")
        pkg = source / "src"
        pkg.mkdir(exist_ok=True)
        for j in range(6):
            (pkg / f"m{j}.py").write_text("".join(f"x{k} = {i * j + k}\n" for k in range(200)))
        run_git("add", "-A", cwd=source, env=env)
        run_git("commit", "-q", "-m", f"seed {i}", cwd=source, env=env)


class Client:
    """One simulated user: a working clone of its repo and its own branches."""

    def __init__(
        self,
        index: int,
        server: Ours,
        repo: str,
        root: Path,
        env: dict[str, str],
        rec: Recorder,
        writes: bool = True,
    ) -> None:
        self.i = index
        self.server = server
        self.repo = repo
        self.dir = root / f"client{index}"
        self.env = env
        self.rec = rec
        self.rng = random.Random(index)
        self.url = server.url(repo)
        self.token = server.tokens[repo]
        self.pushes = 0
        self.weights = (
            WEIGHTS if writes else tuple(0 if k == "push" else w for k, w in zip(KINDS, WEIGHTS, strict=True))
        )
        self.writes = writes
        self.api_parent: str | None = None
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/api/v1/namespaces/{NS}/repos/{repo}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
            # below the server's 5 s keep-alive: reusing a connection the server is just
            # closing fails ("Server disconnected"), and httpx does not retry (RFC 9112 9.3.1)
            limits=httpx.Limits(keepalive_expiry=2.0),
        )

    def setup(self) -> None:
        run_git("clone", "-q", self.url, self.dir / "work", env=self.env)
        run_git("checkout", "-q", "-b", f"c{self.i}", cwd=self.dir / "work", env=self.env)

    def run(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            kind = self.rng.choices(KINDS, self.weights)[0]
            started = time.monotonic()
            try:
                getattr(self, kind)()
            except Exception as exc:  # every failure is a finding; keep going
                self.rec.error(kind, time.monotonic() - started, repr(exc))
            else:
                self.rec.ok(kind, time.monotonic() - started)
        self.http.close()

    def _git(self, *args: str | Path, cwd: Path | None = None) -> None:
        proc = subprocess.run(
            ["git", *map(str, args)], cwd=cwd, env=self.env, capture_output=True, timeout=300
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"git {args[0]} exit {proc.returncode}: {proc.stderr.decode(errors='replace')}"
            )

    def clone(self) -> None:
        target = self.dir / "clone"
        shutil.rmtree(target, ignore_errors=True)
        version = "2" if self.rng.random() < 0.5 else "0"
        self._git("-c", f"protocol.version={version}", "clone", "-q", self.url, target)
        if not (target / "README.md").exists():
            raise RuntimeError("clone has no README.md")
        shutil.rmtree(target, ignore_errors=True)

    def fetch(self) -> None:
        self._git("fetch", "-q", "origin", cwd=self.dir / "work")

    def push(self) -> None:
        work = self.dir / "work"
        self.pushes += 1
        (work / f"client{self.i}.txt").write_text(f"push {self.pushes} by client {self.i}\n" * 20)
        self._git("add", "-A", cwd=work)
        self._git("commit", "-q", "-m", f"client {self.i} push {self.pushes}", cwd=work)
        self._git("push", "-q", "origin", f"HEAD:refs/heads/c{self.i}", cwd=work)

    def api(self) -> None:
        if self.writes and self.rng.random() < 1 / 7:
            body = {
                "branch": f"api-c{self.i}",
                "parent": self.api_parent,
                "message": f"api commit by client {self.i}",
                "author": {"name": "Soak", "email": "soak@example.com"},
                "files": [
                    {
                        "path": "api.txt",
                        "content_base64": base64.b64encode(str(time.time()).encode()).decode(),
                    }
                ],
            }
            resp = self.http.post("/commits", json=body)
            if resp.status_code != 201:
                raise RuntimeError(f"POST /commits: {resp.status_code} {resp.text[:300]}")
            self.api_parent = resp.json()["id"]
            return
        route = self.rng.choice(API_READS)
        resp = self.http.get(route)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {route or '/'}: {resp.status_code} {resp.text[:300]}")
        resp.read()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_soak(
    clients: int,
    duration: float,
    warmup: float,
    repos: int = 5,
    server_env: dict[str, str] | None = None,
    writes: bool = True,
) -> Result:
    """Run the soak once; returns the figures (nothing is asserted here)."""
    with tempfile.TemporaryDirectory(prefix="gitserver-soak-") as tmp:
        root = Path(tmp)
        env = git_env(root / "home")
        (root / "home").mkdir()
        server = Ours(root / "server", extra_env=server_env)
        try:
            source = root / "seed"
            _seed(source, env)
            names = [f"soak{r}" for r in range(min(repos, clients))]
            for name in names:
                url = server.create_empty(name)
                run_git("push", "-q", url, "main", cwd=source, env=env)
            rec = Recorder()
            pool = [Client(i, server, names[i % len(names)], root, env, rec, writes) for i in range(clients)]
            for client in pool:
                client.setup()
            samples: list[tuple[float, int]] = []
            done = threading.Event()
            t0 = time.monotonic()

            def sample() -> None:
                while not done.wait(1.0):
                    samples.append((time.monotonic() - t0, rss_bytes(server.pid) // 1024))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            stop_at = t0 + duration
            threads = [threading.Thread(target=c.run, args=(stop_at,)) for c in pool]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            done.set()
            sampler.join()
        finally:
            server.stop()
    result = Result(clients=clients, duration_s=round(elapsed, 1), warmup_s=warmup, machine=machine())
    for kind in KINDS:
        result.requests[kind] = len(rec.latencies[kind])
        result.errors[kind] = rec.errors[kind]
        result.p50_ms[kind] = round(_percentile(rec.latencies[kind], 0.50), 1)
        result.p99_ms[kind] = round(_percentile(rec.latencies[kind], 0.99), 1)
    every = [x for kind in KINDS for x in rec.latencies[kind]]
    result.p50_ms["all"] = round(_percentile(every, 0.50), 1)
    result.p99_ms["all"] = round(_percentile(every, 0.99), 1)
    result.error_samples = rec.samples
    result.rss_samples = samples
    after = [kib for t, kib in samples if t >= warmup]
    if after:
        window = max(1, len(after) // 10)
        result.rss_warm_kib = int(statistics.median(after[:window]))
        result.rss_end_kib = int(statistics.median(after[-window:]))
        result.rss_max_kib = max(after)
        result.rss_growth = round(result.rss_end_kib / result.rss_warm_kib - 1, 4)
    return result


def report(result: Result) -> str:
    lines = [
        f"soak: {result.clients} clients for {result.duration_s} s (warm-up {result.warmup_s:.0f} s)",
        f"machine: {result.machine}",
        f"{'kind':<6} {'requests':>9} {'errors':>7} {'p50 ms':>9} {'p99 ms':>9}",
    ]
    for kind in KINDS:
        lines.append(
            f"{kind:<6} {result.requests[kind]:>9} {result.errors[kind]:>7} "
            f"{result.p50_ms[kind]:>9} {result.p99_ms[kind]:>9}"
        )
    total = sum(result.requests.values())
    lines.append(
        f"{'all':<6} {total:>9} {result.total_errors:>7} {result.p50_ms['all']:>9} {result.p99_ms['all']:>9}"
        f"   ({total / max(result.duration_s, 0.001):.1f} req/s)"
    )
    lines.append(
        f"server RSS: {result.rss_warm_kib / 1024:.1f} MiB after warm-up, {result.rss_end_kib / 1024:.1f} MiB at the end "
        f"({result.rss_growth:+.1%}), max {result.rss_max_kib / 1024:.1f} MiB"
    )
    lines.extend(f"error: {s}" for s in result.error_samples)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before RSS counts (default 1/3)")
    parser.add_argument("--repos", type=int, default=5)
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--check-rss", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--read-only", action="store_true", help="no pushes and no API commits (diagnosis)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else args.duration / 3
    server_env = dict(item.split("=", 1) for item in args.server_env)
    result = run_soak(args.clients, args.duration, warmup, args.repos, server_env, not args.read_only)
    print(report(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=1))
    failed = result.total_errors > 0
    if args.check_rss and result.rss_growth > args.rss_tolerance:
        print(f"FAIL: server RSS grew {result.rss_growth:+.1%} after warm-up (> {args.rss_tolerance:.0%})")
        failed = True
    if result.total_errors:
        print(f"FAIL: {result.total_errors} errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
