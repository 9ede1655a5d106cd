"""In-process checks of the pieces behind the API: config, names, tokens, auth, catalog."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gitserver.auth import credentials, require_admin, require_repo
from gitserver.catalog import BadCursor, Catalog, RepoExists
from gitserver.config import ConfigError, load_settings
from gitserver.errors import ApiError
from gitserver.names import check_branch, check_repo_name, name_problem
from gitserver.tokens import ADMIN_REPO, TokenError, TokenInfo, TokenStore, looks_like_token
from storage.kv_sqlite import SqliteKV

# -- config -------------------------------------------------------------------------------


def test_config_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings({"data_dir": str(tmp_path / "d")}, env={})
    assert s.host == "127.0.0.1" and s.port == 8080 and s.durability == "local"
    assert s.data_dir == (tmp_path / "d").resolve()
    assert s.kv_url == f"sqlite://{s.data_dir}/kv.sqlite"
    assert s.blob_store_url == f"file://{s.data_dir}/blobs"
    assert s.admin_token is None


def test_config_flag_beats_env_beats_default() -> None:
    env = {"GITSERVER_PORT": "9000", "GITSERVER_IDLE_TIMEOUT": "5", "GITSERVER_ADMIN_TOKEN": "secret"}
    s = load_settings({"port": "9100"}, env=env)
    assert s.port == 9100 and s.idle_timeout == 5.0 and s.admin_token == "secret"
    assert load_settings({}, env={"GITSERVER_PORT": ""}).port == 8080  # empty = unset


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        ({"port": "70000"}, "--port"),
        ({"idle_timeout": "0"}, "--idle-timeout"),
        ({"durability": "cloud"}, "--durability"),
        ({"kv": "memcached://x"}, "--kv"),
        ({"blob_store": "/just/a/path"}, "--blob-store"),
        ({"tls_cert": "c.pem"}, "tls"),
        ({"worker_threads": "-1"}, "--worker-threads"),
    ],
)
def test_config_rejects_bad_values(flags: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        load_settings(flags, env={})


def test_config_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="GITSERVER_MAX_RESIDENT"):
        load_settings({}, env={"GITSERVER_MAX_RESIDENT": "many"})


# -- names --------------------------------------------------------------------------------


def test_name_rules() -> None:
    assert name_problem("a" * 63) is None
    assert name_problem("a" * 64)
    assert name_problem("a..b")
    with pytest.raises(ApiError) as err:
        check_repo_name("x.git")
    assert err.value.code == "INVALID_REPO_NAME"
    assert check_branch("refs/heads/release/1.x") == "release/1.x"
    for bad in ("", "a..b", "/a", "a/", "a//b", "a.lock", "x/.hidden", "HEAD", "-x", "a b", "a~1"):
        with pytest.raises(ApiError):
            check_branch(bad)


# -- tokens -------------------------------------------------------------------------------


@pytest.fixture
def tokens(tmp_path: Path):
    kv = SqliteKV(tmp_path / "kv.sqlite")
    yield TokenStore(kv, bootstrap_admin=["env-admin-value"])
    kv.close()


def test_token_format_and_hash_only_storage(tokens: TokenStore) -> None:
    info, secret = tokens.mint("write", "repo1")
    assert looks_like_token(secret)
    assert tokens.verify(secret) == info
    dump = b"".join(k.encode() + v for k, v in tokens.kv.scan(""))
    assert secret.encode() not in dump and secret[3:].encode() not in dump
    assert tokens.verify(secret[:-1] + ("a" if secret[-1] != "a" else "b")) is None
    assert tokens.verify("not a token") is None


def test_bootstrap_admin_token(tokens: TokenStore) -> None:
    admin = tokens.verify("env-admin-value")
    assert admin is not None and admin.scope == "admin" and admin.repo == ADMIN_REPO
    assert admin.expires_at is None
    assert tokens.kv.scan("") == []  # never stored


def test_revoke_and_list(tokens: TokenStore) -> None:
    a, sa = tokens.mint("read", "repo1", 120)
    b, _sb = tokens.mint("write", "repo1")
    tokens.mint("read", "repo2")
    assert [t.id for t in tokens.list_for_repo("repo1")] == [a.id, b.id]
    revoked = tokens.revoke(a.id)
    assert revoked is not None and revoked.revoked
    assert tokens.verify(sa) is None
    assert tokens.revoke("nope") is None
    assert [t.revoked for t in tokens.list_for_repo("repo1")] == [True, False]
    assert tokens.revoke_repo("repo1") == 2
    assert tokens.list_for_repo("repo1") == [] and len(tokens.list_for_repo("repo2")) == 1


@pytest.mark.parametrize(
    ("scope", "repo", "ttl"),
    [("read", "r", 59), ("read", "r", 31_536_001), ("admin", "r", 60), ("write", "*", 60), ("root", "r", 60)],
)
def test_mint_rejects(tokens: TokenStore, scope: str, repo: str, ttl: int) -> None:
    with pytest.raises(TokenError):
        tokens.mint(scope, repo, ttl)


# -- auth ---------------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_parsing() -> None:
    tok = "gs_" + "a" * 40
    assert credentials(None) is None
    assert credentials(f"Bearer {tok}") == tok
    assert credentials(f"bearer   {tok}") == tok
    assert credentials(f"token {tok}") == tok
    assert credentials(_basic("x", tok)) == tok
    assert credentials(_basic("x", "pa:ss")) == "pa:ss"
    assert credentials(_basic(tok, "")) == tok
    for bad in (_basic("", tok), _basic("x", ""), "Basic %%%", "Bearer", "Negotiate abc", ""):
        with pytest.raises(ApiError) as err:
            credentials(bad)
        assert err.value.status == 401
        assert (b"www-authenticate", b'Basic realm="gitserver"') in err.value.headers


def test_authorization_decisions(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    try:
        private = catalog.create("ns", "priv")
        public = catalog.create("ns", "pub", public=True)
        frozen = catalog.create("ns", "ro", read_only=True)
    finally:
        catalog.close()

    def tok(scope: str, repo: str) -> TokenInfo:
        return TokenInfo(id="t", scope=scope, repo=repo, created_at=0, expires_at=None)

    def status(token: TokenInfo | None, need: str, repo) -> int:
        try:
            require_repo(token, need, repo, "ns/x")
        except ApiError as exc:
            return exc.status
        return 200

    admin = tok("admin", ADMIN_REPO)
    assert status(None, "read", private) == 401
    assert status(None, "read", public) == 200
    assert status(None, "write", public) == 401
    assert status(None, "read", None) == 401
    assert status(tok("read", private.id), "read", private) == 200
    assert status(tok("read", private.id), "write", private) == 403
    assert status(tok("write", private.id), "write", private) == 200
    assert status(tok("write", private.id), "read", public) == 200
    assert status(tok("write", public.id), "read", private) == 403
    assert status(tok("write", public.id), "read", None) == 403
    assert status(admin, "write", private) == 200
    assert status(admin, "read", None) == 404
    assert status(admin, "write", frozen) == 403
    assert status(tok("write", frozen.id), "read", frozen) == 200
    with pytest.raises(ApiError):
        require_admin(tok("write", private.id))
    assert require_admin(admin) is admin


# -- catalog ------------------------------------------------------------------------------


def test_catalog_identity_and_paths(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    try:
        rec = catalog.create("Team", "Repo", default_branch="trunk")
        assert rec.path == tmp_path / "repos" / rec.id[:2] / f"{rec.id}.sqlite"
        assert rec.head_ref == "refs/heads/trunk"
        assert catalog.get("team", "repo") == rec  # case-insensitive lookup, case kept
        assert rec.full_name == "Team/Repo"
        with pytest.raises(RepoExists):
            catalog.create("TEAM", "REPO")
        catalog.note_push(rec.id, rec.created_at + 5, 100, 3)
        catalog.note_push(rec.id, rec.created_at + 1, 120, 4)  # older time: not moved back
        after = catalog.get_by_id(rec.id)
        assert after is not None
        assert after.last_push_at == rec.created_at + 5 and after.size_bytes == 120
        assert catalog.delete(rec.id) and not catalog.delete(rec.id)
        assert catalog.get("team", "repo") is None
    finally:
        catalog.close()


def test_catalog_cursor_is_stable_and_checked(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    try:
        for i in range(7):
            catalog.create("ns", f"r{i}")
        page, cursor = catalog.list_page("ns", limit=3, sort="name")
        assert [r.name for r in page] == ["r0", "r1", "r2"] and cursor
        catalog.create("ns", "r00")  # sorts before the cursor: does not shift later pages
        page2, cursor2 = catalog.list_page("ns", limit=3, sort="name", cursor=cursor)
        assert [r.name for r in page2] == ["r3", "r4", "r5"]
        page3, cursor3 = catalog.list_page("ns", limit=3, sort="name", cursor=cursor2)
        assert [r.name for r in page3] == ["r6"] and cursor3 is None
        with pytest.raises(BadCursor):
            catalog.list_page("ns", sort="created_at", cursor=cursor)
        with pytest.raises(BadCursor):
            catalog.list_page("ns", cursor="bm90IGpzb24")
        assert [r.name for r in catalog.list_page("ns", search="_")[0]] == []  # LIKE wildcards escaped
    finally:
        catalog.close()
