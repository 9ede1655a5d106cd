"""The KV contract (storage.kv.KV), run against every backend.

Adding a backend = one entry in BACKENDS: a factory taking the pytest request (to reach
service fixtures such as ``redis_url``) and a temp dir, and returning a ``Backend`` (the
store plus a way to move its clock forward for TTL tests).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.kv import KV, open_kv
from storage.kv_redis import RedisKV
from storage.kv_sqlite import SqliteKV


@dataclass
class Backend:
    kv: KV
    advance: Callable[[float], None]  # move the store's notion of "now" forward


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> Backend:
    clock = FakeClock()
    return Backend(SqliteKV(tmp / "kv.sqlite", clock=clock), clock.advance)


def _redis(request: pytest.FixtureRequest, tmp: Path) -> Backend:
    # the real server of the session; a fresh namespace per test keeps tests apart, and an
    # offset on the server's clock stands in for waiting
    skew = FakeClock()
    skew.now = 0.0
    kv = RedisKV(request.getfixturevalue("redis_url"), namespace=f"t{uuid.uuid4().hex}:", clock_offset=skew)
    return Backend(kv, skew.advance)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "sqlite": _sqlite,
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = BACKENDS[request.param](request, tmp_path)
    yield b
    b.kv.close()


def test_get_missing_is_none(backend: Backend) -> None:
    assert backend.kv.get("nope") is None


def test_set_get_overwrite(backend: Backend) -> None:
    kv = backend.kv
    kv.set("a", b"1")
    assert kv.get("a") == b"1"
    kv.set("a", b"\x00\xff binary")
    assert kv.get("a") == b"\x00\xff binary"


def test_delete_is_idempotent(backend: Backend) -> None:
    kv = backend.kv
    kv.set("a", b"1")
    assert kv.delete("a") is True
    assert kv.get("a") is None
    assert kv.delete("a") is False


def test_scan_prefix_sorted_and_limited(backend: Backend) -> None:
    kv = backend.kv
    for key in ["t/b", "t/a", "t/c", "t", "u/a", "s/z", "t/\U0001f600"]:
        kv.set(key, key.encode())
    assert [k for k, _ in kv.scan("t/")] == ["t/a", "t/b", "t/c", "t/\U0001f600"]
    assert kv.scan("t/", limit=2) == [("t/a", b"t/a"), ("t/b", b"t/b")]
    assert [k for k, _ in kv.scan("")] == sorted(["t/b", "t/a", "t/c", "t", "u/a", "s/z", "t/\U0001f600"])
    assert kv.scan("nothing/") == []


def test_scan_prefix_with_max_code_point(backend: Backend) -> None:
    kv = backend.kv
    kv.set("a\U0010ffffx", b"1")
    kv.set("b", b"2")
    assert [k for k, _ in kv.scan("a\U0010ffff")] == ["a\U0010ffffx"]


def test_ttl_expires(backend: Backend) -> None:
    kv = backend.kv
    kv.set("short", b"1", ttl=10)
    kv.set("forever", b"2")
    assert kv.get("short") == b"1"
    backend.advance(11)
    assert kv.get("short") is None
    assert kv.get("forever") == b"2"
    assert [k for k, _ in kv.scan("")] == ["forever"]
    assert kv.delete("short") is False


def test_set_replaces_ttl(backend: Backend) -> None:
    kv = backend.kv
    kv.set("k", b"1", ttl=10)
    kv.set("k", b"2")
    backend.advance(11)
    assert kv.get("k") == b"2"


def test_bad_ttl_rejected(backend: Backend) -> None:
    with pytest.raises(ValueError):
        backend.kv.set("k", b"1", ttl=0)


def test_compare_and_set(backend: Backend) -> None:
    kv = backend.kv
    assert kv.compare_and_set("k", None, b"1") is True  # create if absent
    assert kv.compare_and_set("k", None, b"x") is False  # already exists
    assert kv.compare_and_set("k", b"wrong", b"x") is False
    assert kv.get("k") == b"1"
    assert kv.compare_and_set("k", b"1", b"2") is True
    assert kv.get("k") == b"2"
    assert kv.compare_and_set("k", b"2", None) is True  # delete
    assert kv.get("k") is None


def test_compare_and_set_treats_expired_as_absent(backend: Backend) -> None:
    kv = backend.kv
    kv.set("lease", b"old-owner", ttl=5)
    backend.advance(6)
    assert kv.compare_and_set("lease", b"old-owner", b"stale") is False
    assert kv.compare_and_set("lease", None, b"new-owner", ttl=5) is True
    assert kv.get("lease") == b"new-owner"


def test_compare_and_set_is_atomic_across_threads(backend: Backend) -> None:
    kv = backend.kv
    kv.set("counter", b"0")

    def bump() -> None:
        for _ in range(50):
            while True:
                cur = kv.get("counter")
                assert cur is not None
                if kv.compare_and_set("counter", cur, str(int(cur) + 1).encode()):
                    break

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert kv.get("counter") == b"200"


def test_open_kv_url(tmp_path: Path) -> None:
    kv = open_kv(f"sqlite://{tmp_path}/sub/kv.sqlite")
    try:
        kv.set("a", b"1")
        assert kv.get("a") == b"1"
    finally:
        kv.close()
    assert (tmp_path / "sub" / "kv.sqlite").exists()
    with pytest.raises(ValueError):
        open_kv("memcached://nope")
