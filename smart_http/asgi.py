"""The thin ASGI (trio) bridge between HTTP and the synchronous protocol drivers.

Rules:
- The caller (gitserver) has already routed and authenticated; it passes ``action``
  ("info/refs", "git-upload-pack" or "git-receive-pack"), the ``service`` query value
  for info/refs, ``open_repo(write)`` (an async context manager yielding a
  ``GitRepository``; ``write`` is True only for a receive-pack POST), the push context
  and a ``CapacityLimiter`` for worker threads.
- The driver runs in ``trio.to_thread.run_sync``. It pulls body bytes with one
  ``trio.from_thread.run`` only when it needs more, and that crossing gathers ASGI
  messages in the event loop until ``BATCH_MAX`` bytes or the end of the body (servers
  hand over ~64 KiB or less per message; one crossing each cost a big push seconds). So
  at most one batch is read ahead of the driver, never the whole body: backpressure
  reaches the client through the server's own bounded receive queue. A body that
  arrives in pieces is read as far as it came before a timeout or disconnect is raised.
  ``Content-Encoding: gzip`` is inflated incrementally and boundedly. Response pieces
  go out with ``trio.from_thread.run(send)`` and ``more_body=True`` (a push writes a
  few: the report, and progress only when the client shows it).
- The response starts (200, git content type, no-cache headers) on the driver's first
  write; an unexpected error before that is a 500, after it the body is just ended.
- Wrong method: 405; wrong content type or encoding: 415; unknown service: 403.
- Few thread crossings on small requests: an upload-pack request's first body message is
  awaited in the event loop (under ``body_timeout``) before the driver starts, and the response start goes out
  in the same crossing as the first body piece. A v2 ``ls-refs`` or ``object-info``
  command (no progress to show) has its answer held, up to ``HOLD_MAX`` bytes, and sent
  from the event loop when the driver returns; a v2 info/refs (capabilities only, no
  refs) is built in the event loop.
- A repo that is an ``AnswerCache`` (gitserver.actors' read views) remembers such an
  answer by the exact request bytes (a whole body of at most ``REQUEST_MAX`` bytes that
  came in one message), stamped before the driver ran; a later identical request is
  answered from it in the event loop when the repo says the stamp still holds.
- ``limits`` (``smart_http.limits.GitLimits``) go to the drivers; ``body_timeout`` is
  enforced here: a client that sends no body byte for that long is cut off with
  ``BodyTimeout`` (408 when no response has started). The driver's thread then unwinds,
  so the repo's write lock (held by ``open_repo(True)`` for the whole request) is released
  and a stalled push rolls back.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

import trio

from smart_http.backend import GitRepository, ReadFn, WriteFn
from smart_http.discovery import SERVICES, advertise_refs, effective_version, protocol_version
from smart_http.errors import ProtocolError, RemoteProtocolError
from smart_http.limits import GitLimits
from smart_http.receive_pack import serve_receive_pack
from smart_http.upload_pack import serve_upload_pack
from storage.model import PushContext

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
OpenRepo = Callable[[bool], AbstractAsyncContextManager[GitRepository]]

HOLD_MAX = 256 * 1024  # bytes of a small command's answer held until the driver returns
REQUEST_MAX = 4096  # bytes of a request whose answer may be remembered
BATCH_MAX = 1 << 20  # request-body bytes gathered in the event loop per thread crossing
_SMALL_COMMANDS = (b"command=ls-refs", b"command=object-info")

NO_CACHE = [
    (b"cache-control", b"no-cache, max-age=0, must-revalidate"),
    (b"pragma", b"no-cache"),
    (b"expires", b"Fri, 01 Jan 1980 00:00:00 GMT"),
]


@runtime_checkable
class AnswerCache(Protocol):
    """Whole answers remembered by request bytes, valid while the repo is unchanged.
    Both methods are called from the event loop and must not block."""

    def answer_for(self, request: bytes) -> tuple[bytes | None, int]:
        """The remembered answer (None if none), and a stamp of the repo's state now."""
        ...

    def remember(self, request: bytes, answer: bytes, stamp: int) -> None:
        """Keep ``answer``, computed after ``stamp`` was taken, if the state still matches."""
        ...


class ClientDisconnected(RemoteProtocolError):
    """The client went away while we were reading its request."""


