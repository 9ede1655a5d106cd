"""SIGKILL crash-consistency harness (issue #7): kill the server during a write, restart
it on the same data dir, check every repo.

How it works: one data dir per run. Each trial starts `gitserver serve`, snapshots every
repo's refs through the API, starts one random operation in a thread (git push of two
refs, API commit, fork, restore, snapshot; on the base repo or one of at most MAX_FORKS
forks; a fork beyond that is deleted after its checks, and the next trial's file checks
show that the delete left nothing), sleeps a random time (exponential, mean
MEAN_DELAY_S, at most MAX_DELAY_S) and SIGKILLs the server. Then it restarts the server
and checks:
- refs: every repo is at its old value or (for the target) the new value as a whole,
  never between; an operation the client saw acknowledged is never lost;
- every repo clones with git and passes `git fsck --strict`;
- `gitserver fsck NS/NAME` exits 0 for every repo (this includes the orphan checks of
  storage/fsck.py: chunk rows of no pack, packs no object lies in);
- no leftover temp files in the data dir (the blob store sweeps those of killed puts when
  it opens), and no repo file the catalog does not name.

Seeded: `random.Random(seed)` picks operations, targets and kill instants, so a failing
trial is replayed with the same seed. `python -m tests.hardening.crash_harness --trials
100 --seed 1` runs it by hand; `make crash-test` runs 100 trials under pytest.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import VENV_BIN, Server, git, git_env, git_out, run_server, show_refs

NS = "crash"
BASE = "base"
MAX_FORKS = 2
MAX_DELAY_S = 0.5
MEAN_DELAY_S = 0.06
OPS = ("push", "commit", "fork", "restore", "snapshot")

Refs = dict[str, str]


@dataclass
class TrialResult:
    index: int
    op: str
    target: str
    delay_s: float
    acknowledged: bool
    outcome: str  # "old" or "new": the state the target was found in after the restart
    problems: list[str] = field(default_factory=list)


@dataclass
class _Op:
    """One operation of a trial: ``run`` does it (True when the client saw success);
    ``judge(after_refs, srv)`` says "old" or "new", or raises AssertionError."""

    run: Callable[[], bool]
    judge: Callable[[dict[str, Refs], Server], str]


class CrashHarness:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.env = git_env(root / "home")
        self.tokens: dict[str, str] = {}
        self.forks: list[str] = []
        self.results: list[TrialResult] = []
        self.blob_temp_files: set[str] = set()

    # -- the loop -------------------------------------------------------------------

    def run(self, trials: int) -> list[TrialResult]:
        with run_server(self.root) as srv:
            self._setup(srv)
        for i in range(trials):
            self.results.append(self._trial(i))
        return self.results

    def _setup(self, srv: Server) -> None:
        srv.create_repo(NS, BASE)
        work = self.root / "seed"
        git("init", "-q", "-b", "main", work, env=self.env)
        for n in range(2):
            (work / f"f{n}.txt").write_text(f"seed {n}\n")
            git("add", "-A", cwd=work, env=self.env)
            git("commit", "-q", "-m", f"seed {n}", cwd=work, env=self.env)
        git("push", "-q", self._url(srv, BASE), "main", cwd=work, env=self.env)

    def _trial(self, i: int) -> TrialResult:
        with run_server(self.root) as srv:
            before = self._all_refs(srv)
            op_name = self.rng.choice(OPS)
            target = self.rng.choice([BASE, *self.forks])
            if op_name == "restore" and not self._parent_of(srv, target, before[target]):
                op_name = "commit"
            op = self._make(op_name, srv, i, target, before)
            # Most kills land in the first tens of milliseconds, where API writes live;
            # the tail reaches into big pushes and past the end (an acknowledged write).
            delay = min(MAX_DELAY_S, self.rng.expovariate(1 / MEAN_DELAY_S))
            acked: list[bool] = []
            errors: list[BaseException] = []

            def runner() -> None:
                try:
                    acked.append(op.run())
                except Exception as exc:  # a killed server: connection errors
                    errors.append(exc)

            thread = threading.Thread(target=runner)
            thread.start()
            time.sleep(delay)
            srv.process.kill()
            srv.process.wait()
            thread.join(timeout=120)
        acknowledged = bool(acked and acked[0])
        result = TrialResult(i, op_name, target, round(delay, 3), acknowledged, "?")
        with run_server(self.root) as srv:
            after = self._all_refs(srv)
            try:
                result.outcome = op.judge(after, srv)
                if acknowledged and result.outcome != "new":
                    result.problems.append("acknowledged operation lost")
            except AssertionError as exc:
                result.problems.append(f"refs: {exc}")
            fork_name = f"{target}-f{i}"
            if op_name == "fork" and fork_name in after:
                self.forks.append(fork_name)
            for name, refs in after.items():
                if name != target and name not in before:
                    continue
                if name != target and refs != before.get(name):
                    result.problems.append(f"{name}: refs changed by an operation on {target}")
            result.problems += self._check_repos(srv, after)
            if len(self.forks) > MAX_FORKS:  # keep the checks bounded: delete the newest
                status, body = srv.api("DELETE", f"/namespaces/{NS}/repos/{self.forks.pop()}")
                if status != 204:
                    result.problems.append(f"delete of a fork failed: {status} {body}")
        return result

    # -- operations -----------------------------------------------------------------

    def _make(self, op: str, srv: Server, i: int, target: str, before: dict[str, Refs]) -> _Op:
        old = before[target]
        old_main = old["refs/heads/main"]

        def unchanged_or(new: Refs | None) -> Callable[[dict[str, Refs], Server], str]:
            def judge(after: dict[str, Refs], _srv: Server) -> str:
                if after[target] == old:
                    return "old"
                assert new is not None and after[target] == new, f"{target}: {old} -> {after[target]}"
                return "new"

            return judge

        if op == "push":
            work = self.root / f"work-{target}"
            if not work.exists():
                git("clone", "-q", self._url(srv, target), work, env=self.env)
            git(
                "fetch",
                "-q",
                "--prune",
                self._url(srv, target),
                "+refs/heads/*:refs/remotes/origin/*",
                cwd=work,
                env=self.env,
            )
            git("checkout", "-q", "-B", "main", old_main, cwd=work, env=self.env)
            size = self.rng.choice((10_000, 1_000_000, 4_000_000))
            (work / f"push{i}.bin").write_bytes(os.urandom(size))
            git("add", "-A", cwd=work, env=self.env)
            git("commit", "-q", "-m", f"push {i}", cwd=work, env=self.env)
            tip = git_out("rev-parse", "HEAD", cwd=work, env=self.env).strip()
            url = self._url(srv, target)

            def push() -> bool:
                proc = git(
                    "push", "-q", url, "main", f"main:refs/heads/t{i}", cwd=work, env=self.env, check=False
                )
                return proc.returncode == 0

            return _Op(push, unchanged_or({**old, "refs/heads/main": tip, f"refs/heads/t{i}": tip}))

        if op == "commit":
            body = {
                "branch": "main",
                "parent": old_main,
                "message": f"crash commit {i}",
                "author": {"name": "Crash", "email": "crash@example.com"},
                "files": [
                    {"path": f"api{i}.txt", "content_base64": base64.b64encode(os.urandom(64)).decode()}
                ],
            }

            def commit() -> bool:
                return srv.api("POST", f"/namespaces/{NS}/repos/{target}/commits", body)[0] == 201

            def judge_commit(after: dict[str, Refs], srv2: Server) -> str:
                if after[target] == old:
                    return "old"
                new_main = after[target]["refs/heads/main"]
                assert after[target] == {**old, "refs/heads/main": new_main}, f"{old} -> {after[target]}"
                status, log = srv2.api(
                    "GET", f"/namespaces/{NS}/repos/{target}/commits?rev={new_main}&limit=1"
                )
                assert status == 200, log
                top = log["items"][0]
                assert top["parents"] == [old_main] and top["message"].strip() == f"crash commit {i}", top
                return "new"

            return _Op(commit, judge_commit)

        if op == "restore":
            parent = self._parent_of(srv, target, old)
            body = {"ref": "refs/heads/main", "to": parent}

            def restore() -> bool:
                return srv.api("POST", f"/namespaces/{NS}/repos/{target}/restore", body)[0] in (200, 201)

            return _Op(restore, unchanged_or({**old, "refs/heads/main": str(parent)}))

        if op == "snapshot":
            known = self._snapshots(srv, target)

            def snapshot() -> bool:
                return srv.api("POST", f"/namespaces/{NS}/repos/{target}/snapshots")[0] == 201

            def judge_snapshot(after: dict[str, Refs], srv2: Server) -> str:
                assert after[target] == old, f"a snapshot moved refs: {old} -> {after[target]}"
                return "new" if self._snapshots(srv2, target) - known else "old"

            return _Op(snapshot, judge_snapshot)

        fork_name = f"{target}-f{i}"

        def fork() -> bool:
            return srv.api("POST", f"/namespaces/{NS}/repos/{target}/fork", {"name": fork_name})[0] == 201

        def judge_fork(after: dict[str, Refs], _srv: Server) -> str:
            assert after[target] == old, f"fork changed its parent: {old} -> {after[target]}"
            if fork_name not in after:
                return "old"
            assert after[fork_name] == old, f"fork {fork_name} has {after[fork_name]}, parent had {old}"
            return "new"

        return _Op(fork, judge_fork)

    # -- checks ---------------------------------------------------------------------

    def _check_repos(self, srv: Server, after: dict[str, Refs]) -> list[str]:
        problems: list[str] = []
        for name, refs in sorted(after.items()):
            dest = Path(tempfile.mkdtemp(dir=self.root, prefix="clone-"))
            proc = git(
                "clone", "-q", "--mirror", self._url(srv, name), dest / "r.git", env=self.env, check=False
            )
            if proc.returncode != 0:
                problems.append(f"{name}: clone failed: {proc.stderr.decode(errors='replace')}")
                continue
            fsck = git("fsck", "--strict", "--no-dangling", cwd=dest / "r.git", env=self.env, check=False)
            if fsck.returncode != 0:
                problems.append(f"{name}: git fsck: {fsck.stderr.decode(errors='replace')}")
            if show_refs(dest / "r.git", self.env) != refs:
                problems.append(f"{name}: clone refs differ from the API's")
            subprocess.run(["rm", "-rf", str(dest)], check=True)
        procs = {
            name: subprocess.Popen(
                [str(VENV_BIN / "gitserver"), "fsck", f"{NS}/{name}", "--data-dir", str(srv.data_dir)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for name in sorted(after)
        }
        for name, p in procs.items():
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                problems.append(f"{name}: gitserver fsck: {out.decode(errors='replace')}")
        status, listing = srv.api("GET", f"/namespaces/{NS}/repos?limit=200")
        assert status == 200, listing
        ids = {item["id"] for item in listing["items"]}
        for path in srv.data_dir.rglob("*"):
            if path.name.endswith(".tmp") and path.is_relative_to(srv.data_dir / "blobs"):
                # A put killed before its rename; the blob store sweeps these when it opens.
                self.blob_temp_files.add(str(path.relative_to(srv.data_dir)))
                problems.append(f"blob-store temp file survived a restart: {path.relative_to(srv.data_dir)}")
            elif path.name.endswith(".tmp"):
                problems.append(f"leftover temp file {path.relative_to(srv.data_dir)}")
            elif path.parent.parent.name == "repos" and path.is_file():
                if path.name.split(".sqlite", 1)[0] not in ids:
                    problems.append(f"repo file no repo names: {path.relative_to(srv.data_dir)}")
        return problems

    # -- helpers --------------------------------------------------------------------

    def _url(self, srv: Server, name: str) -> str:
        return srv.git_url(NS, name, srv.admin_token)

    def _all_refs(self, srv: Server) -> dict[str, Refs]:
        status, listing = srv.api("GET", f"/namespaces/{NS}/repos?limit=200")
        assert status == 200, listing
        out: dict[str, Refs] = {}
        for item in listing["items"]:
            status, body = srv.api("GET", f"/namespaces/{NS}/repos/{item['name']}/refs")
            assert status == 200, body
            out[item["name"]] = {r["name"]: r["target"] for r in body["items"]}
        return out

    def _snapshots(self, srv: Server, name: str) -> set[str]:
        status, body = srv.api("GET", f"/namespaces/{NS}/repos/{name}/snapshots")
        assert status == 200, body
        return {str(item["id"]) for item in body["items"]}

    def _parent_of(self, srv: Server, name: str, refs: Refs) -> str | None:
        status, log = srv.api(
            "GET", f"/namespaces/{NS}/repos/{name}/commits?rev={refs['refs/heads/main']}&limit=1"
        )
        assert status == 200, log
        parents = log["items"][0]["parents"]
        return str(parents[0]) if parents else None


def summary(results: list[TrialResult], blob_temp_files: int = 0) -> str:
    by_op: dict[str, list[int]] = {}
    for r in results:
        counts = by_op.setdefault(r.op, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += r.outcome == "new"
        counts[2] += r.acknowledged
        counts[3] += bool(r.problems)
    lines = [
        f"{len(results)} trials, {sum(bool(r.problems) for r in results)} with problems, "
        f"{blob_temp_files} leaked blob-store temp files"
    ]
    for op, (n, new, ack, bad) in sorted(by_op.items()):
        lines.append(f"  {op:9} {n:3} trials: {new} found new, {n - new} old, {ack} acknowledged, {bad} bad")
    for r in results:
        for p in r.problems:
            lines.append(f"  trial {r.index} {r.op} {r.target} (kill at {r.delay_s}s): {p}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
        harness = CrashHarness(Path(tmp), args.seed)
        results = harness.run(args.trials)
    print(summary(results, len(harness.blob_temp_files)))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
