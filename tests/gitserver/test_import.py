"""Import from real smart-HTTP remotes: ``git http-backend`` (as CGI on loopback) and
another gitserver; the imported refs must be identical and the history complete."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gitserver.conftest import create, error_code
from tests.helpers import Server, git, git_env, show_refs


class _GitCGI(http.server.BaseHTTPRequestHandler):
    """Runs ``git http-backend`` per request, the CGI way (what Apache or lighttpd do)."""

    root: Path

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _run(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body() if self.command == "POST" else b""
        env = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": self.headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("content-encoding", ""),
            "PATH": "/usr/bin:/bin",
        }
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _run
    do_POST = _run


@contextlib.contextmanager
def _http_backend(root: Path) -> Iterator[str]:
    handler = type("Handler", (_GitCGI,), {"root": root})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def backend_url(history_repo: Path) -> Iterator[str]:
    with _http_backend(history_repo.parent) as url:
        yield f"{url}/{history_repo.name}"


def _mirror(server: Server, ns: str, name: str, dest: Path) -> dict[str, str]:
    env = git_env(server.home)
    git("clone", "-q", "--mirror", server.git_url(ns, name, server.admin_token), dest, env=env)
    git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)
    return show_refs(dest, env)


def _branches_and_tags(refs: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in refs.items() if k.startswith(("refs/heads/", "refs/tags/"))}


def test_import_from_git_http_backend(
    api: httpx.Client, server: Server, backend_url: str, history_repo: Path, tmp_path: Path, unique: str
) -> None:
    create(api, "imp", unique)
    resp = api.post(f"/namespaces/imp/repos/{unique}/import", json={"url": backend_url})
    assert resp.status_code == 200, resp.text
    expected = _branches_and_tags(show_refs(history_repo))
    assert resp.json()["imported"] == expected
    assert resp.json()["repo"]["object_count"] > 1000
    assert _mirror(server, "imp", unique, tmp_path / "m") == expected
    # the reflog-backed catalog saw it like a push
    assert api.get(f"/namespaces/imp/repos/{unique}").json()["last_push_at"] is not None
    # a second import into the now non-empty repo is refused, nothing changes
    resp = api.post(f"/namespaces/imp/repos/{unique}/import", json={"url": backend_url})
    assert (resp.status_code, error_code(resp)) == (409, "CONFLICT")


def test_import_from_another_gitserver_one_branch(
    api: httpx.Client, server: Server, history_repo: Path, tmp_path: Path, unique: str
) -> None:
    # the source: a repo on this very server (another gitserver as far as the importer knows)
    source = create(api, "imp", f"{unique}-src")
    env = git_env(server.home)
    git(
        "push",
        "-q",
        "--mirror",
        server.git_url("imp", f"{unique}-src", source["token"]),
        cwd=history_repo,
        env=env,
    )
    url = server.git_url("imp", f"{unique}-src", source["token"])
    create(api, "imp", f"{unique}-all")
    resp = api.post(f"/namespaces/imp/repos/{unique}-all/import", json={"url": url, "depth": 1})
    assert resp.status_code == 200, resp.text
    assert _mirror(server, "imp", f"{unique}-all", tmp_path / "all") == _branches_and_tags(
        show_refs(history_repo)
    )

    create(api, "imp", f"{unique}-one")
    resp = api.post(f"/namespaces/imp/repos/{unique}-one/import", json={"url": url, "branch": "main"})
    assert resp.status_code == 200, resp.text
    main = show_refs(history_repo)["refs/heads/main"]
    assert _mirror(server, "imp", f"{unique}-one", tmp_path / "one") == {"refs/heads/main": main}


def test_import_errors(api: httpx.Client, server: Server, unique: str) -> None:
    create(api, "imp", unique)
    path = f"/namespaces/imp/repos/{unique}/import"
    for body in (
        {},
        {"url": 5},
        {"url": "file:///etc"},
        {"url": "http://x/y", "depth": 0},
        {"url": "http://x/y", "branch": ".."},
    ):
        resp = api.post(path, json=body)
        assert (resp.status_code, error_code(resp)) == (400, "INVALID_INPUT"), body
    # a remote that is not there: the reason comes back, the repo stays empty
    resp = api.post(path, json={"url": f"{server.base_url}/git/imp/no-such-repo.git"})
    assert (resp.status_code, error_code(resp)) == (400, "INVALID_INPUT")
    assert "import failed" in resp.json()["error"]["message"]
    assert api.get(f"/namespaces/imp/repos/{unique}").json()["object_count"] == 0
    resp = api.post("/namespaces/imp/repos/absent/import", json={"url": "http://127.0.0.1:1/x.git"})
    assert (resp.status_code, error_code(resp)) == (404, "NOT_FOUND")


def test_import_follows_the_remote_default_branch(
    api: httpx.Client, server: Server, tmp_path: Path, unique: str
) -> None:
    """A remote whose HEAD is ``trunk`` imported into a repo created with ``main``: the
    clone checks out ``trunk`` (as ``git clone`` of the remote would), and RepoInfo says so."""
    env = git_env(server.home)
    remote = tmp_path / "remote.git"
    work = tmp_path / "work"
    git("init", "-q", "-b", "trunk", work, env=env)
    (work / "a.txt").write_text("on trunk\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "trunk", cwd=work, env=env)
    git("checkout", "-q", "-b", "aaa-side", cwd=work, env=env)
    (work / "b.txt").write_text("side\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "side", cwd=work, env=env)
    git("clone", "-q", "--bare", work, remote, env=env)
    git("symbolic-ref", "HEAD", "refs/heads/trunk", cwd=remote, env=env)

    create(api, "imp", unique)
    with _http_backend(tmp_path) as url:
        resp = api.post(f"/namespaces/imp/repos/{unique}/import", json={"url": f"{url}/remote.git"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["repo"]["default_branch"] == "trunk"
    assert api.get(f"/namespaces/imp/repos/{unique}").json()["default_branch"] == "trunk"
    clone = tmp_path / "clone"
    git("clone", "-q", server.git_url("imp", unique, server.admin_token), clone, env=env)
    assert (clone / "a.txt").read_text() == "on trunk\n"
    assert not (clone / "b.txt").exists()
