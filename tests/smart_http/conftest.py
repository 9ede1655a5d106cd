"""Fixtures for smart_http tests: a dulwich-backed repository and a hypercorn(trio)
server on 127.0.0.1 that routes ``/<name>.git/...`` to ``smart_http.asgi.serve_git``."""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from smart_http.asgi import serve_git
from storage.model import PushContext
from tests.smart_http.dulwich_backend import DulwichRepository

_ROUTE = re.compile(
    r"^/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/(?P<action>info/refs|git-upload-pack|git-receive-pack)$"
)


@dataclass
class GitHttpServer:
    root: Path
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    pushes: list[PushContext] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def create(self, name: str) -> None:
        DulwichRepository.create(str(self.root / f"{name}.git"))

    def open(self, name: str) -> DulwichRepository:
        return DulwichRepository(str(self.root / f"{name}.git"))

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        match = _ROUTE.match(scope["path"])
        if match is None or not (self.root / f"{match['name']}.git").is_dir():
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        service = query.get("service", [None])[0]
        self.requests.append((scope["method"], scope["path"]))
        path = str(self.root / f"{match['name']}.git")

        @asynccontextmanager
        async def open_repo(write: bool) -> AsyncIterator[DulwichRepository]:
            with DulwichRepository(path, self.pushes) as repo:
                yield repo

        await serve_git(
            scope,
            receive,
            send,
            action=match["action"],
            service=service,
            open_repo=open_repo,
            push_context=PushContext(token_id="test-token"),
            limiter=trio.CapacityLimiter(4),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def git_http(tmp_path: Path) -> AsyncIterator[GitHttpServer]:
    server = GitHttpServer(tmp_path / "srv")
    server.root.mkdir()
    server.port = _free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{server.port}"]
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(serve, server.app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        yield server
        stop.set()
