"""Auth on the Git remote, and actor hibernation seen from outside the process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers import Server, git, git_env, git_out


def _seed(server: Server, tmp_path: Path, name: str) -> tuple[dict, str, Path]:
    env = git_env(server.home)
    info, token = server.create_repo("auth", name)
    work = tmp_path / name
    git("init", "-q", "-b", "main", work, env=env)
    (work / "secret.txt").write_text(f"data of {name}\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "init", cwd=work, env=env)
    git("push", "-q", server.git_url("auth", name, token), "main", cwd=work, env=env)
    return info, token, work


def test_missing_token_gets_401_with_basic_challenge(server: Server, tmp_path: Path) -> None:
    _seed(server, tmp_path, "private")
    resp = httpx.get(f"{server.base_url}/git/auth/private.git/info/refs?service=git-upload-pack")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    bad = httpx.get(
        f"{server.base_url}/git/auth/private.git/info/refs?service=git-upload-pack",
        auth=("x", "gs_" + "b" * 40),
    )
    assert bad.status_code == 401
    # git itself reports the failure and does not hang asking for a password.
    clone = git(
        "clone", server.git_url("auth", "private"), tmp_path / "nope", env=git_env(server.home), check=False
    )
    assert clone.returncode != 0


def test_read_token_cannot_push(server: Server, tmp_path: Path) -> None:
    _info, _, work = _seed(server, tmp_path, "readonly")
    status, minted = server.api("POST", "/namespaces/auth/repos/readonly/tokens", {"scope": "read"})
    assert status == 201, minted
    url = server.git_url("auth", "readonly", minted["token"])
    env = git_env(server.home)
    git("clone", "-q", url, tmp_path / "reader", env=env)  # reading works
    (work / "more.txt").write_text("more\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "more", cwd=work, env=env)
    push = git("push", url, "main", cwd=work, env=env, check=False)
    assert push.returncode != 0
    assert b"403" in push.stderr
    assert (
        git_out("ls-remote", url, "refs/heads/main", env=env).split()[0]
        != git_out("rev-parse", "HEAD", cwd=work, env=env).strip()
    )


def test_token_of_another_repo_cannot_read(server: Server, tmp_path: Path) -> None:
    _seed(server, tmp_path, "alpha")
    _, beta_token, _ = _seed(server, tmp_path, "beta")
    env = git_env(server.home)
    clone = git(
        "clone", server.git_url("auth", "alpha", beta_token), tmp_path / "stolen", env=env, check=False
    )
    assert clone.returncode != 0
    assert not (tmp_path / "stolen" / "secret.txt").exists()
    resp = httpx.get(
        f"{server.base_url}/git/auth/alpha.git/info/refs?service=git-upload-pack", auth=("x", beta_token)
    )
    assert resp.status_code == 403
    assert b"alpha" not in resp.content or b"secret" not in resp.content


def test_idle_actor_hibernates_and_wakes_on_next_request(server: Server, tmp_path: Path) -> None:
    info, token, _ = _seed(server, tmp_path, "sleepy")
    env = git_env(server.home)
    url = server.git_url("auth", "sleepy", token)
    git("clone", "-q", url, tmp_path / "first", env=env)

    def repo_fds() -> list[str]:
        return [f for f in server.open_files() if info["id"] in f]

    assert repo_fds(), "an active repo has its SQLite file open"
    deadline = time.monotonic() + 15  # the module's server runs with --idle-timeout 2
    while repo_fds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert repo_fds() == [], "the hibernated actor still holds its SQLite file"

    git("clone", "-q", url, tmp_path / "second", env=env)
    assert (tmp_path / "second" / "secret.txt").read_text() == "data of sleepy\n"
