"""The ASGI bridge hands the driver the request body in batches gathered in the event
loop (smart_http.asgi module rules): a push whose body comes in many tiny messages works
and costs few thread crossings, read-ahead stays bounded, and a stall after some data is
still cut off (after that data is read)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from smart_http import asgi
from smart_http.asgi import BATCH_MAX, BodyTimeout, _BodyBridge, serve_git
from smart_http.pktline import pkt
from tests.smart_http.dulwich_backend import DulwichRepository
from tests.smart_http.test_drivers import bare, git, lines  # noqa: F401 (fixture)

Message = dict[str, Any]


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _push_body(source: Path) -> bytes:
    """A receive-pack request creating refs/heads/main from ``source``'s main, with its pack."""
    head = git("rev-parse", "main", cwd=source).strip()
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs", "-q"],
        cwd=source,
        input=b"main\n",
        capture_output=True,
        check=True,
    ).stdout
    return pkt(f"{'0' * 40} {head} refs/heads/main\0report-status\n".encode()) + b"0000" + pack


async def _serve_push(repo_path: Path, receive: Callable[[], Any], send: Callable[[Message], Any]) -> None:
    """``serve_git`` for one receive-pack POST into the dulwich repository at ``repo_path``."""
    DulwichRepository.create(str(repo_path))

    @asynccontextmanager
    async def open_repo(write: bool) -> AsyncIterator[DulwichRepository]:
        with DulwichRepository(str(repo_path)) as r:
            yield r

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"application/x-git-receive-pack-request")],
    }
    await serve_git(
        scope,
        receive,
        send,
        action="git-receive-pack",
        service=None,
        open_repo=open_repo,
        push_context=None,
        limiter=trio.CapacityLimiter(2),
    )


async def test_push_in_tiny_pieces_is_stored_with_few_crossings(
    tmp_path: Path,
    bare: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = _push_body(bare)
    chunks = _pieces(body, 7)
    assert len(chunks) > 100

    async def receive() -> Message:
        if chunks:
            data = chunks.pop(0)
            return {"type": "http.request", "body": data, "more_body": bool(chunks)}
        await trio.sleep_forever()
        raise AssertionError

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    crossings = 0
    real_run = trio.from_thread.run

    def counting_run(fn: Callable[..., Any], *args: Any) -> Any:
        nonlocal crossings
        crossings += 1
        return real_run(fn, *args)

    monkeypatch.setattr(asgi.trio.from_thread, "run", counting_run)
    await _serve_push(tmp_path / "t.git", receive, send)
    assert sent[0]["status"] == 200
    report = lines(b"".join(m.get("body", b"") for m in sent[1:]))
    assert report[:2] == [b"unpack ok\n", b"ok refs/heads/main\n"], report
    assert crossings <= 6, crossings  # one per batch (the whole body) and per response piece
    with DulwichRepository(str(tmp_path / "t.git")) as r:
        assert [ref.name for ref in r.list_refs() if ref.name == "refs/heads/main"] == ["refs/heads/main"]


async def test_disconnect_mid_push_stores_nothing(tmp_path: Path, bare: Path) -> None:  # noqa: F811
    body = _push_body(bare)
    chunks = _pieces(body[: len(body) // 2], 7)

    async def receive() -> Message:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    with trio.fail_after(10):
        await _serve_push(tmp_path / "t.git", receive, send)
    with DulwichRepository(str(tmp_path / "t.git")) as r:
        assert r.list_refs() == []


async def test_read_ahead_is_bounded() -> None:
    piece = b"x" * 65536
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += len(piece)
        await trio.lowlevel.checkpoint()
        return {"type": "http.request", "body": piece, "more_body": True}

    async def send(message: Message) -> None:
        raise AssertionError

    bridge = _BodyBridge(receive, send, "x", False, timeout=5.0)
    ahead: list[int] = []

    def reader() -> None:
        consumed = 0
        for _ in range(40):
            consumed += len(bridge.read(100_000))
            ahead.append(received - consumed)

    await trio.to_thread.run_sync(reader)
    assert max(ahead) <= BATCH_MAX + len(piece)
    assert received < 40 * 100_000 + BATCH_MAX + len(piece)


async def test_stall_after_some_data_reads_the_data_then_times_out() -> None:
    parts = [b"a" * 10, b"b" * 10, b"c" * 10]

    async def receive() -> Message:
        if parts:
            return {"type": "http.request", "body": parts.pop(0), "more_body": True}
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        raise AssertionError

    bridge = _BodyBridge(receive, send, "x", False, timeout=0.2)
    got: list[bytes] = []

    def reader() -> None:
        got.append(bridge.read(1 << 20))
        with pytest.raises(BodyTimeout):
            bridge.read(1 << 20)

    with trio.fail_after(5):
        await trio.to_thread.run_sync(reader)
    assert got == [b"a" * 10 + b"b" * 10 + b"c" * 10]
