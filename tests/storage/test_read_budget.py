"""A read-API request never holds a blob larger than the memory budget: it gets the
MEMORY_LIMIT error (SPEC's error shape, 507) instead of growing the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitserver.app import _as_api_error
from storage.errors import MemoryLimitExceeded
from storage.model import ObjType
from storage.repo_store import RepoStore
from storage.treeview import read_blob


def test_a_blob_over_the_budget_is_refused_with_memory_limit(tmp_path: Path) -> None:
    store = RepoStore.create(tmp_path / "r.sqlite")
    try:
        big, small = store.write_objects([(ObjType.BLOB, b"x" * 4096), (ObjType.BLOB, b"tiny\n")])
        assert read_blob(store, small, limit=1024) == b"tiny\n"
        assert read_blob(store, big) == b"x" * 4096  # the default budget is far larger
        with pytest.raises(MemoryLimitExceeded, match="4096 bytes"):
            read_blob(store, big, limit=1024)
    finally:
        store.close()
    error = _as_api_error(MemoryLimitExceeded("too big"))
    assert error.code == "MEMORY_LIMIT" and error.status == 507
