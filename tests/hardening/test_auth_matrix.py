"""The auth matrix: every route of a real ``gitserver serve`` x every kind of caller.

Rules:
- One table, ``MATRIX``: a row per route (REST API, its route groups, the Git remote,
  ``/metrics``, ``/openapi.json``, ``/healthz`` and the ``/ui`` pages), a column per
  principal, and in each cell the status a user sees. The table is the documentation
  (docs/security.md, "Auth matrix"); SPEC: missing or bad credentials are ``401`` with
  ``WWW-Authenticate: Basic``; a valid token without the scope, or for another repo, is
  ``403``; admin may do everything; public repos are readable anonymously.
- The UI takes no Authorization header: each principal logs in through the login form
  and its session cookie is used (a bad token gets no session; a revoked token's session
  dies on the next request). A UI ``401`` is a redirect (302) to the login page.
- Admin cells that change state are written so they change nothing another cell reads
  (a throwaway repo to delete, a stale parent for ``POST /commits``, ``restore`` of main
  to itself, an import into a repo that already has refs).
- No response, whatever the cell, contains the marker committed only to the other repo,
  and no refused response contains the target repo's marker.
- Traversal: names and paths with ``..``, ``%2e%2e``, ``%2F``, absolute paths, NUL and
  overlong ones are refused with a 4xx in the SPEC error shape and create nothing
  outside the data dir.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, run_server

NS = "acme"
PRIV_MARKER = "priv-marker-7c1f9e"
OTHER_MARKER = "other-marker-b42d0a"
BAD = "gs_" + "B" * 40
PRINCIPALS = ("none", "bad", "revoked", "read", "write", "other", "admin")
FLUSH = b"0000"


@dataclass(frozen=True)
class Row:
    """One route: how to call it and what each principal gets, in PRINCIPALS order."""

    name: str
    method: str
    path: str  # {id} is replaced by a spare token id for the revoke route
    expect: tuple[int, int, int, int, int, int, int]
    body: object | None = None
    raw: bytes | None = None  # a git request body
    content_type: str = ""


R = f"/api/v1/namespaces/{NS}/repos/priv"
G = f"/git/{NS}/priv.git"
U = f"/ui/{NS}/priv"
UP = "application/x-git-upload-pack-request"
RP = "application/x-git-receive-pack-request"

# fmt: off
#             none bad  rev  read write other admin
OPEN =       (200, 200, 200, 200, 200, 200, 200)
ADMIN_ONLY = (401, 401, 401, 403, 403, 403)
READ =       (401, 401, 401, 200, 200, 403, 200)
WRITE_NEED = (401, 401, 401, 403)
UI_READ =    (303, 303, 303, 200, 200, 403, 200)

MATRIX: list[Row] = [
    # control plane (api.py): admin only
    Row("create repo", "POST", f"/api/v1/namespaces/{NS}/repos", (*ADMIN_ONLY, 201), {"name": "made-by-admin"}),
    Row("list repos", "GET", f"/api/v1/namespaces/{NS}/repos", (*ADMIN_ONLY, 200)),
    Row("get repo", "GET", R, READ),
    Row("mint token", "POST", f"{R}/tokens", (*ADMIN_ONLY, 201), {"scope": "read"}),
    Row("list tokens", "GET", f"{R}/tokens", (*ADMIN_ONLY, 200)),
    Row("revoke token", "DELETE", "/api/v1/tokens/{id}", (*ADMIN_ONLY, 204)),
    Row("delete repo", "DELETE", f"/api/v1/namespaces/{NS}/repos/scratch", (*ADMIN_ONLY, 204)),
    Row("openapi", "GET", "/api/v1/openapi.json", OPEN),
    Row("openapi root", "GET", "/openapi.json", OPEN),
    # fork_api.py, snapshot_api.py: admin only (import: priv has refs, so 409)
    Row("fork", "POST", f"{R}/fork", (*ADMIN_ONLY, 201), {"name": "fork-by-admin"}),
    Row("import", "POST", f"{R}/import", (*ADMIN_ONLY, 409), {"url": "http://127.0.0.1:9/x.git"}),
    Row("take snapshot", "POST", f"{R}/snapshots", (*ADMIN_ONLY, 201)),
    Row("list snapshots", "GET", f"{R}/snapshots", (*ADMIN_ONLY, 200)),
    # history_api.py: read; write for POST (a stale parent, the first commit: 409 once authorised)
    Row("refs", "GET", f"{R}/refs", READ),
    Row("reflog", "GET", f"{R}/reflog", READ),
    Row("commits", "GET", f"{R}/commits?rev=main", READ),
    Row("tree", "GET", f"{R}/tree?rev=main", READ),
    Row("raw", "GET", f"{R}/raw?rev=main&path=secret.txt", READ),
    Row("diff", "GET", f"{R}/diff?from=main~1&to=main", READ),
    Row("create commit", "POST", f"{R}/commits", (*WRITE_NEED, 409, 403, 409),
        {"branch": "main", "parent": "{first}", "message": "m", "author": {"name": "a", "email": "a@x"},
         "files": [{"path": "f", "content_base64": "eA=="}]}),
    Row("restore", "POST", f"{R}/restore", (*WRITE_NEED, 200, 403, 200), {"ref": "refs/heads/main", "to": "main"}),
    # the Git remote (app.py)
    Row("info/refs upload", "GET", f"{G}/info/refs?service=git-upload-pack", READ),
    Row("info/refs receive", "GET", f"{G}/info/refs?service=git-receive-pack", (*WRITE_NEED, 200, 403, 200)),
    Row("upload-pack", "POST", f"{G}/git-upload-pack", READ, raw=FLUSH, content_type=UP),
    Row("receive-pack", "POST", f"{G}/git-receive-pack", (*WRITE_NEED, 200, 403, 200), raw=FLUSH, content_type=RP),
    # the root (metrics open without --metrics-token)
    Row("metrics", "GET", "/metrics", OPEN),
    Row("healthz", "GET", "/healthz", OPEN),
    # the web UI: 302 = sent to the login page (no session); the namespace page is admin-only
    Row("ui login", "GET", "/ui/-/login", OPEN),
    Row("ui home", "GET", "/ui/", (303, 303, 303, 303, 303, 303, 200)),
    Row("ui namespace", "GET", f"/ui/{NS}", (303, 303, 303, 403, 403, 403, 200)),
    Row("ui repo", "GET", U, UI_READ),
    Row("ui tree", "GET", f"{U}/tree?rev=main", UI_READ),
    Row("ui blob", "GET", f"{U}/blob?rev=main&path=secret.txt", UI_READ),
    Row("ui raw", "GET", f"{U}/raw?rev=main&path=secret.txt", UI_READ),
    Row("ui log", "GET", f"{U}/log?rev=main", UI_READ),
    Row("ui commit", "GET", f"{U}/commit?rev=main", UI_READ),
    Row("ui timeline", "GET", f"{U}/timeline?ref=main", UI_READ),
]

# The public repo: anyone reads, any valid token included; bad credentials stay 401 on the
# API and the remote (the UI has no session for them, so they read anonymously).
PUB_READ = (200, 401, 401, 200, 200, 200, 200)
PUBLIC: list[Row] = [
    Row("pub get repo", "GET", f"/api/v1/namespaces/{NS}/repos/pub", PUB_READ),
    Row("pub refs", "GET", f"/api/v1/namespaces/{NS}/repos/pub/refs", PUB_READ),
    Row("pub info/refs upload", "GET", f"/git/{NS}/pub/info/refs?service=git-upload-pack",
        PUB_READ),
    Row("pub info/refs receive", "GET", f"/git/{NS}/pub/info/refs?service=git-receive-pack",
        (401, 401, 401, 403, 403, 403, 200)),
    Row("pub ui repo", "GET", f"/ui/{NS}/pub", OPEN),
]
# fmt: on


@dataclass
class World:
    server: Server
    tokens: dict[str, str | None]  # principal -> secret
    cookies: dict[str, str]  # principal -> gs_session value ("" = none)
    spare_token_id: str
    first_commit: str


def _commit(server: Server, repo: str, token: str, files: dict[str, str], parent: str | None) -> str:
    body = {
        "branch": "main",
        "parent": parent,
        "message": "add",
        "author": {"name": "T", "email": "t@example.com"},
        "files": [
            {"path": p, "content_base64": base64.b64encode(c.encode()).decode()} for p, c in files.items()
        ],
    }
    status, out = server.api("POST", f"/namespaces/{NS}/repos/{repo}/commits", body, token=token)
    assert status in (200, 201), (status, out)
    return str(out.get("id") or out.get("commit") or out.get("oid"))


def _login(client: httpx.Client, secret: str) -> str:
    """Log in through the form; the session cookie ('' when the login is refused)."""
    client.cookies.clear()
    page = client.get("/ui/-/login")
    nonce = re.search(r'name="login_nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    resp = client.post("/ui/-/login", data={"token": secret, "login_nonce": nonce.group(1), "next": "/ui/"})
    return resp.cookies.get("gs_session") or ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with run_server(tmp_path_factory.mktemp("authmatrix")) as server:
        _, priv_write = server.create_repo(NS, "priv")
        _, other_write = server.create_repo(NS, "other")
        _, pub_write = server.create_repo(NS, "pub", public=True)
        server.create_repo(NS, "scratch")
        first = _commit(server, "priv", priv_write, {"readme.md": "hello\n"}, None)
        _commit(server, "priv", priv_write, {"secret.txt": PRIV_MARKER + "\n"}, first)
        _commit(server, "other", other_write, {"secret.txt": OTHER_MARKER + "\n"}, None)
        _commit(server, "pub", pub_write, {"readme.md": "public\n"}, None)

        def mint(repo: str, scope: str) -> dict:
            status, out = server.api("POST", f"/namespaces/{NS}/repos/{repo}/tokens", {"scope": scope})
            assert status == 201, out
            return out

        revoked, ui_revoked, spare = mint("priv", "read"), mint("priv", "read"), mint("priv", "read")
        assert server.api("DELETE", f"/tokens/{revoked['id']}")[0] == 204
        tokens: dict[str, str | None] = {
            "none": None,
            "bad": BAD,
            "revoked": revoked["token"],
            "read": mint("priv", "read")["token"],
            "write": priv_write,
            "other": other_write,
            "admin": server.admin_token,
        }
        cookies: dict[str, str] = {}
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for who, secret in tokens.items():
                if who == "revoked":
                    secret = ui_revoked["token"]
                cookies[who] = _login(client, secret) if secret else ""
        assert server.api("DELETE", f"/tokens/{ui_revoked['id']}")[0] == 204
        assert cookies["read"] and cookies["revoked"] and not cookies["bad"]
        yield World(server, tokens, cookies, spare["id"], first)


def _call(client: httpx.Client, world: World, row: Row, who: str) -> httpx.Response:
    path = row.path.replace("{id}", world.spare_token_id)
    headers: dict[str, str] = {}
    if path.startswith("/ui"):
        if world.cookies[who]:
            headers["Cookie"] = f"gs_session={world.cookies[who]}"
    elif world.tokens[who] is not None:
        headers["Authorization"] = f"Bearer {world.tokens[who]}"
    content: bytes | None = None
    if row.raw is not None:
        content = row.raw
        headers["Content-Type"] = row.content_type
        headers["Git-Protocol"] = "version=0"
    elif row.body is not None:
        content = json.dumps(row.body).replace("{first}", world.first_commit).encode()
        headers["Content-Type"] = "application/json"
    client.cookies.clear()
    return client.request(row.method, path, content=content, headers=headers)


def test_auth_matrix(world: World) -> None:
    wrong: list[str] = []
    with httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False) as client:
        for row in MATRIX + PUBLIC:
            for who, expected in zip(PRINCIPALS, row.expect, strict=True):
                resp = _call(client, world, row, who)
                text = resp.text
                cell = f"{row.name} / {who}: {resp.status_code} (want {expected})"
                if resp.status_code != expected:
                    wrong.append(f"{cell} {text[:160]!r}")
                if OTHER_MARKER in text:
                    wrong.append(f"{cell} leaks the other repo's marker")
                if resp.status_code >= 300 and PRIV_MARKER in text:
                    wrong.append(f"{cell} leaks the refused repo's marker")
                if resp.status_code == 401 and not row.path.startswith("/ui"):
                    if 'Basic realm="gitserver"' not in resp.headers.get("www-authenticate", ""):
                        wrong.append(f"{cell} has no Basic challenge")
                if resp.status_code in (401, 403) and not row.path.startswith("/ui"):
                    code = resp.json()["error"]["code"]
                    if code != ("UNAUTHORIZED" if resp.status_code == 401 else "FORBIDDEN"):
                        wrong.append(f"{cell} error code {code}")
                if resp.status_code == 303:  # to the login page, or a repo token to its own repo
                    want = {"read": f"/ui/{NS}/priv", "write": f"/ui/{NS}/priv", "other": f"/ui/{NS}/other"}
                    if not resp.headers.get("location", "").startswith(want.get(who, "/ui/-/login")):
                        wrong.append(f"{cell} redirects to {resp.headers.get('location')}")
    assert not wrong, "\n".join(wrong)
    # the admin cells really did what they say, and the rest changed nothing
    server = world.server
    assert server.api("GET", f"/namespaces/{NS}/repos/scratch")[0] == 404
    assert server.api("GET", f"/namespaces/{NS}/repos/fork-by-admin")[0] == 200
    status, raw = server.api("GET", f"/namespaces/{NS}/repos/priv/refs")
    assert status == 200 and len(raw) >= 1
    status, listing = server.api("GET", f"/namespaces/{NS}/repos?limit=200")
    names = {item["name"] for item in listing["items"]}
    assert names == {"priv", "other", "pub", "made-by-admin", "fork-by-admin"}


def test_git_clients_see_the_same_matrix(world: World, tmp_path: Path) -> None:
    """The real git CLI: a read token clones priv, cannot push; another repo's token and a
    revoked one cannot clone; nothing of the other repo reaches the clone."""
    from tests.helpers import git, git_env

    env = git_env(world.server.home)
    clone = tmp_path / "c"
    git("clone", "-q", world.server.git_url(NS, "priv", world.tokens["read"]), clone, env=env)
    assert (clone / "secret.txt").read_text().strip() == PRIV_MARKER
    pushed = git("push", "origin", "HEAD:refs/heads/x", cwd=clone, env=env, check=False)
    assert pushed.returncode != 0 and (b"403" in pushed.stderr or b"does not allow" in pushed.stderr), (
        pushed.stderr
    )
    for who in ("other", "revoked", "bad"):
        out = git(
            "clone",
            "-q",
            world.server.git_url(NS, "priv", world.tokens[who]),
            tmp_path / who,
            env=env,
            check=False,
        )
        assert out.returncode != 0, who
        assert OTHER_MARKER.encode() not in out.stderr + out.stdout
        assert not (tmp_path / who / "secret.txt").exists()


# -- traversal ---------------------------------------------------------------------------

BAD_NAMES = ["..", "%2e%2e", "a%2F..%2F..", "%2Fetc", "a%00b", "x" * 300, "..%2F..%2Fetc%2Fpasswd", "a..b"]


def _raw_get(
    server: Server, path: str, method: str = "GET", body: bytes | None = None, cookie: str = ""
) -> tuple[int, bytes]:
    """An admin request whose path goes out byte for byte (httpx would normalise dot
    segments); ``cookie`` is the admin's UI session."""
    host, port = server.base_url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {server.admin_token}", "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = f"gs_session={cookie}"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _outside(data_dir: Path) -> set[str]:
    root = data_dir.parent
    return {str(p) for p in root.rglob("*") if data_dir not in p.parents and p != data_dir}


