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


# -- Real backing services (tests/services.py): Redis and an S3-compatible server.
# Started once per session on free 127.0.0.1 ports; a missing binary FAILS the tests.


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a private redis-server (no persistence)."""
    from contextlib import ExitStack

    from tests.services import ServiceUnavailable, redis_server

    with ExitStack() as stack:
        try:
            service = stack.enter_context(redis_server(tmp_path_factory.mktemp("redis")))
        except ServiceUnavailable as exc:
            missing = str(exc)
        else:
            missing = ""
        if missing:  # outside the except block, so the report is just this message
            pytest.fail(f"Redis is required for this test: {missing}", pytrace=False)
        yield service.url


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private ``weed mini`` S3 server (``tests.services.S3Service``) with signature checks
    on; its credentials are exported in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the
    session, so boto3's standard chain finds them."""
    from contextlib import ExitStack

    from tests.services import ServiceUnavailable, seaweedfs_s3

    with ExitStack() as stack:
        try:
            service = stack.enter_context(seaweedfs_s3(tmp_path_factory.mktemp("s3")))
        except ServiceUnavailable as exc:
            missing = str(exc)
        else:
            missing = ""
        if missing:  # outside the except block, so the report is just this message
            pytest.fail(f"an S3 server (weed mini) is required for this test: {missing}", pytrace=False)
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in service.env.items():
            mp.setenv(name, value)
        yield service


@pytest.fixture(scope="session")
def s3_blobstore_url(s3_service: object) -> str:
    """``s3://BUCKET/PREFIX?endpoint=...&region=...`` (the --blob-store syntax) on the
    session's S3 server; the credentials are in the environment (see ``s3_service``)."""
    from tests.services import S3Service

    assert isinstance(s3_service, S3Service)
    return s3_service.url("session")
