"""Fixtures for tests/native: both implementations, and real packs from the git CLI.

Rules: every test takes ``impl`` and so runs against native.pure and native.cext; when the
C extension is not built the "c" runs FAIL (they never skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import native
from tests.native.native_testlib import RealPack, make_repo, pack_repo


def _cext() -> ModuleType:
    if native.cext is None:
        pytest.fail("C extension native._native is not built (pip install -e . or native/build_native.py)")
    return native.cext


@pytest.fixture(params=["python", "c"], scope="session")
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    yield native.pure if request.param == "python" else _cext()


@pytest.fixture(scope="session")
def cext() -> ModuleType:
    return _cext()


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("native-repos")
    make_repo(root / "small", big=False)
    make_repo(root / "big", big=True)
    return {"small": root / "small", "big": root / "big"}


@pytest.fixture(scope="session")
def small_pack(repos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> RealPack:
    return pack_repo(repos["small"], tmp_path_factory.mktemp("small-pack"), ofs_delta=True)


@pytest.fixture(scope="session", params=["ofs", "ref"])
def real_pack(
    request: pytest.FixtureRequest, repos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> RealPack:
    return pack_repo(repos["big"], tmp_path_factory.mktemp("big-pack"), ofs_delta=request.param == "ofs")