class BodyTimeout(RemoteProtocolError):
    """The client sent no request-body byte for ``body_timeout`` seconds."""

    http_status = 408


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode() + b"\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or []) + NO_CACHE}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _BodyBridge:
    """The driver's ReadFn and WriteFn, called from the worker thread."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        content_type: str,
        gzip: bool,
        timeout: float | None = None,
        first: Message | None = None,
        prefetched: bool = False,
    ) -> None:
        self._receive = receive
        self._timeout = timeout
        self._send = send
        self._content_type = content_type.encode()
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._pending = b""  # bytes handed over and not yet read, from ``_pos`` on
        self._pos = 0
        self._stash: Message | None = None  # a message kept back, if ``_stashed`` (``_next_batch``)
        self._stashed = False
        self._eof = False
        self._first: Message | None = first  # prefetched in the event loop (None: timed out)
        self._prefetched = prefetched
        self.held: list[bytes] | None = None  # set to [] to hold a small answer (module rules)
        self._held_size = 0
        self.started = False

    def read(self, n: int) -> bytes:
        n = max(1, n)
        while True:
            if self._pos < len(self._pending):
                data = self._pending[self._pos : self._pos + n]
                self._pos += len(data)
                return data
            if self._inflate is not None and self._inflate.unconsumed_tail:
                self._refill(self._inflate.decompress(self._inflate.unconsumed_tail, n))
                continue
            if self._eof:
                if self._inflate is not None and not self._inflate.eof:
                    raise RemoteProtocolError("request body: truncated gzip stream")
                return b""
            if self._prefetched:
                message, self._first, self._prefetched = self._first, None, False
            else:
                message = trio.from_thread.run(self._next_batch)
            if message is None:
                self._eof = True
                raise BodyTimeout(f"request body: no data for {self._timeout:g} seconds, giving up")
            if message["type"] == "http.disconnect":
                self._eof = True
                raise ClientDisconnected("client disconnected")
            raw = bytes(message.get("body", b""))
            self._eof = not message.get("more_body", False)
            if self._inflate is None:
                self._refill(raw)
            elif not self._inflate.eof:
                try:
                    self._refill(self._inflate.decompress(raw, n))
                except zlib.error as exc:
                    raise RemoteProtocolError(f"request body: bad gzip data ({exc})") from None

    def _refill(self, data: bytes) -> None:
        self._pending, self._pos = data, 0

    async def _next_batch(self) -> Message | None:
        """(event loop) One ``http.request`` message made of the messages that came until
        ``BATCH_MAX`` bytes or the end of the body (one thread crossing for many small
        messages). A timeout (None) or disconnect that ends a non-empty batch is kept
        for the next call, so the bytes before it are still read."""
        if self._stashed:
            self._stashed = False
            return self._stash
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self._next_message()
            if message is None or message["type"] != "http.request":
                if not parts:
                    return message
                self._stash, self._stashed = message, True
                return {"type": "http.request", "body": b"".join(parts), "more_body": True}
            body = message.get("body", b"")
            if body:
                parts.append(body)
                size += len(body)
            more = bool(message.get("more_body", False))
            if not more or size >= BATCH_MAX:
                return {"type": "http.request", "body": b"".join(parts), "more_body": more}

    async def _next_message(self) -> Message | None:
        """The next ASGI message, or None when none came within the body timeout."""
        if self._timeout is None:
            return await self._receive()
        with trio.move_on_after(self._timeout):
            return await self._receive()
        return None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.held is not None:
            self.held.append(bytes(data))
            self._held_size += len(data)
            if self._held_size <= HOLD_MAX:
                return
            data, self.held = b"".join(self.held), None
        trio.from_thread.run(self.send_body, data, True)

    async def send_body(self, data: bytes, more: bool) -> None:
        """(event loop) The response start if not sent yet, then ``data``. A response
        sent whole gets a Content-Length (no chunked framing: one socket write fewer)."""
        if not self.started:
            self.started = True
            headers = [(b"content-type", self._content_type), *NO_CACHE]
            if not more:
                headers.append((b"content-length", b"%d" % len(data)))
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        await self._send({"type": "http.response.body", "body": data, "more_body": more})


async def serve_git(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    action: str,
    service: str | None,
    open_repo: OpenRepo,
    push_context: PushContext | None,
    limiter: trio.CapacityLimiter | None,
    limits: GitLimits | None = None,
) -> None:
    """Serve one smart-HTTP request (see the module rules)."""
    limits = limits or GitLimits()
    method = scope.get("method", "GET")
    if action == "info/refs":
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, "method not allowed", [(b"allow", b"GET, HEAD")])
            return
        if service not in SERVICES:
            await _plain(send, 403, "dumb HTTP is not served: use a smart git client (git >= 1.6.6)")
            return
        version = protocol_version(_header(scope, b"git-protocol"))
        async with open_repo(False) as repo:
            if effective_version(service, version) == 2:  # capabilities only: no I/O
                body = advertise_refs(repo, service, version)
            else:
                body = await trio.to_thread.run_sync(advertise_refs, repo, service, version, limiter=limiter)
        headers = [
            (b"content-type", f"application/x-{service}-advertisement".encode()),
            (b"content-length", b"%d" % len(body)),
            *NO_CACHE,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if method == "HEAD" else body, "more_body": False}
        )
        return
    if action not in SERVICES:
        await _plain(send, 404, "not found")
        return
    if method != "POST":
        await _plain(send, 405, "method not allowed", [(b"allow", b"POST")])
        return
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type != f"application/x-{action}-request":
        await _plain(send, 415, f"expected Content-Type application/x-{action}-request")
        return
    encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        await _plain(send, 415, f"unsupported Content-Encoding {encoding}")
        return
    # upload-pack only: a push takes the write lock first, and a stalled one holds it
    # until ``body_timeout`` (the rule above), which its body must not bypass
    prefetch = action == "git-upload-pack"
    first = await _first_message(receive, limits.body_timeout) if prefetch else None
    bridge = _BodyBridge(
        receive,
        send,
        f"application/x-{action}-result",
        encoding != "identity",
        limits.body_timeout,
        first,
        prefetch,
    )
    cache_key: bytes | None = None  # the request bytes, when its answer may be remembered
    if action == "git-upload-pack":
        version = protocol_version(_header(scope, b"git-protocol"))
        if version == 2 and encoding == "identity" and first is not None:
            body = bytes(first.get("body", b""))
            if body[4:40].startswith(_SMALL_COMMANDS):
                bridge.held = []
                if (
                    body[4:40].startswith(b"command=ls-refs")
                    and not first.get("more_body", False)
                    and len(body) <= REQUEST_MAX
                ):
                    cache_key = body
        run: Callable[[GitRepository], object] = functools.partial(
            _run_upload, read=bridge.read, write=bridge.write, version=version, limits=limits
        )
    else:
        run = functools.partial(
            _run_receive, read=bridge.read, write=bridge.write, context=push_context, limits=limits
        )
    try:
        async with open_repo(action == "git-receive-pack") as repo:
            cache = repo if cache_key is not None and isinstance(repo, AnswerCache) else None
            stamp = 0
            if cache is not None and cache_key is not None:
                answer, stamp = cache.answer_for(cache_key)
                if answer is not None:  # no worker thread at all
                    await bridge.send_body(answer, False)
                    return
            await trio.to_thread.run_sync(run, repo, limiter=limiter)
            if cache is not None and cache_key is not None and bridge.held is not None:
                cache.remember(cache_key, b"".join(bridge.held), stamp)
    except ProtocolError as exc:
        if not bridge.started:
            await _plain(send, exc.http_status, exc.git_message)
            return
        log.info("smart_http %s: %s", action, exc)
    except Exception:
        log.exception("smart_http %s failed", action)
        if not bridge.started:
            await _plain(send, 500, "internal server error")
            return
    await bridge.send_body(b"".join(bridge.held or ()), False)


async def _first_message(receive: Receive, timeout: float | None) -> Message | None:
    """The request's first body bytes as one ``http.request`` message: messages are
    gathered while more follow and fewer than ``REQUEST_MAX`` bytes came (servers often
    send a small body, then an empty last message). None when a message took longer than
    ``timeout``; a disconnect is returned as it is."""
    parts: list[bytes] = []
    size = 0
    while True:
        message: Message | None = None
        if timeout is None:
            message = await receive()
        else:
            with trio.move_on_after(timeout):
                message = await receive()
        if message is None or message["type"] != "http.request":
            return message
        body = bytes(message.get("body", b""))
        parts.append(body)
        size += len(body)
        more = bool(message.get("more_body", False))
        if not more or size > REQUEST_MAX:
            return {"type": "http.request", "body": b"".join(parts), "more_body": more}


def _run_upload(
    repo: GitRepository, *, read: ReadFn, write: WriteFn, version: int, limits: GitLimits
) -> None:
    serve_upload_pack(repo, read, write, version=version, limits=limits)


def _run_receive(
    repo: GitRepository, *, read: ReadFn, write: WriteFn, context: PushContext | None, limits: GitLimits
) -> None:
    serve_receive_pack(repo, read, write, context, limits=limits)
