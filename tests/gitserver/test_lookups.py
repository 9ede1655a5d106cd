"""The Git remote's lookup cache (gitserver.lookups): never stale, in-process or across processes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio

from gitserver import lookups as lookups_mod
from gitserver.catalog import Catalog
from gitserver.errors import ApiError
from gitserver.lookups import Lookups
from gitserver.tokens import TokenStore
from storage.kv_sqlite import SqliteKV


def _basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"x:{secret}".encode()).decode()


class _OpaqueKV:
    """A KV without a file version (as Redis): delegates to a SqliteKV."""

    def __init__(self, inner: SqliteKV) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def parts(tmp_path: Path) -> Any:
    catalog = Catalog(tmp_path)
    kv = SqliteKV(tmp_path / "kv.sqlite")
    tokens = TokenStore(kv)
    record = catalog.create("ns", "repo")
    info, secret = tokens.mint("read", record.id)
    yield catalog, kv, tokens, record, info, secret
    catalog.close()
    kv.close()


def _resolve(lookups: Lookups, header: str | None, ns: str = "ns", name: str = "repo") -> Any:
    return trio.run(lookups.resolve, header, ns, name)


def test_hit_after_first_lookup(parts: Any) -> None:
    catalog, _kv, tokens, record, info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    assert _resolve(lookups, _basic(secret)) == (info, record)
    assert _resolve(lookups, _basic(secret)) == (info, record)
    assert (lookups.misses, lookups.hits) == (1, 1)
    assert _resolve(lookups, None, "NS", "Repo") == (None, record)  # case-insensitive names


def test_revoked_token_refused_on_next_request(parts: Any) -> None:
    catalog, _kv, tokens, _record, info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret))
    tokens.revoke(info.id)
    with pytest.raises(ApiError) as err:
        _resolve(lookups, _basic(secret))
    assert err.value.status == 401


def test_revocation_by_another_process_is_seen(parts: Any, tmp_path: Path) -> None:
    catalog, _kv, tokens, _record, info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret))
    other = SqliteKV(tmp_path / "kv.sqlite")  # another connection, as the offline CLI's
    try:
        TokenStore(other).revoke(info.id)
    finally:
        other.close()
    with pytest.raises(ApiError):
        _resolve(lookups, _basic(secret))


def test_deleted_repo_gone_on_next_request(parts: Any, tmp_path: Path) -> None:
    catalog, _kv, tokens, record, _info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret))
    catalog.delete(record.id)
    assert _resolve(lookups, _basic(secret))[1] is None
    again = catalog.create("ns", "repo")  # same name, new repo: the old token's repo id differs
    assert _resolve(lookups, _basic(secret))[1] == again


def test_catalog_changes_by_another_process_are_seen(parts: Any, tmp_path: Path) -> None:
    catalog, _kv, tokens, record, _info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret))
    other = Catalog(tmp_path)
    try:
        other.set_default_branch(record.id, "trunk")
        assert _resolve(lookups, _basic(secret))[1].default_branch == "trunk"
        other.delete(record.id)
        assert _resolve(lookups, _basic(secret))[1] is None
    finally:
        other.close()


def test_cached_token_expires(parts: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, _kv, tokens, _record, info, secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret))
    later = info.expires_at + 1
    monkeypatch.setattr(lookups_mod, "now_us", lambda: later)
    monkeypatch.setattr("gitserver.tokens.now_us", lambda: later)
    with pytest.raises(ApiError):
        _resolve(lookups, _basic(secret))


def test_kv_without_version_verifies_every_time(parts: Any) -> None:
    catalog, kv, _tokens, _record, _info, _secret = parts
    tokens = TokenStore(_OpaqueKV(kv))  # type: ignore[arg-type]
    record = catalog.create("ns", "other")
    info, secret = tokens.mint("read", record.id)
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    _resolve(lookups, _basic(secret), "ns", "other")
    _resolve(lookups, _basic(secret), "ns", "other")
    assert lookups.hits == 0
    tokens.revoke(info.id)
    with pytest.raises(ApiError):
        _resolve(lookups, _basic(secret), "ns", "other")


def test_bad_credentials_are_401(parts: Any) -> None:
    catalog, _kv, tokens, _record, _info, _secret = parts
    lookups = Lookups(tokens, catalog, trio.CapacityLimiter(2))
    for header in ("Basic !!!", _basic("gs_" + "x" * 40), "Digest abc"):
        with pytest.raises(ApiError) as err:
            _resolve(lookups, header)
        assert err.value.status == 401
