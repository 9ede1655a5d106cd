"""The ASGI application: routing, auth on the Git remote, errors and the access log.

Rules:
- Routes: ``GET /healthz``; ``/api/v1/...`` (``gitserver.api``); ``/ui/...`` (``gitserver.ui``);
  ``/git/{ns}/{repo}[.git]/(info/refs|git-upload-pack|git-receive-pack)`` handed to
  ``smart_http.asgi.serve_git`` after auth. Anything else is 404 in the SPEC error shape.
  ``/openapi.json`` is also served at the root. Errors on the Git remote go to git clients
  (User-Agent ``git/``) as ``text/plain``, which git prints as ``remote: ...``.
- Git auth: ``git-receive-pack`` (and ``info/refs?service=git-receive-pack``) needs
  ``write``; everything else on the remote needs ``read``. The repo's actor provides
  ``open_repo``; the token id goes into the ``PushContext`` so the reflog says who pushed.
  Token and catalog record come from ``gitserver.lookups`` (cached in the event loop,
  validated on every request against the catalog and KV files' versions, so a
  revocation or a deleted repo takes effect on the next request).
- Catalog bookkeeping (last push time, size figures) is not done here: it is a write
  hook of every actor (``repo_files.CatalogBookkeeping``), run before git sees the report.
- One JSON line per request on the ``gitserver.access`` logger: at, method, path, status,
  duration_ms, repo, bytes_in, bytes_out, token_id (never a secret). Errors raised before the response
  starts become SPEC error responses; later ones can only be logged.
- ``GET /metrics``: Prometheus text (``gitserver.metrics``); every request is observed
  there with its route template, status, duration and body bytes.
- Limits (docs/security.md): the Git remote gets ``GitLimits`` from the settings and the
  writer's store gets ``max_object_size``; at most ``max_client_requests`` requests per
  client IP are in flight (``/healthz`` is not counted), the next one gets ``429`` with
  ``Retry-After`` (code TOO_LARGE: the SPEC list is closed), as text for git clients.
- The lifespan protocol is acknowledged but owns nothing: the CLI opens ``Services`` and
  runs the actor host in the same nursery as hypercorn.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from gitserver import metrics
from gitserver.api import PREFIX, Api
from gitserver.auth import require_repo
from gitserver.clock import now_us, rfc3339
from gitserver.errors import ApiError, not_found
from gitserver.lookups import Lookups
from gitserver.metrics import Metrics
from gitserver.services import Services
from gitserver.ui import UiApp
from gitserver.web import (
    Message,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    error_response,
    git_error_response,
    json_response,
)
from smart_http.asgi import serve_git
from smart_http.limits import GitLimits
from storage.errors import MemoryLimitExceeded
from storage.model import PushContext

log = logging.getLogger("gitserver")
access_log = logging.getLogger("gitserver.access")

_GIT_PATH = re.compile(r"^/git/([^/]+)/([^/]+?)(?:\.git)?/(info/refs|git-upload-pack|git-receive-pack)$")
_GIT_METHOD = {"info/refs": "GET", "git-upload-pack": "POST", "git-receive-pack": "POST"}


class App:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.api = Api(services).router()
        self.metrics = Metrics()
        self.ui = UiApp(services, self.api)
        settings = services.settings
        self.git_limits = GitLimits(
            max_pack_bytes=settings.max_pack_size,
            max_ref_updates=settings.max_refs_per_push,
            max_pkt_lines=settings.max_pkt_lines,
            body_timeout=settings.body_timeout,
        )
        self._in_flight: dict[str, int] = {}  # client IP -> requests being served
        self.lookups = Lookups(services.tokens, services.catalog, services.limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        seen: dict[str, Any] = {"status": None, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            seen["bytes_in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes_out"] += len(message.get("body", b""))
            await send(message)

        request = Request(scope, counting_receive)
        try:
            with self._client_slot(request):
                await self._dispatch(request, counting_send)
        except Exception as exc:
            error = _as_api_error(exc)
            if seen["status"] is None:
                response = error_response(error)
                if _git_client_on_remote(request):
                    response = git_error_response(error)
                await response.send(counting_send)
            else:
                log.error("request failed after the response started: %r", exc)
            if error.status >= 500:
                log.exception("internal error on %s %s", request.method, request.path)
        finally:
            self.metrics.observe(
                request.state.get("route", "other"),
                request.method,
                seen["status"],
                time.monotonic() - started,
                seen["bytes_in"],
                seen["bytes_out"],
            )
            if self.s.settings.access_log:
                access_log.info(
                    json.dumps(
                        {
                            "at": rfc3339(now_us()),
                            "method": request.method,
                            "path": request.path,
                            "status": seen["status"],
                            "duration_ms": round((time.monotonic() - started) * 1000, 2),
                            "repo": request.state.get("repo"),
                            "bytes_in": seen["bytes_in"],
                            "bytes_out": seen["bytes_out"],
                            "token_id": request.state.get("token_id"),
                        }
                    )
                )

    @contextlib.contextmanager
    def _client_slot(self, request: Request) -> Iterator[None]:
        """Count the request against its client IP; raise 429 past ``max_client_requests``."""
        client = request.scope.get("client")
        if not client or request.path == "/healthz":
            yield
            return
        ip = str(client[0])
        limit = self.s.settings.max_client_requests
        if self._in_flight.get(ip, 0) >= limit:
            match = _GIT_PATH.match(request.path)
            if match:  # so a git client gets the text form, which git prints
                request.state["route"] = f"git {match.group(3)}"
            raise ApiError(
                "TOO_LARGE",
                f"too many concurrent requests from {ip} (the server's limit is {limit}); retry shortly",
                status=429,
                headers=((b"retry-after", b"1"),),
            )
        self._in_flight[ip] = self._in_flight.get(ip, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[ip] - 1
            if left:
                self._in_flight[ip] = left
            else:
                del self._in_flight[ip]

    async def _dispatch(self, request: Request, send: Send) -> None:
        path = request.path
        if path == "/openapi.json":  # also at the root, as SPEC's table spells it
            path = PREFIX + path
        if path == "/metrics":
            request.state["route"] = "/metrics"
            await self._metrics(request, send)
            return
        if path == "/healthz":
            request.state["route"] = "/healthz"
            if request.method not in ("GET", "HEAD"):
                raise ApiError("INVALID_INPUT", "use GET", status=405, headers=((b"allow", b"GET"),))
            await json_response(200, {"status": "ok"}).send(send)
            return
        if path == PREFIX or path.startswith(PREFIX + "/"):
            handler, params, pattern = self.api.resolve_route(request.method, path[len(PREFIX) :] or "/")
            request.params = params
            request.state["route"] = PREFIX + pattern
            response: Response = await handler(request)
            await response.send(send)
            return
        if path == "/ui" or path.startswith("/ui/"):  # the web UI (gitserver/ui)
            await self.ui(request, send)
            return
        match = _GIT_PATH.match(path)
        if match:
            request.state["route"] = f"git {match.group(3)}"
            await self._git(request, send, match.group(1), match.group(2), match.group(3))
            return
        raise not_found(f"no such endpoint: {path}")

    async def _metrics(self, request: Request, send: Send) -> None:
        if request.method not in ("GET", "HEAD"):
            raise ApiError("INVALID_INPUT", "use GET", status=405, headers=((b"allow", b"GET"),))
        if not metrics.authorized(request.headers.get("authorization"), self.s.settings.metrics_token):
            raise ApiError(
                "UNAUTHORIZED",
                "this endpoint needs the metrics token",
                headers=((b"www-authenticate", b"Bearer"),),
            )
        repos = await self.s.thread(self.s.catalog.count)
        body = self.metrics.render(self.s.host.statistics(), repos)
        await Response(200, body, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]).send(send)

    async def _git(self, request: Request, send: Send, ns: str, name: str, action: str) -> None:
        what = f"{ns}/{name}"
        request.state["repo"] = what
        if request.method != _GIT_METHOD[action]:
            allow = _GIT_METHOD[action]
            raise ApiError("INVALID_INPUT", f"use {allow}", status=405, headers=((b"allow", allow.encode()),))
        service = request.query.get("service") if action == "info/refs" else None
        writes = action == "git-receive-pack" or service == "git-receive-pack"
        token, record = await self.lookups.resolve(request.headers.get("authorization"), ns, name)
        request.state["token_id"] = token.id if token else None
        record = require_repo(token, "write" if writes else "read", record, what)
        actor = self.s.host.actor(record.id, record.path)
        max_object_size = self.s.settings.max_object_size

        @contextlib.asynccontextmanager
        async def open_repo(write: bool) -> AsyncIterator[Any]:
            if not write:
                async with actor.reading() as repo:
                    yield repo
                return
            async with actor.writing() as repo:
                repo.store.max_object_size = max_object_size
                yield repo

        await serve_git(
            request.scope,
            request.receive,
            send,
            action=action,
            service=service,
            open_repo=open_repo,
            push_context=PushContext(token_id=token.id if token else None, via="git"),
            limiter=self.s.limiter,
            limits=self.git_limits,
        )


def _git_client_on_remote(request: Request) -> bool:
    """A git client (git, libgit2, isomorphic-git: their User-Agent starts ``git/``) on
    the Git remote gets errors as text, which git shows; other callers get the JSON."""
    route = str(request.state.get("route", ""))
    return route.startswith("git ") and request.headers.get("user-agent", "").startswith("git/")


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, MemoryLimitExceeded):
        return ApiError("MEMORY_LIMIT", str(exc))
    return ApiError("INTERNAL_ERROR", "internal server error")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
