"""Token minting, listing and revocation through /api/v1, and tokens on the Git remote."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from tests.gitserver.conftest import create, error_code
from tests.helpers import Server


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_mint_list_revoke(api: httpx.Client, server: Server, unique: str) -> None:
    create(api, "tok", unique)
    resp = api.post(f"/namespaces/tok/repos/{unique}/tokens", json={"scope": "read", "ttl_seconds": 3600})
    assert resp.status_code == 201, resp.text
    minted = resp.json()
    assert {"id", "token", "scope", "expires_at"} <= set(minted)
    assert minted["scope"] == "read" and minted["token"].startswith("gs_")
    lifetime = _at(minted["expires_at"]) - _at(minted["created_at"])
    assert timedelta(seconds=3599) < lifetime <= timedelta(seconds=3600)

    listed = api.get(f"/namespaces/tok/repos/{unique}/tokens").json()["items"]
    assert minted["id"] in [t["id"] for t in listed]
    assert all("token" not in t and "hash" not in t for t in listed)
    assert minted["token"] not in str(listed)

    url = f"{server.base_url}/api/v1/namespaces/tok/repos/{unique}"
    auth = {"Authorization": f"Bearer {minted['token']}"}
    assert httpx.get(url, headers=auth).status_code == 200

    assert api.delete(f"/tokens/{minted['id']}").status_code == 204
    after = httpx.get(url, headers=auth)  # the very next request
    assert after.status_code == 401 and error_code(after) == "UNAUTHORIZED"
    assert "www-authenticate" in after.headers
    listed = api.get(f"/namespaces/tok/repos/{unique}/tokens").json()["items"]
    assert [t["revoked"] for t in listed if t["id"] == minted["id"]] == [True]
    # revoking twice is harmless; unknown ids are 404
    assert api.delete(f"/tokens/{minted['id']}").status_code == 204
    missing = api.delete("/tokens/0000000000000000")
    assert missing.status_code == 404 and error_code(missing) == "NOT_FOUND"


def test_default_ttl_is_a_day(api: httpx.Client, unique: str) -> None:
    create(api, "tok", unique)
    minted = api.post(f"/namespaces/tok/repos/{unique}/tokens", json={"scope": "write"}).json()
    lifetime = _at(minted["expires_at"]) - _at(minted["created_at"])
    assert timedelta(hours=23, minutes=59) < lifetime <= timedelta(days=1)


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "admin"},
        {"scope": "owner"},
        {},
        {"scope": "read", "ttl_seconds": 59},
        {"scope": "read", "ttl_seconds": 31_536_001},
        {"scope": "read", "ttl_seconds": "60"},
        {"scope": "read", "ttl_seconds": 60.5},
    ],
)
def test_mint_rejects_bad_requests(api: httpx.Client, unique: str, body: dict) -> None:
    create(api, "tokbad", unique)
    resp = api.post(f"/namespaces/tokbad/repos/{unique}/tokens", json=body)
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


def test_ttl_bounds_are_inclusive(api: httpx.Client, unique: str) -> None:
    create(api, "tokttl", unique)
    for ttl in (60, 31_536_000):
        resp = api.post(
            f"/namespaces/tokttl/repos/{unique}/tokens", json={"scope": "read", "ttl_seconds": ttl}
        )
        assert resp.status_code == 201, resp.text


def test_mint_for_missing_repo_is_404(api: httpx.Client) -> None:
    resp = api.post("/namespaces/none/repos/none/tokens", json={"scope": "read"})
    assert resp.status_code == 404 and error_code(resp) == "NOT_FOUND"


def _info_refs(server: Server, ns: str, name: str, service: str, token: str | None) -> httpx.Response:
    auth = ("git", token) if token else None
    return httpx.get(f"{server.base_url}/git/{ns}/{name}.git/info/refs?service={service}", auth=auth)


def test_git_remote_scopes(api: httpx.Client, server: Server, unique: str) -> None:
    info = create(api, "gitauth", unique)
    write = info["token"]
    read = api.post(f"/namespaces/gitauth/repos/{unique}/tokens", json={"scope": "read"}).json()["token"]

    anon = _info_refs(server, "gitauth", unique, "git-upload-pack", None)
    assert anon.status_code == 401 and anon.headers["www-authenticate"] == 'Basic realm="gitserver"'
    assert _info_refs(server, "gitauth", unique, "git-upload-pack", read).status_code == 200
    assert _info_refs(server, "gitauth", unique, "git-upload-pack", write).status_code == 200
    assert _info_refs(server, "gitauth", unique, "git-upload-pack", server.admin_token).status_code == 200
    denied = _info_refs(server, "gitauth", unique, "git-receive-pack", read)
    assert denied.status_code == 403 and error_code(denied) == "FORBIDDEN"
    assert _info_refs(server, "gitauth", unique, "git-receive-pack", write).status_code == 200
    # the .git suffix is optional
    bare = httpx.get(
        f"{server.base_url}/git/gitauth/{unique}/info/refs?service=git-upload-pack", auth=("git", read)
    )
    assert bare.status_code == 200
    # a repo token elsewhere is 403, whether or not the repo exists (no probing)
    assert _info_refs(server, "gitauth", unique + "-other", "git-upload-pack", read).status_code == 403
    # admin sees the truth
    assert (
        _info_refs(server, "gitauth", unique + "-other", "git-upload-pack", server.admin_token).status_code
        == 404
    )


def test_git_remote_public_and_read_only(api: httpx.Client, server: Server, unique: str) -> None:
    pub = create(api, "gitflags", unique + "-pub", public=True)
    assert _info_refs(server, "gitflags", unique + "-pub", "git-upload-pack", None).status_code == 200
    assert _info_refs(server, "gitflags", unique + "-pub", "git-receive-pack", None).status_code == 401
    assert (
        _info_refs(server, "gitflags", unique + "-pub", "git-receive-pack", pub["token"]).status_code == 200
    )

    ro = create(api, "gitflags", unique + "-ro", read_only=True)
    assert _info_refs(server, "gitflags", unique + "-ro", "git-upload-pack", ro["token"]).status_code == 200
    for token in (ro["token"], server.admin_token):
        resp = _info_refs(server, "gitflags", unique + "-ro", "git-receive-pack", token)
        assert resp.status_code == 403 and "read-only" in resp.json()["error"]["message"]


def test_git_routes_check_methods(server: Server, unique: str) -> None:
    resp = httpx.get(f"{server.base_url}/git/a/{unique}.git/git-upload-pack")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    resp = httpx.post(f"{server.base_url}/git/a/{unique}.git/info/refs")
    assert resp.status_code == 405
