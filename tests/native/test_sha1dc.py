"""Collision-detecting SHA-1 (native/collision.py, native/src/sha1dc.c, native/sha1dc_pure.py):
the first SHAttered file is refused by both implementations, ordinary data hashes as plain
SHA-1 with no false alarm, and the generated tables match their generator."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from native import collision, sha1dc_gen, sha1dc_pure

SHATTERED = Path(__file__).resolve().parents[3] / "shared" / "data" / "shattered-1.pdf"
SHATTERED_SHA1 = "38762cf7f55934b34d179ae6a4c80cadccbb7f0a"

needs_c = pytest.mark.skipif(native.cext is None, reason="C extension not built")


@pytest.fixture(scope="module")
def shattered() -> bytes:
    if not SHATTERED.exists():
        pytest.skip(f"{SHATTERED} not present")
    return SHATTERED.read_bytes()


@needs_c
def test_c_refuses_shattered(shattered: bytes) -> None:
    with pytest.raises(collision.CollisionDetected) as info:
        collision.sha1(shattered)
    assert info.value.digest.hex() == SHATTERED_SHA1
    assert isinstance(info.value, native.NativeError)


@needs_c
def test_c_refuses_shattered_fed_in_odd_pieces(shattered: bytes) -> None:
    h = collision.Sha1DC()
    for i in range(0, len(shattered), 1000):
        h.update(shattered[i : i + 1000])
    with pytest.raises(collision.CollisionDetected):
        h.digest()


def test_pure_twin_refuses_shattered(shattered: bytes) -> None:
    digest, hit = sha1dc_pure.sha1dc(shattered)
    assert hit and digest.hex() == SHATTERED_SHA1


def test_only_the_collision_blocks_matter(shattered: bytes) -> None:
    """The prefix up to the two near-collision blocks (offset 192..320) is innocent; cutting
    the second block off removes the alarm."""
    assert sha1dc_pure.sha1dc(shattered[:256]) == (hashlib.sha1(shattered[:256]).digest(), False)
    assert sha1dc_pure.sha1dc(shattered[:320])[1] is True


@needs_c
@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000))
def test_c_matches_sha1_on_ordinary_data(data: bytes) -> None:
    assert collision.sha1(data) == hashlib.sha1(data).digest()
    assert collision.object_id(3, data) == native.pure.object_id(3, data)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=700))
def test_pure_matches_sha1_on_ordinary_data(data: bytes) -> None:
    assert sha1dc_pure.sha1dc(data) == (hashlib.sha1(data).digest(), False)


@needs_c
def test_c_and_pure_agree_on_random_megabyte() -> None:
    data = os.urandom(1 << 18)
    assert collision.sha1(data) == sha1dc_pure.sha1dc(data)[0]


def test_object_id_rejects_unknown_type() -> None:
    with pytest.raises(ValueError):
        collision.object_id(7, b"x")
    with pytest.raises(ValueError):
        sha1dc_pure.object_id_dc(0, b"x")


def test_generated_tables_are_current() -> None:
    for path, text in sha1dc_gen.outputs().items():
        assert Path(path).read_text() == text, f"{path} is stale: run python native/sha1dc_gen.py"


def test_every_dv_has_conditions_and_a_test_step() -> None:
    for name, testt, dm, conds in sha1dc_pure.DVS:
        assert testt in (58, 65), name
        assert len(dm) == 80 and len(conds) >= 16, name


@needs_c
@pytest.mark.slow
def test_c_throughput_at_least_400_mb_per_s() -> None:
    """`pytest -m slow tests/native/test_sha1dc.py` on a quiet machine (the figure is load
    dependent: 2 shared cores)."""
    data = os.urandom(64 << 20)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        collision.sha1(data)
        best = max(best, 64 / (time.perf_counter() - t))
    assert best >= 400, f"{best:.0f} MB/s (load {os.getloadavg()[0]:.1f})"
