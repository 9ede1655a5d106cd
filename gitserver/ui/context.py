"""What every UI view gets: the request, the services, the caller's session, and responses.

Rules:
- ``Ctx.session`` is the live session (token verified on this request) or None. Views
  ask ``ctx.repo(ns, name)`` for a repo they may read: it applies the same decision as
  the API (``gitserver.auth.require_repo``), public repos included.
- Every UI response carries a strict Content-Security-Policy (no inline script, no
  third-party origin), ``nosniff``, ``Referrer-Policy: same-origin`` (``no-referrer`` would make browsers send ``Origin: null`` on our own forms) and ``frame-ancestors 'none'``; HTML
  pages are ``no-store`` because they show private content.
- ``Redirect`` is raised by views (after a POST, or to the login page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from gitserver.auth import require_repo
from gitserver.catalog import RepoRecord
from gitserver.errors import ApiError, invalid_input
from gitserver.ui.html import Html
from gitserver.ui.session import Session
from gitserver.web import Request, Response

if TYPE_CHECKING:
    from gitserver.actors import RepoActor
    from gitserver.services import Services
    from gitserver.web import Router

FORM_LIMIT = 16 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class Redirect(Exception):  # control flow, not an error
    def __init__(self, location: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(location)
        self.location = location
        self.headers = headers or []


def html_response(status: int, body: Html, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(
        status,
        body.encode("utf-8"),
        [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,
            *(headers or []),
        ],
    )


def redirect_response(location: str, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(303, b"", [(b"location", location.encode()), *SECURITY_HEADERS, *(headers or [])])


@dataclass
class Ctx:
    request: Request
    services: Services
    api: Router
    session: Session | None
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def secure(self) -> bool:
        return self.request.scope.get("scheme") == "https" or self.services.settings.tls_cert is not None

    @property
    def query(self) -> dict[str, str]:
        return self.request.query

    async def form(self) -> dict[str, str]:
        """The urlencoded POST body; INVALID_INPUT for anything else."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise invalid_input("forms must be application/x-www-form-urlencoded")
        raw = await self.request.body(FORM_LIMIT)
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise invalid_input("form is not UTF-8") from None

    async def repo(self, ns: str, name: str, need: str = "read") -> RepoRecord:
        """The repo ``ns/name`` if the caller may ``need`` it; 401/403/404 ApiError otherwise."""
        what = f"{ns}/{name}"
        self.request.state["repo"] = what
        record = await self.services.thread(self.services.catalog.get, ns, name)
        return require_repo(self.session.token if self.session else None, need, record, what)

    def actor(self, record: RepoRecord) -> RepoActor:
        return self.services.host.actor(record.id, record.path)


def not_allowed(method: str) -> ApiError:
    return ApiError("INVALID_INPUT", f"method {method} not allowed here", status=405)
