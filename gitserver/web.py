"""A minimal JSON-over-ASGI toolkit: request view, response, body limit, path router.

Rules:
- No framework: raw ASGI (HTTP scopes only). A handler is
  ``async def handler(request: Request) -> Response`` and raises ``ApiError`` for errors.
- Request bodies are read lazily and capped: past the route's limit the read stops and
  ``413 TOO_LARGE`` is raised, whatever ``Content-Length`` claimed.
- Routes are patterns of literal and ``{param}`` segments, matched segment by segment on
  the percent-decoded path; a path that matches a pattern for another method is 405
  (code ``INVALID_INPUT``, with ``Allow``), no pattern at all is 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from gitserver.errors import ApiError, invalid_input, not_found

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(status: int, data: object, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, [(b"content-type", b"application/json"), *(headers or [])])


def error_response(error: ApiError) -> Response:
    return Response(error.status, error.body(), [(b"content-type", b"application/json"), *error.headers])


def git_error_response(error: ApiError) -> Response:
    """The error for a git client on the Git remote: the message as ``text/plain``, which
    git prints as ``remote: <message>`` before its own ``fatal:`` line (git shows no other
    kind of error body), with the same status and headers as the JSON form."""
    body = error.message.encode() + b"\n"
    return Response(error.status, body, [(b"content-type", b"text/plain; charset=utf-8"), *error.headers])


DRAIN_FACTOR = 16  # an oversized body up to 16x the cap is read to its end before the 413


class Request:
    """One HTTP request: method, decoded path, query, headers, and a capped body."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: dict[str, str] = dict(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.params: dict[str, str] = {}
        self.state: dict[str, Any] = {}  # per-request facts for the access log (repo, ...)

    async def body(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes; raises ApiError(TOO_LARGE) beyond.

        Before refusing, the rest of a moderately oversized body is read and dropped
        (up to ``DRAIN_FACTOR`` times the limit), so the client, still sending, gets to
        read the 413 instead of seeing its connection reset."""
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._drain(int(declared), limit * DRAIN_FACTOR)
            raise ApiError("TOO_LARGE", f"request body exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise invalid_input("client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await self._drain(None, limit * DRAIN_FACTOR - size)
                raise ApiError("TOO_LARGE", f"request body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _drain(self, declared: int | None, budget: int) -> None:
        """Read and drop the body while it fits ``budget`` bytes (``declared`` beyond it:
        don't start). Stops at the end of the body or of the budget."""
        if declared is not None and declared > budget:
            return
        while budget > 0:
            message = await self.receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def json(self, limit: int) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``); INVALID_INPUT otherwise."""
        raw = await self.body(limit)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise invalid_input("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise invalid_input("request body must be a JSON object")
        return data


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    segments: tuple[str, ...]
    handler: Handler

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not part:
                    return None
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params


class Router:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` on ``pattern`` (e.g. ``/repos/{name}``)."""
        self._routes.append(_Route(method.upper(), tuple(pattern.strip("/").split("/")), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path params for a request; raises ApiError 404 or 405."""
        handler, params, _pattern = self.resolve_route(method, path)
        return handler, params

    def resolve_route(self, method: str, path: str) -> tuple[Handler, dict[str, str], str]:
        """Like ``resolve``, plus the matched pattern (``/repos/{name}``, for metrics)."""
        parts = path.strip("/").split("/")
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                # HEAD is GET without the body (the server drops it), as HTTP says
                return route.handler, params, "/" + "/".join(route.segments)
            allowed.append(route.method)
            if route.method == "GET":
                allowed.append("HEAD")
        if allowed:
            raise ApiError(
                "INVALID_INPUT",
                f"method {method} not allowed here",
                status=405,
                headers=((b"allow", ", ".join(sorted(set(allowed))).encode()),),
            )
        raise not_found(f"no such endpoint: {path}")
