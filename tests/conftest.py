"""Session-wide fixtures: the real-history repository and a running gitserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, run_server


@pytest.fixture(scope="session")
def history_repo() -> Path:
    """The generator's small real-history repository (bare, cached between runs)."""
    from benchmarks.history import generate

    return generate("small")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("server"), "--idle-timeout", "2") as srv:
        yield srv
