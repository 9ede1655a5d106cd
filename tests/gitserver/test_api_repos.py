"""The repository endpoints of /api/v1 against a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.gitserver.conftest import create, error_code
from tests.helpers import Server

REPO_FIELDS = {
    "id",
    "namespace",
    "name",
    "description",
    "default_branch",
    "remote",
    "created_at",
    "updated_at",
    "last_push_at",
    "read_only",
    "public",
    "forked_from",
    "size_bytes",
    "object_count",
}


def test_create_returns_repo_info_and_a_write_token(api: httpx.Client, server: Server, unique: str) -> None:
    resp = api.post(
        "/namespaces/team/repos",
        json={"name": unique, "description": "demo", "default_branch": "trunk", "public": False},
    )
    assert resp.status_code == 201, resp.text
    info = resp.json()
    assert REPO_FIELDS <= set(info)
    assert info["namespace"] == "team" and info["name"] == unique
    assert info["description"] == "demo" and info["default_branch"] == "trunk"
    assert info["remote"] == f"{server.base_url}/git/team/{unique}.git"
    assert info["size_bytes"] == 0 and info["object_count"] == 0 and info["last_push_at"] is None
    assert info["read_only"] is False and info["forked_from"] is None
    assert len(info["id"]) == 16 and int(info["id"], 16) >= 0
    assert info["token"].startswith("gs_") and len(info["token"]) == 43
    assert resp.headers["location"] == f"/api/v1/namespaces/team/repos/{unique}"

    got = api.get(f"/namespaces/team/repos/{unique}")
    assert got.status_code == 200
    assert {k: v for k, v in info.items() if k in REPO_FIELDS} == got.json()
    # the write token reads its own repo's info
    mine = httpx.get(
        f"{server.base_url}/api/v1/namespaces/team/repos/{unique}",
        headers={"Authorization": f"Bearer {info['token']}"},
    )
    assert mine.status_code == 200 and mine.json()["id"] == info["id"]


def test_duplicate_name_is_409_case_insensitively(api: httpx.Client, unique: str) -> None:
    create(api, "dup", unique)
    for name in (unique, unique.upper()):
        resp = api.post("/namespaces/dup/repos", json={"name": name})
        assert resp.status_code == 409
        assert error_code(resp) == "ALREADY_EXISTS"
    # another namespace is another place
    create(api, "dup2", unique)


@pytest.mark.parametrize(
    "name",
    ["", "-lead", ".hidden", "_x", "a b", "a/b", "ümlaut", "x" * 64, "repo.git", "REPO.GIT", "a..b", "a;b"],
)
def test_invalid_repo_names(api: httpx.Client, name: str) -> None:
    resp = api.post("/namespaces/names/repos", json={"name": name})
    assert resp.status_code == 400
    assert error_code(resp) == "INVALID_REPO_NAME"


@pytest.mark.parametrize("name", ["a", "0", "A.b_c-d", "x" * 63, "v1.2.3", "git"])
def test_valid_repo_names(api: httpx.Client, name: str) -> None:
    resp = api.post("/namespaces/okname/repos", json={"name": name})
    assert resp.status_code in (201, 409), resp.text  # 409 when rerun against the same server


def test_invalid_namespace(api: httpx.Client) -> None:
    resp = api.post("/namespaces/-bad/repos", json={"name": "fine"})
    assert resp.status_code == 400 and error_code(resp) == "INVALID_REPO_NAME"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": "ok1", "public": "yes"},
        {"name": "ok2", "read_only": 1},
        {"name": "ok3", "description": ["x"]},
        {"name": "ok4", "default_branch": "bad..branch"},
        {"name": "ok5", "default_branch": "x.lock"},
    ],
)
def test_bad_bodies_are_invalid_input(api: httpx.Client, body: dict) -> None:
    resp = api.post("/namespaces/bodies/repos", json=body)
    assert resp.status_code == 400, resp.text
    assert error_code(resp) == "INVALID_INPUT"


def test_malformed_json_and_non_object(api: httpx.Client) -> None:
    for content in (b"{nope", b"[1, 2]", b"\xff\xfe"):
        resp = api.post("/namespaces/bodies/repos", content=content)
        assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


def test_body_too_large(api: httpx.Client) -> None:
    resp = api.post("/namespaces/big/repos", json={"name": "big", "description": "x" * (2 << 20)})
    assert resp.status_code == 413 and error_code(resp) == "TOO_LARGE"

    def chunks():  # no Content-Length: the cap holds on a streamed body too
        for _ in range(40):
            yield b" " * 65536

    resp = api.post("/namespaces/big/repos", content=chunks())
    assert resp.status_code == 413 and error_code(resp) == "TOO_LARGE"


def test_missing_repo_is_404(api: httpx.Client) -> None:
    resp = api.get("/namespaces/nowhere/repos/nothing")
    assert resp.status_code == 404 and error_code(resp) == "NOT_FOUND"
    resp = api.delete("/namespaces/nowhere/repos/nothing")
    assert resp.status_code == 404 and error_code(resp) == "NOT_FOUND"


def test_delete_removes_repo_file_and_tokens(api: httpx.Client, server: Server, unique: str) -> None:
    info = create(api, "gone", unique)
    files = list(server.data_dir.glob(f"repos/*/{info['id']}.sqlite"))
    assert files, "the repo has its own SQLite file"
    resp = api.delete(f"/namespaces/gone/repos/{unique}")
    assert resp.status_code == 204
    assert api.get(f"/namespaces/gone/repos/{unique}").status_code == 404
    assert not files[0].exists()
    # its token died with it
    resp = httpx.get(
        f"{server.base_url}/api/v1/namespaces/gone/repos/{unique}",
        headers={"Authorization": f"Bearer {info['token']}"},
    )
    assert resp.status_code == 401
    # the name is free again, for a new repo with a new id
    again = create(api, "gone", unique)
    assert again["id"] != info["id"]


def test_list_paginates_searches_and_sorts(api: httpx.Client, unique: str) -> None:
    ns = f"list{unique}"
    names = [f"{p}-{unique}" for p in ("delta", "alpha", "echo", "bravo", "charlie")]
    for name in names:
        create(api, ns, name)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, "sort": "name"}
        if cursor:
            params["cursor"] = cursor
        resp = api.get(f"/namespaces/{ns}/repos", params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(names) and pages == 3

    newest_first = api.get(
        f"/namespaces/{ns}/repos", params={"sort": "created_at", "direction": "desc"}
    ).json()
    assert [i["name"] for i in newest_first["items"]] == names[::-1]
    oldest_first = api.get(
        f"/namespaces/{ns}/repos", params={"sort": "created_at", "direction": "asc"}
    ).json()
    assert [i["name"] for i in oldest_first["items"]] == names

    found = api.get(f"/namespaces/{ns}/repos", params={"search": "CHAR"}).json()
    assert [i["name"] for i in found["items"]] == [f"charlie-{unique}"]
    assert api.get("/namespaces/emptyns/repos").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "x"},
        {"sort": "size"},
        {"direction": "up"},
        {"cursor": "garbage!"},
    ],
)
def test_list_rejects_bad_parameters(api: httpx.Client, params: dict) -> None:
    resp = api.get("/namespaces/x/repos", params=params)
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


def test_control_plane_needs_admin(api: httpx.Client, server: Server, unique: str) -> None:
    info = create(api, "guarded", unique)
    base = server.base_url + "/api/v1"
    anon = httpx.get(f"{base}/namespaces/guarded/repos")
    assert anon.status_code == 401 and error_code(anon) == "UNAUTHORIZED"
    assert anon.headers["www-authenticate"] == 'Basic realm="gitserver"'
    bad = httpx.get(f"{base}/namespaces/guarded/repos", headers={"Authorization": "Bearer gs_" + "z" * 40})
    assert bad.status_code == 401 and "www-authenticate" in bad.headers
    repo_token = {"Authorization": f"Bearer {info['token']}"}
    for method, path in [
        ("GET", "/namespaces/guarded/repos"),
        ("POST", "/namespaces/guarded/repos"),
        ("DELETE", f"/namespaces/guarded/repos/{unique}"),
        ("POST", f"/namespaces/guarded/repos/{unique}/tokens"),
        ("GET", f"/namespaces/guarded/repos/{unique}/tokens"),
    ]:
        resp = httpx.request(method, base + path, headers=repo_token, json={"name": "x", "scope": "read"})
        assert resp.status_code == 403, (method, path, resp.text)
        assert error_code(resp) == "FORBIDDEN"


def test_basic_auth_any_user(api: httpx.Client, server: Server, unique: str) -> None:
    create(api, "basic", unique)
    url = f"{server.base_url}/api/v1/namespaces/basic/repos/{unique}"
    assert httpx.get(url, auth=("anyone", server.admin_token)).status_code == 200
    assert httpx.get(url, auth=("", server.admin_token)).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Digest abc"}).status_code == 401


def test_public_repo_is_readable_anonymously(api: httpx.Client, server: Server, unique: str) -> None:
    create(api, "pub", unique, public=True)
    create(api, "pub", unique + "-private")
    assert httpx.get(f"{server.base_url}/api/v1/namespaces/pub/repos/{unique}").json()["public"] is True
    hidden = httpx.get(f"{server.base_url}/api/v1/namespaces/pub/repos/{unique}-private")
    assert hidden.status_code == 401
    missing = httpx.get(f"{server.base_url}/api/v1/namespaces/pub/repos/{unique}-none")
    assert missing.status_code == 401  # anonymous callers cannot probe for names


def test_unknown_routes_and_methods(anon: httpx.Client) -> None:
    for path in ("/", "/nope", "/api/v1/nope", "/api/v2/namespaces/a/repos", "/git/a"):
        resp = anon.get(path)
        assert resp.status_code == 404, path
        assert error_code(resp) == "NOT_FOUND"
    resp = anon.put("/api/v1/namespaces/a/repos")
    assert resp.status_code == 405 and "POST" in resp.headers["allow"]
    assert error_code(resp) == "INVALID_INPUT"
    health = anon.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
