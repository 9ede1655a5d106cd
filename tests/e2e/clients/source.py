"""The client matrix's source repository: tiny, hand-made, byte-for-byte deterministic.

    main:  c1 - c2 - c3 - c4 - c5 - c6        one commit a day from 2021-01-01 (UTC)
                  \\
    topic:         t1                          2021-01-02 12:00

    tags: v0.1 (lightweight, c2), v1.0 (annotated, c4), topic-1 (annotated, t1)

Every commit changes ``src/a.txt`` (small) and ``big.bin`` (3000 bytes), so a
``blob:limit=1k`` filter has something to leave out at every commit, and ``src/`` gives
``tree:0`` a subtree to omit. Expectations are computed from this repository with git
itself (``rev-list``, ``ls-tree``), never hard-coded object ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers import git, git_env, git_out

DAY = 86400
EPOCH = 1609459200  # 2021-01-01T00:00:00Z


def _at(env: dict[str, str], when: int) -> dict[str, str]:
    stamp = f"{when} +0000"
    return {**env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def _commit(work: Path, env: dict[str, str], n: str, when: int) -> None:
    (work / "src").mkdir(exist_ok=True)
    (work / "src" / "a.txt").write_text(f"line of {n}\n" * 3)
    (work / "big.bin").write_bytes(bytes((i * 7 + len(n) * 13 + sum(map(ord, n))) % 256 for i in range(3000)))
    (work / "README").write_text("matrix source\n")
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", f"commit {n}", cwd=work, env=_at(env, when))


@dataclass(frozen=True)
class Source:
    """The built source repository (bare) and facts read from it with git."""

    bare: Path
    env: dict[str, str]

    def rev(self, spec: str) -> str:
        return git_out("rev-parse", "--verify", spec, cwd=self.bare, env=self.env).strip()

    def rev_list(self, *args: str) -> set[str]:
        return set(git_out("rev-list", *args, cwd=self.bare, env=self.env).split())

    def refs(self) -> dict[str, str]:
        out = git_out("for-each-ref", "--format=%(objectname) %(refname)", cwd=self.bare, env=self.env)
        return {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}

    def objects(self, *revs: str) -> dict[str, str]:
        """{oid: type} of every object reachable from ``revs`` (default: every ref)."""
        listed = git_out("rev-list", "--objects", *(revs or ("--all",)), cwd=self.bare, env=self.env)
        oids = [line.split(" ", 1)[0] for line in listed.splitlines()]
        typed = git(
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
            cwd=self.bare,
            env=self.env,
            input="\n".join(oids).encode() + b"\n",
        ).stdout.decode()
        return {oid: kind for oid, kind, _ in (line.split() for line in typed.splitlines())}

    def blob_sizes(self, *revs: str) -> dict[str, int]:
        listed = git_out("rev-list", "--objects", *(revs or ("--all",)), cwd=self.bare, env=self.env)
        oids = [line.split(" ", 1)[0] for line in listed.splitlines()]
        typed = git(
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
            cwd=self.bare,
            env=self.env,
            input="\n".join(oids).encode() + b"\n",
        ).stdout.decode()
        return {
            oid: int(size)
            for oid, kind, size in (line.split() for line in typed.splitlines())
            if kind == "blob"
        }

    def time_of(self, spec: str) -> int:
        return int(git_out("log", "-1", "--format=%ct", spec, cwd=self.bare, env=self.env))


def build_source(tmp: Path) -> Source:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = git_env(home)
    work = tmp / "work"
    git("init", "-q", "-b", "main", work, env=env)
    for i in range(1, 7):
        _commit(work, env, f"c{i}", EPOCH + (i - 1) * DAY)
        if i == 2:
            git("tag", "v0.1", cwd=work, env=env)
            git("checkout", "-q", "-b", "topic", cwd=work, env=env)
            _commit(work, env, "t1", EPOCH + DAY + DAY // 2)
            git("tag", "-a", "-m", "topic tag", "topic-1", cwd=work, env=_at(env, EPOCH + 2 * DAY))
            git("checkout", "-q", "main", cwd=work, env=env)
        if i == 4:
            git("tag", "-a", "-m", "release 1.0", "v1.0", cwd=work, env=_at(env, EPOCH + 4 * DAY))
    bare = tmp / "source.git"
    git("clone", "-q", "--bare", work, bare, env=env)
    return Source(bare, env)
