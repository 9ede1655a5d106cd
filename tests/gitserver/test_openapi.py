"""The OpenAPI description and the metrics endpoint, seen from outside; a time-boxed
schemathesis run against a live server: no 5xx, no response outside the schema."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from tests.gitserver.conftest import create
from tests.helpers import VENV_BIN, Server, git, git_env, run_server


def test_openapi_is_public_and_complete(anon: httpx.Client) -> None:
    resp = anon.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    ops = {(path, method) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    for needed in [
        ("/namespaces/{ns}/repos", "post"),
        ("/namespaces/{ns}/repos", "get"),
        ("/namespaces/{ns}/repos/{name}", "get"),
        ("/namespaces/{ns}/repos/{name}", "delete"),
        ("/namespaces/{ns}/repos/{name}/fork", "post"),
        ("/namespaces/{ns}/repos/{name}/import", "post"),
        ("/namespaces/{ns}/repos/{name}/tokens", "post"),
        ("/namespaces/{ns}/repos/{name}/tokens", "get"),
        ("/tokens/{id}", "delete"),
        ("/openapi.json", "get"),
    ]:
        assert needed in ops, needed
    # every $ref resolves
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node = doc
        for key in ref.split("/"):
            node = node[key]


def test_metrics_count_what_happened(tmp_path: Path, history_repo: Path) -> None:
    with run_server(tmp_path, "--metrics-token", "sekret", "--idle-timeout", "0.2") as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            info = client.post(
                "/api/v1/namespaces/m/repos",
                json={"name": "r"},
                headers={"Authorization": f"Bearer {server.admin_token}"},
            ).json()
            env = git_env(server.home)
            git("push", "-q", server.git_url("m", "r", info["token"]), "main", cwd=history_repo, env=env)
            git("clone", "-q", server.git_url("m", "r", info["token"]), tmp_path / "c", env=env)
            import time

            time.sleep(1.0)  # past the idle timeout: the actor hibernates
            text = client.get("/metrics", headers={"Authorization": "Bearer sekret"}).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values["gitserver_pushes_total"] == 1
    assert values["gitserver_fetches_total"] >= 1
    assert values["gitserver_bytes_in_total"] > 100_000  # the pushed pack
    assert values["gitserver_bytes_out_total"] > 100_000  # the cloned pack
    assert values["gitserver_actor_wakes_total"] >= 1
    assert values["gitserver_actor_hibernations_total"] >= 1
    assert values["gitserver_actors_resident"] == 0 and values["gitserver_actors_hibernated"] == 1
    route = 'route="/api/v1/namespaces/{ns}/repos"'
    assert values[f"gitserver_request_duration_seconds_count{{{route}}}"] == 1
    assert values[f'gitserver_requests_total{{{route},method="POST",status="201"}}'] == 1
    assert values['gitserver_request_duration_seconds_count{route="git git-receive-pack"}'] == 1


def test_schemathesis_finds_no_server_error(server: Server, api: httpx.Client) -> None:
    # a few real repos so that some generated names hit something
    for name in ("a", "b"):
        create(api, "st", name)
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [
            str(VENV_BIN / "schemathesis"),
            "run",
            f"{server.base_url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "12",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "-H",
            f"Authorization: Bearer {server.admin_token}",
        ],
        capture_output=True,
        timeout=240,
        env=env,
    )
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out[-6000:]
