"""The server process as an operator sees it: admin token bootstrap, offline CLI, logs."""

from __future__ import annotations

import json
import ssl
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gitserver.conftest import create
from tests.helpers import VENV_BIN, Server, git, git_env, run_server


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "gitserver"), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_admin_token_file_is_created_private_and_kept(tmp_path: Path) -> None:
    with run_server(tmp_path, env={"GITSERVER_ADMIN_TOKEN": ""}) as srv:
        path = srv.data_dir / "admin-token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert token.startswith("gs_") and len(token) == 43
        ok = httpx.get(
            f"{srv.base_url}/api/v1/namespaces/x/repos", headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
        env_token = httpx.get(
            f"{srv.base_url}/api/v1/namespaces/x/repos",
            headers={"Authorization": f"Bearer {srv.admin_token}"},
        )
        assert env_token.status_code == 401  # the helper's usual env token is not set this time
        log = srv.log()
        assert str(path) in log and token not in log


def test_admin_token_file_survives_restart(tmp_path: Path) -> None:
    with run_server(tmp_path, env={"GITSERVER_ADMIN_TOKEN": ""}) as srv:
        first = (srv.data_dir / "admin-token").read_text()
    with run_server(tmp_path, env={"GITSERVER_ADMIN_TOKEN": ""}) as srv:
        assert (srv.data_dir / "admin-token").read_text() == first
        ok = httpx.get(
            f"{srv.base_url}/api/v1/namespaces/x/repos", headers={"Authorization": f"Bearer {first.strip()}"}
        )
        assert ok.status_code == 200


def test_env_admin_token_writes_no_file(server: Server) -> None:
    assert not (server.data_dir / "admin-token").exists()


def test_offline_cli_then_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = _cli("repo", "create", "ops/tool", "--data-dir", data, "--description", "offline", "--public")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == "tool"
    dup = _cli("repo", "create", "ops/tool", "--data-dir", data)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = _cli("repo", "create", "ops/bad.git", "--data-dir", data)
    assert bad.returncode == 1

    read = _cli(
        "token", "create", "--data-dir", data, "--repo", "ops/tool", "--scope", "read", "--ttl", "600"
    )
    assert read.returncode == 0, read.stderr
    read_token = read.stdout.strip()
    assert read_token.startswith("gs_") and len(read_token) == 43 and "\n" not in read_token
    admin = _cli("token", "create", "--data-dir", data, "--admin")
    assert admin.returncode == 0, admin.stderr
    admin_token = admin.stdout.strip()
    assert (
        _cli("token", "create", "--data-dir", data, "--repo", "ops/none", "--scope", "read").returncode == 1
    )
    assert (
        _cli(
            "token", "create", "--data-dir", data, "--repo", "ops/tool", "--scope", "read", "--ttl", "5"
        ).returncode
        == 1
    )

    listed = _cli("repo", "list", "ops", "--data-dir", data)
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["tool"]

    with run_server(tmp_path) as srv:
        base = f"{srv.base_url}/api/v1/namespaces/ops/repos"
        info = httpx.get(f"{base}/tool", headers={"Authorization": f"Bearer {read_token}"})
        assert info.status_code == 200 and info.json()["description"] == "offline"
        as_admin = httpx.get(base, headers={"Authorization": f"Bearer {admin_token}"})
        assert [i["name"] for i in as_admin.json()["items"]] == ["tool"]
        refs = httpx.get(f"{srv.base_url}/git/ops/tool.git/info/refs?service=git-upload-pack")
        assert refs.status_code == 200  # public: anonymous read

    deleted = _cli("repo", "delete", "ops/tool", "--data-dir", data)
    assert deleted.returncode == 0, deleted.stderr
    assert _cli("repo", "list", "ops", "--data-dir", data).stdout == ""
    assert not list(data.glob("repos/*/*.sqlite"))


def test_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    proc = _cli("serve", "--port", "nope", "--data-dir", tmp_path)
    assert proc.returncode == 1 and "--port" in proc.stderr
    proc = _cli("serve", "--kv", "memcached://x", "--data-dir", tmp_path)
    assert proc.returncode == 1 and "--kv" in proc.stderr


def test_push_updates_catalog_and_access_log(
    api: httpx.Client, server: Server, tmp_path: Path, unique: str
) -> None:
    info = create(api, "pushed", unique)
    env = git_env(server.home)
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work, env=env)
    (work / "f.txt").write_text("hello\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "one", cwd=work, env=env)
    git("push", "-q", server.git_url("pushed", unique, info["token"]), "main", cwd=work, env=env)

    got = api.get(f"/namespaces/pushed/repos/{unique}").json()
    assert got["object_count"] == 3 and got["size_bytes"] > 0
    assert got["last_push_at"] is not None and got["last_push_at"] >= got["created_at"]
    listed = api.get("/namespaces/pushed/repos", params={"search": unique}).json()["items"]
    assert listed[0]["last_push_at"] == got["last_push_at"] and listed[0]["object_count"] == 3

    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    pushes = [e for e in lines if e["path"] == f"/git/pushed/{unique}.git/git-receive-pack"]
    assert pushes and pushes[-1]["status"] == 200 and pushes[-1]["repo"] == f"pushed/{unique}"
    assert pushes[-1]["bytes_in"] > 0 and pushes[-1]["token_id"] == info["token_id"]
    assert {"at", "method", "path", "status", "duration_ms", "repo", "bytes_in", "bytes_out"} <= set(
        pushes[-1]
    )
    assert info["token"] not in server.log()


def test_tls_serves_https_and_http2(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    with run_server(tmp_path, "--tls-cert", str(cert_path), "--tls-key", str(key_path)) as srv:
        assert srv.base_url.startswith("https://")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_path)), http2=_has_h2()) as client:
            resp = client.get(f"{srv.base_url}/healthz")
            assert resp.status_code == 200
            if _has_h2():
                assert resp.http_version == "HTTP/2"
            made = client.post(
                f"{srv.base_url}/api/v1/namespaces/tls/repos",
                json={"name": "secure"},
                headers={"Authorization": f"Bearer {srv.admin_token}"},
            )
            assert made.status_code == 201 and made.json()["remote"].startswith("https://")


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True
