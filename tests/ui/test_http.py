"""The UI's security rules over plain HTTP: cookies, CSRF, origins, revocation, scopes, raw bytes.

One server for the module; httpx clients act as browsers (they keep cookies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server, run_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("uihttp")) as server:
        server.create_repo("team", "one")
        server.create_repo("team", "two", description="<script>alert(1)</script>")
        yield server


_open: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def _client(srv: Server) -> httpx.Client:
    """A cookie-keeping client, closed after the test."""
    client = httpx.Client(base_url=srv.base_url)
    _open.append(client)
    return client


def _login(srv: Server, token: str) -> httpx.Client:
    client = _client(srv)
    page = client.get("/ui/-/login")
    nonce = re.search(r'name="login_nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    client.post(
        "/ui/-/login",
        data={"token": token, "login_nonce": nonce.group(1), "next": "/ui/"},
        headers={"origin": srv.base_url},
    )
    return client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_session_cookie_is_httponly_strict_and_not_the_token(srv: Server) -> None:
    client = _client(srv)
    nonce = re.search(r'name="login_nonce" value="([^"]+)"', client.get("/ui/-/login").text)
    assert nonce is not None
    resp = client.post("/ui/-/login", data={"token": srv.admin_token, "login_nonce": nonce.group(1)})
    assert resp.status_code == 303
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("gs_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; TLS adds it
    assert srv.admin_token not in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert (
        httpx.get(
            srv.base_url + "/api/v1/namespaces/team/repos", headers={"authorization": f"Bearer {value}"}
        ).status_code
        == 401
    )


def test_bad_token_and_forged_login_are_refused(srv: Server) -> None:
    client = _client(srv)
    nonce = re.search(r'name="login_nonce" value="([^"]+)"', client.get("/ui/-/login").text)
    assert nonce is not None
    bad = client.post("/ui/-/login", data={"token": "gs_" + "x" * 40, "login_nonce": nonce.group(1)})
    assert bad.status_code == 401 and "invalid" in bad.text
    fresh = _client(srv)  # no gs_login cookie: a cross-site form
    assert fresh.post("/ui/-/login", data={"token": srv.admin_token, "login_nonce": "x"}).status_code == 403
    other_origin = client.post(
        "/ui/-/login",
        data={"token": srv.admin_token, "login_nonce": nonce.group(1)},
        headers={"origin": "http://evil.example"},
    )
    assert other_origin.status_code == 403


def test_logout_needs_the_csrf_value(srv: Server) -> None:
    client = _login(srv, srv.admin_token)
    page = client.get("/ui/team")
    assert page.status_code == 200
    assert client.post("/ui/-/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.get("/ui/team").status_code == 200  # still logged in
    assert client.post("/ui/-/logout", data={"csrf": _csrf(page.text)}).status_code == 303
    assert client.get("/ui/team").status_code == 303  # back to the login page


def test_revoked_token_ends_its_session(srv: Server) -> None:
    status, minted = srv.api("POST", "/namespaces/team/repos/one/tokens", {"scope": "read"})
    assert status == 201
    client = _login(srv, minted["token"])
    assert client.get("/ui/team/one").status_code == 200
    assert srv.api("DELETE", f"/tokens/{minted['id']}")[0] == 204
    assert client.get("/ui/team/one").status_code == 303


def test_repo_token_sees_only_its_repo(srv: Server) -> None:
    status, minted = srv.api("POST", "/namespaces/team/repos/one/tokens", {"scope": "read"})
    assert status == 201
    client = _login(srv, minted["token"])
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/team/one"
    assert client.get("/ui/team/two").status_code == 403
    assert client.get("/ui/team").status_code == 403  # listing is for admins
    assert "fork-button" not in client.get("/ui/team/one").text


def test_namespace_listing_escapes_descriptions(srv: Server) -> None:
    client = _login(srv, srv.admin_token)
    page = client.get("/ui/team", params={"search": "tw"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert ">two<" in page.text and ">one<" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_fork_button_forks_through_the_api(srv: Server) -> None:
    client = _login(srv, srv.admin_token)
    page = client.get("/ui/team/one")
    assert "fork-button" in page.text
    resp = client.post(
        "/ui/team/one/fork", data={"csrf": _csrf(page.text), "namespace": "team", "name": "one-fork"}
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/ui/team/one-fork"
    assert "team/one" in client.get("/ui/team").text  # the listing names the parent
    assert client.post("/ui/team/one/fork", data={"csrf": "forged", "name": "x"}).status_code == 403
