"""The two servers the benchmark compares, behind one small interface.

Rules:
- ``Reference`` is C git's ``git http-backend`` as a CGI under lighttpd (with
  ``server.stream-request-body = 0``, as the issue asks), every repo with
  ``http.receivepack=true``; a repo is loaded by a local ``git clone --mirror``, so it
  serves git's own pack, index and bitmap.
- ``Ours`` is ``gitserver serve`` in a subprocess with a fixed admin token; a repo is
  loaded by ``git push --mirror`` over HTTP (untimed).
- Both expose ``pid`` (the process whose tree is measured), ``url(name)``,
  ``create_empty(name)``, ``load(name, source)`` and ``delete(name)``. Clients use
  ``git_env(home)``: no user or system config.
- ``Ours.load`` returns once the server is idle again (``wait_quiet``): a big push sets
  off a blob-store snapshot (gitserver.tiering), which would otherwise run during the
  first timed scenarios and, through the GIL, slow the event loop serving them.
- Auth (docs/performance.md "Method"): ``url`` carries our token in the URL
  (``http://x:TOKEN@host/...``), which any git client can use alone; git's libcurl then
  sends each process's first request without credentials, takes a 401 and retries.
  The timed scenarios use ``header_remote(url, env)`` instead: the URL without
  credentials and an env whose per-URL ``http.<url>.extraHeader`` sends
  ``Authorization: Basic`` on the first request, as automated clients do (e.g.
  actions/checkout). The reference needs no auth: both forms are its plain URL and env.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.procstat import cpu_seconds, wait_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NS = "bench"
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


QUIET_TIMEOUT = 300.0


def wait_quiet(pids: list[int], *, share: float = 0.05, window: float = 1.0) -> float:
    """Wait until the process trees of ``pids`` used under ``share`` of a core during
    one ``window``; returns the seconds waited (gives up after ``QUIET_TIMEOUT``)."""
    start = time.monotonic()
    while time.monotonic() - start < QUIET_TIMEOUT:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(window)
        if sum(cpu_seconds(p) for p in pids) - before < share * window:
            break
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_AUTHOR_DATE="2030-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2030-01-01T00:00:00Z",
    )
    return env


def run_git(*args: str | Path, env: dict[str, str], cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *map(str, args)], cwd=cwd, env=env, capture_output=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(map(str, args))} failed: {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    return proc.stdout.decode()


class Target:
    label = ""
    pid = 0

    def url(self, name: str) -> str:
        raise NotImplementedError

    def create_empty(self, name: str) -> str:
        raise NotImplementedError

    def load(self, name: str, source: Path, env: dict[str, str]) -> str:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def header_remote(self, url: str, env: dict[str, str]) -> tuple[str, dict[str, str]]:
        """``url`` without credentials, and ``env`` with whatever sends them in a header."""
        return url, env


class Reference(Target):
    """lighttpd + git http-backend (CGI)."""

    label = "git"

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "git-root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = workdir / "lighttpd.conf"
        conf.write_text(
            f"""server.modules = ("mod_alias", "mod_setenv", "mod_cgi")
server.document-root = "{self.root}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{workdir}/lighttpd-error.log"
server.stream-request-body = 0
server.max-request-size = 0
alias.url = ( "/git/" => "{HTTP_BACKEND}/" )
cgi.assign = ( "" => "" )
setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{self.root}", "GIT_HTTP_EXPORT_ALL" => "" )
"""
        )
        self.process = subprocess.Popen([LIGHTTPD, "-D", "-f", str(conf)], stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        wait_port(self.port)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{name}.git"

    def _init(self, path: Path, env: dict[str, str]) -> None:
        run_git("config", "http.receivepack", "true", cwd=path, env=env)

    def create_empty(self, name: str) -> str:
        path = self.root / f"{name}.git"
        env = git_env(self.root)
        run_git("init", "-q", "--bare", path, env=env)
        self._init(path, env)
        return self.url(name)

    def load(self, name: str, source: Path, env: dict[str, str]) -> str:
        path = self.root / f"{name}.git"
        run_git("clone", "-q", "--mirror", source, path, env=env)
        self._init(path, env)
        return self.url(name)

    def delete(self, name: str) -> None:
        shutil.rmtree(self.root / f"{name}.git", ignore_errors=True)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Ours(Target):
    """``gitserver serve`` in a subprocess."""

    label = "ours"

    def __init__(self, workdir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "gitserver-data"
        self.port = free_port()
        self.admin = "gs_" + secrets.token_hex(20)
        self.tokens: dict[str, str] = {}
        env = dict(os.environ, GITSERVER_ADMIN_TOKEN=self.admin, **(extra_env or {}))
        self.log = open(workdir / "gitserver.log", "ab")  # closed in stop()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gitserver"), "serve", "--port", str(self.port), "--data-dir", str(self.data)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=env,
        )
        self.pid = self.process.pid
        wait_port(self.port)

    def api(self, method: str, path: str, body: object | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v1{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.admin}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else {}

    def url(self, name: str) -> str:
        return f"http://x:{self.tokens[name]}@127.0.0.1:{self.port}/git/{NS}/{name}.git"

    def plain_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{NS}/{name}.git"

    def header_remote(self, url: str, env: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The URL without user info, and ``env`` plus one ``http.<url>.extraHeader`` per
        known repo (``GIT_CONFIG_COUNT``), so every request carries its repo's token."""
        parts = urllib.parse.urlsplit(url)
        bare = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        out = dict(env)
        for i, (name, token) in enumerate(sorted(self.tokens.items())):
            basic = base64.b64encode(f"x:{token}".encode()).decode()
            out[f"GIT_CONFIG_KEY_{i}"] = f"http.{self.plain_url(name)}.extraHeader"
            out[f"GIT_CONFIG_VALUE_{i}"] = f"Authorization: Basic {basic}"
        out["GIT_CONFIG_COUNT"] = str(len(self.tokens))
        return bare, out

    def create_empty(self, name: str) -> str:
        info = self.api("POST", f"/namespaces/{NS}/repos", {"name": name})
        self.tokens[name] = info["token"]
        return self.url(name)

    def load(self, name: str, source: Path, env: dict[str, str]) -> str:
        url = self.create_empty(name)
        run_git("push", "-q", "--mirror", url, cwd=source, env=env)
        waited = wait_quiet([self.pid])
        print(f"ours: idle {waited:.1f} s after loading {name}", flush=True)
        return url

    def store_path(self, name: str) -> Path:
        from gitserver.catalog import Catalog

        catalog = Catalog(self.data)
        try:
            record = catalog.get(NS, name)
            assert record is not None
            return record.path
        finally:
            catalog.close()

    def delete(self, name: str) -> None:
        self.api("DELETE", f"/namespaces/{NS}/repos/{name}")
        self.tokens.pop(name, None)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
