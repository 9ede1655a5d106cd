"""Helpers for RepoStore tests: real git repositories and the packs git makes of them."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

import native
from storage.model import ZERO_OID, Oid, PushContext, PushResult, RefCommand, oid_raw
from storage.repo_store import RepoStore
from tests.helpers import git, git_env, git_out


class WorkRepo:
    """A git working repository driven through the real git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = git_env(path.parent)
        git("init", "-q", "-b", "main", path, env=self.env)

    def write(self, name: str, data: bytes | str) -> None:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def commit(self, message: str) -> str:
        git("add", "-A", cwd=self.path, env=self.env)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path, env=self.env)
        return self.rev("HEAD")

    def git(self, *args: str, input: bytes | None = None) -> bytes:
        return git(*args, cwd=self.path, env=self.env, input=input).stdout

    def rev(self, spec: str) -> str:
        return git_out("rev-parse", spec, cwd=self.path, env=self.env).strip()

    def pack(self, revs: Iterable[str], *, ofs: bool = True, thin: bool = False) -> bytes:
        """``git pack-objects --stdout --revs`` for the given rev lines (``^X`` excludes)."""
        args = ["pack-objects", "--stdout", "--revs", "-q"]
        if ofs:
            args.append("--delta-base-offset")
        if thin:
            args.append("--thin")
        revs = list(revs)
        if "--all" in revs:  # an option, not a stdin rev line
            revs.remove("--all")
            args.append("--all")
        return self.git(*args, input="".join(r + "\n" for r in revs).encode())

    def objects(self, *revs: str) -> list[str]:
        out = git_out("rev-list", "--objects", *revs, cwd=self.path, env=self.env)
        return [line.split(" ", 1)[0] for line in out.splitlines() if line]

    def cat_batch(self, oids: list[str]) -> dict[str, tuple[str, bytes]]:
        """``git cat-file --batch`` for many objects: oid -> (type name, content)."""
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            check=True,
            input=("\n".join(oids) + "\n").encode(),
        )
        buf = io.BytesIO(proc.stdout)
        out: dict[str, tuple[str, bytes]] = {}
        for _ in oids:
            oid, type_name, size = buf.readline().split()
            out[oid.decode()] = (type_name.decode(), buf.read(int(size)))
            buf.read(1)
        return out


def push(
    store: RepoStore,
    pack: bytes | None,
    *commands: tuple[str | Oid | None, str | Oid | None, str],
    atomic: bool = False,
    token: str | None = "tok-1",
    piece: int | None = None,
) -> PushResult:
    """Push ``pack`` with commands (old, new, ref); None means the zero id."""
    cmds = [RefCommand(_oid(old), _oid(new), ref) for old, new, ref in commands]
    read = None
    if pack is not None:
        stream = io.BytesIO(pack)
        read = stream.read if piece is None else (lambda n: stream.read(min(n, piece)))
    return store.receive(cmds, read, PushContext(token_id=token, atomic=atomic), None)


def _oid(value: str | Oid | None) -> Oid:
    if value is None:
        return ZERO_OID
    return oid_raw(value) if isinstance(value, str) else value


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table, read through a separate connection."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def fix_trailer(pack: bytes) -> bytes:
    body = pack[:-20]
    return body + hashlib.sha1(body).digest()


def use_native(impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make storage call the C extension ("c") or the pure-Python twin ("python")."""
    module = native.pure if impl == "python" else native.cext
    if module is None:
        pytest.skip("native C extension not built")
    for name in ("PackScanner", "object_id", "delta_apply", "Sha1"):
        monkeypatch.setattr(native, name, getattr(module, name))
    resolver = native.resolve_pure if impl == "python" else native.cext
    monkeypatch.setattr(native, "DeltaResolver", resolver.DeltaResolver)