def test_traversal_is_refused(world: World) -> None:
    server = world.server
    before = _outside(server.data_dir)
    problems: list[str] = []
    admin_ui = world.cookies["admin"]

    def check(path: str, status: int, body: bytes, *, ui: bool = False, ok: tuple[int, ...] = ()) -> None:
        path = path if len(path) < 120 else path[:100] + "..."
        if not 400 <= status < 500 and status not in ok:
            problems.append(f"{path}: {status}")
        if b"root:x:0:0" in body or OTHER_MARKER.encode() in body:
            problems.append(f"{path}: leaks a file")
        if not ui and status >= 400:
            try:
                error = json.loads(body)["error"]
                assert isinstance(error["code"], str) and isinstance(error["message"], str)
            except (ValueError, KeyError, TypeError, AssertionError):
                problems.append(f"{path}: not the SPEC error shape: {body[:120]!r}")

    for name in BAD_NAMES:
        for path in (
            f"/api/v1/namespaces/{name}/repos",
            f"/api/v1/namespaces/{NS}/repos/{name}",
            f"/api/v1/namespaces/{name}/repos/priv/refs",
            f"/api/v1/namespaces/{NS}/repos/{name}/raw?rev=main&path=secret.txt",
            f"/git/{name}/priv.git/info/refs?service=git-upload-pack",
            f"/git/{NS}/{name}/info/refs?service=git-upload-pack",
            f"/git/{NS}/{name}.git/info/refs?service=git-upload-pack",
        ):
            check(path, *_raw_get(server, path))
        check(f"/ui/{NS}/{name}", *_raw_get(server, f"/ui/{NS}/{name}", cookie=admin_ui), ui=True)
        body = json.dumps({"name": name.replace("%2F", "/").replace("%00", "\0").replace("%2e", ".")})
        path = f"/api/v1/namespaces/{NS}/repos"
        check(f"create {name}", *_raw_get(server, path, "POST", body.encode()))
        check(f"fork {name}", *_raw_get(server, f"{path}/priv/fork", "POST", body.encode()))
    for absolute in ("/etc/passwd", "//etc/passwd", "/../../../../etc/passwd"):
        check(absolute, *_raw_get(server, f"/git{absolute}/info/refs?service=git-upload-pack"))
        check(absolute, *_raw_get(server, f"/api/v1/namespaces{absolute}"))
        check(absolute, *_raw_get(server, f"/ui/-/static/..{absolute}", cookie=admin_ui), ui=True)
    for path_param in (
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "a/../../secret.txt",
        "./secret.txt",
        "a%2F..%2F..%2Fetc%2Fpasswd",
        "secret.txt%00.md",
        "x" * 5000,
    ):
        for route in ("tree", "raw", "commits"):
            url = f"/api/v1/namespaces/{NS}/repos/priv/{route}?rev=main&path={path_param}"
            check(url, *_raw_get(server, url))
        url = f"/api/v1/namespaces/{NS}/repos/priv/diff?from=main~1&to=main&path={path_param}"
        check(url, *_raw_get(server, url))
        for page in ("tree", "blob", "raw"):
            url = f"/ui/{NS}/priv/{page}?rev=main&path={path_param}"
            check(url, *_raw_get(server, url, cookie=admin_ui), ui=True)
    # a leading slash names the repo's root (as GitHub's contents API reads it), never the
    # disk: no such file in the tree (404), or a path filter that matches nothing (200)
    for route in ("tree", "raw", "commits"):
        url = f"/api/v1/namespaces/{NS}/repos/priv/{route}?rev=main&path=/etc/passwd"
        check(url, *_raw_get(server, url), ok=(200,) if route == "commits" else ())
    for page in ("tree", "blob", "raw"):
        url = f"/ui/{NS}/priv/{page}?rev=main&path=/etc/passwd"
        check(url, *_raw_get(server, url, cookie=admin_ui), ui=True)
    assert not problems, "\n".join(problems)
    assert _outside(server.data_dir) == before
