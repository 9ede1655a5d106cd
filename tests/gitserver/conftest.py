"""Fixtures for the gitserver API tests.

The real server comes from ``tests.helpers.run_server`` (the ``server`` fixture in
tests/conftest.py: one ``gitserver serve`` subprocess per module, admin token set through
``GITSERVER_ADMIN_TOKEN``). Here: an httpx client on its API, and unique names so tests
sharing a server never collide.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server

_counter = itertools.count()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """An httpx client on ``{base}/api/v1`` authenticated with the admin token."""
    with httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def anon(server: Server) -> Iterator[httpx.Client]:
    """An httpx client on the server's root, without credentials."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A name no other test in this process uses."""
    return f"r{os.getpid()}-{next(_counter)}"


def create(api: httpx.Client, ns: str, name: str, **fields: object) -> dict:
    resp = api.post(f"/namespaces/{ns}/repos", json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def error_code(resp: httpx.Response) -> str:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["code"]
