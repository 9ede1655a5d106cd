"""Limits on hostile or broken clients (issue #7, docs/security.md "Limits").

One real ``gitserver serve`` with small limits, driven by the git CLI, httpx and raw
sockets (for clients that stall). Each limit must trigger with a message the user sees,
leave the repository as it was (refs, objects, a clone still works) and leave the server
serving. The refs limit comes from its ``GITSERVER_*`` variable, the others from flags.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import VENV_BIN, Server, git, git_env, run_server, show_refs

MAX_PACK = 200_000
MAX_OBJECT = 100_000
MAX_REFS = 5
MAX_LINES = 40
BODY_TIMEOUT = 2.0
MAX_CLIENT = 3


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = (
        "--max-pack-size", str(MAX_PACK),
        "--max-object-size", str(MAX_OBJECT),
        "--max-pkt-lines", str(MAX_LINES),
        "--body-timeout", str(BODY_TIMEOUT),
        "--max-client-requests", str(MAX_CLIENT),
    )  # fmt: skip
    env = {"GITSERVER_MAX_REFS_PER_PUSH": str(MAX_REFS)}
    with run_server(tmp_path_factory.mktemp("limits"), *args, env=env) as server:
        yield server


def _work(srv: Server, tmp: Path, name: str) -> tuple[Path, str, dict[str, str]]:
    """A repo on the server with one pushed commit, and a clone of it in ``tmp/w``."""
    _, token = srv.create_repo("lim", name)
    url = srv.git_url("lim", name, token)
    env = git_env(srv.home)
    work = tmp / "w"
    git("init", "-q", "-b", "main", work, env=env)
    (work / "README").write_text("hello\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "first", cwd=work, env=env)
    git("push", "-q", url, "main", cwd=work, env=env)
    return work, url, env


def _commit(work: Path, env: dict[str, str], files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (work / name).write_bytes(data)
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "more", cwd=work, env=env)


def _assert_unchanged(srv: Server, tmp: Path, url: str, refs: dict[str, str], name: str) -> None:
    """The server still has exactly ``refs``, nothing else was stored, and a clone works."""
    out = git("ls-remote", url, env=git_env(srv.home)).stdout.decode()
    remote = {r: oid for oid, r in (line.split("\t") for line in out.splitlines()) if r != "HEAD"}
    assert remote == refs
    clone = tmp / f"clone-{len(list(tmp.iterdir()))}"
    git("clone", "-q", url, clone, env=git_env(srv.home))
    assert show_refs(clone)["refs/heads/main"] == refs["refs/heads/main"]
    git("fsck", "--strict", cwd=clone, env=git_env(srv.home))
    status, info = srv.api("GET", f"/namespaces/lim/repos/{name}")
    assert status == 200 and info["object_count"] == 3, info  # commit, tree, README


def _remote_refs(work: Path, env: dict[str, str]) -> dict[str, str]:
    return {"refs/heads/main": git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()}


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_pack_too_large_is_refused_and_nothing_is_stored(srv: Server, tmp_path: Path, protocol: str) -> None:
    name = f"pack{protocol}"
    work, url, env = _work(srv, tmp_path, name)
    refs = _remote_refs(work, env)
    # three incompressible files, each under the object limit, together over the pack limit
    _commit(work, env, {f"r{i}": os.urandom(MAX_PACK // 3 + 10_000) for i in range(3)})
    push = git("-c", f"protocol.version={protocol}", "push", url, "main", cwd=work, env=env, check=False)
    err = push.stderr.decode()
    assert push.returncode != 0
    assert f"pack exceeds the server's limit of {MAX_PACK} bytes" in err, err
    assert "[remote rejected] main -> main" in err, err
    _assert_unchanged(srv, tmp_path, url, refs, name)


def test_object_too_large_is_refused(srv: Server, tmp_path: Path) -> None:
    work, url, env = _work(srv, tmp_path, "object")
    refs = _remote_refs(work, env)
    _commit(work, env, {"zeros": b"\0" * (MAX_OBJECT + 1)})  # compresses far below the pack limit
    push = git("push", url, "main", cwd=work, env=env, check=False)
    err = push.stderr.decode()
    assert push.returncode != 0
    assert f"exceeds limit {MAX_OBJECT}" in err, err
    assert "[remote rejected] main -> main" in err, err
    _assert_unchanged(srv, tmp_path, url, refs, "object")


def test_too_many_refs_per_push_are_refused(srv: Server, tmp_path: Path) -> None:
    work, url, env = _work(srv, tmp_path, "refs")
    refs = _remote_refs(work, env)
    for i in range(MAX_REFS + 2):
        git("branch", f"b{i}", cwd=work, env=env)
    push = git("push", url, "--all", cwd=work, env=env, check=False)
    err = push.stderr.decode()
    assert push.returncode != 0
    assert f"push updates {MAX_REFS + 2} refs, the server's limit is {MAX_REFS}" in err, err
    assert "[remote rejected] b0 -> b0 (too many ref updates)" in err, err
    _assert_unchanged(srv, tmp_path, url, refs, "refs")
    # at the limit it goes through
    git("push", "-q", url, *[f"b{i}" for i in range(MAX_REFS)], cwd=work, env=env)


def test_too_many_pkt_lines_in_a_fetch_request(srv: Server, tmp_path: Path) -> None:
    work, url, env = _work(srv, tmp_path, "lines")
    # more distinct branch tips than the request may name as wants (pushed within the refs limit)
    for batch in range(0, MAX_LINES + 5, MAX_REFS):
        names = []
        for i in range(batch, batch + MAX_REFS):
            git("commit", "-q", "--allow-empty", "-m", f"c{i}", cwd=work, env=env)
            git("branch", f"t{i}", cwd=work, env=env)
            names.append(f"t{i}")
        git("push", "-q", url, *names, cwd=work, env=env)
    for protocol in ("0", "2"):
        clone = git(
            "-c",
            f"protocol.version={protocol}",
            "clone",
            url,
            tmp_path / f"c{protocol}",
            env=env,
            check=False,
        )
        err = clone.stderr.decode()
        assert clone.returncode != 0
        assert f"remote error: request has more than {MAX_LINES} pkt-lines" in err, err
    # a small fetch still works, and so does a raw v0 request under the limit
    git("clone", "-q", "--single-branch", "-b", "main", url, tmp_path / "one", env=env)
    token = url.split("x:", 1)[1].split("@", 1)[0]
    head = git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()
    want = f"0032want {head}\n".encode()
    headers = {"content-type": "application/x-git-upload-pack-request"}
    too_many = want * MAX_LINES + b"00000009done\n"
    r = httpx.post(f"{srv.base_url}/git/lim/lines.git/git-upload-pack", content=too_many, headers=headers,
                   auth=("x", token))  # fmt: skip
    assert r.status_code == 200 and f"ERR request has more than {MAX_LINES} pkt-lines".encode() in r.content


def _stall(srv: Server, path: str, token: str, service: str) -> socket.socket:
    """Open a POST with a chunked body and send no byte of that body."""
    host, port = srv.base_url.split("://", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    auth = base64.b64encode(f"x:{token}".encode()).decode()
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/x-{service}-request\r\nTransfer-Encoding: chunked\r\n"
            "User-Agent: git/2.39.5\r\n\r\n"
        ).encode()
    )
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_stalled_push_is_cut_off_and_releases_the_write_lock(srv: Server, tmp_path: Path) -> None:
    work, url, env = _work(srv, tmp_path, "stall")
    token = url.split("x:", 1)[1].split("@", 1)[0]
    _commit(work, env, {"next": b"next\n"})  # before the stall: a slow commit must not eat its window
    stalled = _stall(srv, "/git/lim/stall.git/git-receive-pack", token, "git-receive-pack")
    stall_sent = time.monotonic()
    time.sleep(BODY_TIMEOUT / 2)  # the stalled push now holds the repo's write lock
    started = time.monotonic()
    git("push", "-q", url, "main", cwd=work, env=env)  # waits for the stalled one to be cut off
    finished = time.monotonic()
    answer = _read_all(stalled)  # the server ends the stalled request and closes
    stalled.close()
    assert b"no data for 2 seconds" in answer, answer
    # it waited for the lock (it could not finish before the stall was cut off), not forever
    assert finished - stall_sent > BODY_TIMEOUT * 0.9, finished - stall_sent
    assert finished - started < BODY_TIMEOUT + 10, finished - started
    out = git("ls-remote", url, "main", env=env).stdout.decode()
    assert out.split()[0] == git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()


def test_concurrent_requests_per_client_get_429(srv: Server, tmp_path: Path) -> None:
    _, url, env = _work(srv, tmp_path, "busy")
    token = url.split("x:", 1)[1].split("@", 1)[0]
    stalls = [
        _stall(srv, "/git/lim/busy.git/git-upload-pack", token, "git-upload-pack") for _ in range(MAX_CLIENT)
    ]
    try:
        deadline = time.monotonic() + BODY_TIMEOUT / 2  # the stalled ones register, then are cut off
        while True:
            r = httpx.get(
                f"{srv.base_url}/api/v1/namespaces/lim/repos/busy",
                headers={"authorization": f"Bearer {srv.admin_token}"},
            )
            if r.status_code == 429 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "TOO_LARGE"
        assert "too many concurrent requests" in r.json()["error"]["message"]
        ls = git("ls-remote", url, env=env, check=False)
        assert ls.returncode != 0
        err = ls.stderr.decode()
        assert "429" in err and "too many concurrent requests" in err, err
        assert httpx.get(f"{srv.base_url}/healthz").status_code == 200  # liveness is not counted
    finally:
        for sock in stalls:
            _read_all(sock)  # cut off after the body timeout
            sock.close()
    ls = git("ls-remote", url, env=env)  # the slots are free again
    assert "refs/heads/main" in ls.stdout.decode()


def test_limits_are_in_serve_help_and_bad_values_are_refused(tmp_path: Path) -> None:
    exe = str(VENV_BIN / "gitserver")
    helptext = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--max-pack-size", "--max-object-size", "--max-refs-per-push", "--max-pkt-lines",
                 "--body-timeout", "--max-client-requests", "GITSERVER_MAX_PACK_SIZE"):  # fmt: skip
        assert flag in helptext
    env = dict(os.environ, GITSERVER_MAX_PKT_LINES="0")
    bad = subprocess.run(
        [exe, "serve", "--data-dir", str(tmp_path / "d"), "--port", "0"], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0 and "GITSERVER_MAX_PKT_LINES" in bad.stderr


def test_parallel_clones_within_the_limit_are_served(srv: Server, tmp_path: Path) -> None:
    """The per-client limit counts requests in flight, not requests over time."""
    _, url, env = _work(srv, tmp_path, "ok")
    errors: list[str] = []

    def clone(i: int) -> None:
        proc = git("clone", "-q", url, tmp_path / f"p{i}", env=env, check=False)
        if proc.returncode:
            errors.append(proc.stderr.decode())

    threads = [threading.Thread(target=clone, args=(i,)) for i in range(MAX_CLIENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
