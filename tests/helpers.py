"""Shared test helpers: run the real git CLI and a real gitserver process.

Rules: tests drive real processes (git, gitserver serve) on 127.0.0.1 with free ports;
nothing here mocks a component.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment in which git reads no user or system config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
    )
    env.update(extra)
    return env


def git(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, input=input, capture_output=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(map(str, args))} failed ({proc.returncode}):\n"
            f"{proc.stdout.decode(errors='replace')}\n{proc.stderr.decode(errors='replace')}"
        )
    return proc


def git_out(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return git(*args, cwd=cwd, env=env).stdout.decode()


def show_refs(repo: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Every ref of a repository as {name: oid}, peeled lines excluded."""
    out = git("show-ref", cwd=repo, env=env, check=False).stdout.decode()
    return {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}


def all_objects(repo: Path, env: dict[str, str] | None = None) -> list[str]:
    out = git_out("rev-list", "--all", "--objects", cwd=repo, env=env)
    return sorted(line.split(" ", 1)[0] for line in out.splitlines())


@dataclass
class Server:
    """A running ``gitserver serve`` subprocess."""

    base_url: str
    data_dir: Path
    admin_token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    home: Path
    created: list[str] = field(default_factory=list)

    def api(
        self, method: str, path: str, body: object | None = None, token: str | None = None
    ) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + "/api/v1" + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else {})
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, (json.loads(raw) if raw else {})

    def create_repo(self, ns: str, name: str, **fields: object) -> tuple[dict, str]:
        status, info = self.api("POST", f"/namespaces/{ns}/repos", {"name": name, **fields})
        assert status == 201, (status, info)
        return info, info["token"]

    def git_url(self, ns: str, name: str, token: str | None = None) -> str:
        host = self.base_url.split("://", 1)[1]
        scheme = self.base_url.split("://", 1)[0]
        auth = f"x:{token}@" if token else ""
        return f"{scheme}://{auth}{host}/git/{ns}/{name}.git"

    def rss_peak_kib(self) -> int:
        """VmHWM of the server process (peak resident set size), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_files(self) -> list[str]:
        fd_dir = Path(f"/proc/{self.process.pid}/fd")
        out = []
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                out.append(os.readlink(fd))
        return out

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_server(tmp: Path, *extra_args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``gitserver serve`` on a free port; stop it (SIGTERM, then SIGKILL) afterwards."""
    data_dir = tmp / "data"
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    admin = "gs_" + "A" * 40
    log_path = tmp / "server.log"
    proc_env = dict(os.environ)
    proc_env.update(GITSERVER_ADMIN_TOKEN=admin)
    proc_env.update(env or {})
    exe = shutil.which("gitserver", path=str(VENV_BIN)) or str(VENV_BIN / "gitserver")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                exe,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=proc_env,
        )
    base = f"http://127.0.0.1:{port}"
    if "--tls-cert" in extra_args:
        base = f"https://127.0.0.1:{port}"
    server = Server(base, data_dir, admin, proc, log_path, home)
    try:
        _wait_healthy(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    sock_host, sock_port = server.base_url.rsplit("/", 1)[-1].rsplit(":", 1)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gitserver exited with {server.process.returncode}:\n{server.log()}")
        with contextlib.suppress(OSError), socket.create_connection((sock_host, int(sock_port)), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"gitserver did not start:\n{server.log()}")
