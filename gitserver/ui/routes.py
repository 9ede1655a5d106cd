"""The ``/ui`` sub-application: routing, sessions on each request, HTML error pages.

Rules:
- Paths (after ``/ui``): ``/`` home; ``/-/login``, ``/-/logout``, ``/-/static/<file>``
  (``-`` cannot start a namespace name, so these never shadow a repo); ``/{ns}`` the
  namespace; ``/{ns}/{name}`` the repo, with ``/tree``, ``/blob``, ``/raw``, ``/log``,
  ``/commit``, ``/timeline`` (revision and path in the query string, so branch names
  with slashes need no escaping rules) and ``POST /fork``.
- The session cookie is read on every request and its token verified (``session.load``).
- Every POST needs a same-origin ``Origin`` (when the browser sends one) and the
  session's CSRF value (login: the ``gs_login`` double-submit cookie).
- Errors are HTML pages with the status the API would give; a 401 on a GET sends the
  browser to the login page with ``next`` set to where it was going.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from gitserver.errors import ApiError, forbidden
from gitserver.ui import session, static, views_auth, views_ns, views_repo, views_timeline
from gitserver.ui.context import Ctx, Redirect, html_response, redirect_response
from gitserver.ui.html import page, render, url
from gitserver.web import Handler, Request, Response, Router, Send

if TYPE_CHECKING:
    from gitserver.services import Services

PREFIX = "/ui"
UiHandler = Callable[[Ctx], Awaitable[Response]]


class UiApp:
    """Serves ``/ui`` and everything under it."""

    def __init__(self, services: Services, api: Router) -> None:
        self.s = services
        self.api = api
        r = Router()
        r.add("GET", "/", cast(Handler, views_auth.home))
        r.add("GET", "/-/login", cast(Handler, views_auth.login_page))
        r.add("POST", "/-/login", cast(Handler, views_auth.login))
        r.add("POST", "/-/logout", cast(Handler, views_auth.logout))
        r.add("GET", "/-/static/{file}", cast(Handler, static.serve))
        r.add("GET", "/{ns}", cast(Handler, views_ns.namespace))
        r.add("GET", "/{ns}/{name}", cast(Handler, views_repo.overview))
        r.add("GET", "/{ns}/{name}/tree", cast(Handler, views_repo.tree))
        r.add("GET", "/{ns}/{name}/blob", cast(Handler, views_repo.blob))
        r.add("GET", "/{ns}/{name}/raw", cast(Handler, views_repo.raw))
        r.add("GET", "/{ns}/{name}/log", cast(Handler, views_repo.log))
        r.add("GET", "/{ns}/{name}/commit", cast(Handler, views_repo.commit))
        r.add("POST", "/{ns}/{name}/fork", cast(Handler, views_repo.fork))
        r.add("GET", "/{ns}/{name}/timeline", cast(Handler, views_timeline.timeline))
        self.router = r

    async def __call__(self, request: Request, send: Send) -> None:
        if request.path == PREFIX:
            await redirect_response(PREFIX + "/").send(send)
            return
        response = await self._respond(request)
        await response.send(send)

    async def _respond(self, request: Request) -> Response:
        cookies = session.parse_cookies(request.headers.get("cookie"))
        ctx = Ctx(request, self.s, self.api, None, cookies)
        try:
            sid = cookies.get(session.COOKIE)
            if sid:
                ctx.session = await self.s.thread(session.load, self.s.kv, self.s.tokens, sid)
            if ctx.session is not None:
                request.state["token_id"] = ctx.session.token.id
            sub = request.path[len(PREFIX) :] or "/"
            method = "GET" if request.method == "HEAD" else request.method
            handler, params = self.router.resolve(method, sub)
            request.params = params
            if method == "POST":
                _check_origin(request)
            return await cast(UiHandler, handler)(ctx)  # the router only stores it
        except Redirect as r:
            return redirect_response(r.location, r.headers)
        except ApiError as exc:
            if exc.status == 401 and request.method in ("GET", "HEAD"):
                query = request.scope.get("query_string", b"").decode("latin-1")
                target = request.path + ("?" + query if query else "")
                return redirect_response(url(["ui", "-", "login"], {"next": target}))
            return error_page(ctx, exc)


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:  # old browsers send none; the CSRF value still guards the form
        return
    host = request.headers.get("host", "")
    scheme = request.scope.get("scheme", "http")
    if origin != f"{scheme}://{host}":
        raise forbidden("cross-origin form submission refused")


def error_page(ctx: Ctx, exc: ApiError) -> Response:
    body = render(
        '<h1>{status} {code}</h1><p class="flash">{message}</p><p><a href="/ui/">Home</a></p>',
        status=exc.status,
        code=exc.code,
        message=exc.message,
    )
    # no WWW-Authenticate: a browser would pop up its Basic dialog instead of our login page
    headers = [h for h in exc.headers if h[0] != b"www-authenticate"]
    return html_response(exc.status, page(f"{exc.status}", body, who=views_auth.who(ctx)), headers)
