"""Login, logout and the home page.

Rules:
- ``GET /ui/-/login`` shows a token form and sets a fresh ``gs_login`` cookie whose
  value the form repeats (double-submit CSRF for the one form that has no session yet).
- ``POST /ui/-/login`` checks that pair, verifies the token and starts a session
  (``gitserver.ui.session``); a bad token re-shows the form with 401. ``next`` is only
  followed when it is a path under ``/ui/`` (no open redirect).
- ``POST /ui/-/logout`` (CSRF-checked) forgets the session server-side and clears the cookie.
- Home: an admin chooses a namespace; a repo token goes straight to its repo.
"""

from __future__ import annotations

from gitserver.errors import forbidden
from gitserver.tokens import ADMIN_REPO
from gitserver.ui import session
from gitserver.ui.context import Ctx, Redirect, html_response
from gitserver.ui.html import Html, page, render, url
from gitserver.web import Response


def who(ctx: Ctx) -> Html:
    """The header's right side: who is logged in, and a logout button."""
    if ctx.session is None:
        return render('<a href="/ui/-/login">Log in</a>')
    token = ctx.session.token
    label = "admin" if token.scope == "admin" else f"{token.scope} token"
    return render(
        '<span class="muted" title="token id {id}">{label} · {id}</span>'
        '<form method="post" action="/ui/-/logout"><input type="hidden" name="csrf" value="{csrf}">'
        '<button type="submit">Log out</button></form>',
        id=token.id,
        label=label,
        csrf=ctx.session.csrf,
    )


def csrf_field(ctx: Ctx) -> Html:
    return render('<input type="hidden" name="csrf" value="{0}">', ctx.session.csrf if ctx.session else "")


async def require_csrf(ctx: Ctx) -> dict[str, str]:
    """The POSTed form, once its CSRF value matches the session's; 403 otherwise."""
    form = await ctx.form()
    if ctx.session is None or not session.same(form.get("csrf"), ctx.session.csrf):
        raise forbidden("the form is stale or forged (CSRF check failed); reload the page")
    return form


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/ui/") and not value.startswith("/ui//") and "\\" not in value:
        return value
    return "/ui/"


def _login_form(ctx: Ctx, next_url: str, message: str = "", status: int = 200) -> Response:
    nonce = session.new_secret()
    body = render(
        """<div class="login box"><div class="head"><strong>Log in with a token</strong></div>
<form method="post" action="/ui/-/login" class="pad">
{flash}<label for="token">Access token (<code>gs_…</code>): an admin token, or a repository's read/write token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required>
<input type="hidden" name="login_nonce" value="{nonce}">
<input type="hidden" name="next" value="{next}">
<button class="primary" type="submit">Log in</button>
<p class="muted">The token is checked on every page and kept on the server; your browser only
holds a session cookie, which logging out invalidates.</p>
</form></div>""",
        flash=render('<p class="flash">{0}</p>', message) if message else Html(""),
        nonce=nonce,
        next=next_url,
    )
    cookie = session.cookie_header(session.LOGIN_COOKIE, nonce, secure=ctx.secure, max_age=1800)
    return html_response(status, page("Log in", body, who=Html("")), [cookie])


async def login_page(ctx: Ctx) -> Response:
    return _login_form(ctx, _safe_next(ctx.query.get("next")))


async def login(ctx: Ctx) -> Response:
    form = await ctx.form()
    next_url = _safe_next(form.get("next"))
    if not session.same(form.get("login_nonce"), ctx.cookies.get(session.LOGIN_COOKIE)):
        return _login_form(ctx, next_url, "The login form expired; please try again.", 403)
    secret = form.get("token", "").strip()
    s = ctx.services
    created = await s.thread(session.create, s.kv, s.tokens, secret) if secret else None
    if created is None:
        return _login_form(ctx, next_url, "That token is invalid, expired or revoked.", 401)
    session_id, sess = created
    ctx.request.state["token_id"] = sess.token.id
    if next_url == "/ui/" and sess.token.repo != ADMIN_REPO:
        record = await s.thread(s.catalog.get_by_id, sess.token.repo)
        if record is not None:
            next_url = url(["ui", record.namespace, record.name])
    raise Redirect(
        next_url,
        [
            session.cookie_header(session.COOKIE, session_id, secure=ctx.secure, max_age=session.SESSION_TTL),
            session.cookie_header(session.LOGIN_COOKIE, "", secure=ctx.secure, max_age=0),
        ],
    )


async def logout(ctx: Ctx) -> Response:
    await require_csrf(ctx)
    sid = ctx.cookies.get(session.COOKIE, "")
    await ctx.services.thread(session.destroy, ctx.services.kv, sid)
    raise Redirect("/ui/-/login", [session.cookie_header(session.COOKIE, "", secure=ctx.secure, max_age=0)])


async def home(ctx: Ctx) -> Response:
    if ctx.session is None:
        raise Redirect("/ui/-/login")
    token = ctx.session.token
    if token.repo != ADMIN_REPO:
        record = await ctx.services.thread(ctx.services.catalog.get_by_id, token.repo)
        if record is not None:
            raise Redirect(url(["ui", record.namespace, record.name]))
    ns = ctx.query.get("ns", "").strip()
    if ns:
        raise Redirect(url(["ui", ns]))
    body = render(
        """<h1>Namespaces</h1>
<div class="box"><div class="head">Open a namespace</div>
<form class="inline" method="get" action="/ui/" class="pad">
<input type="text" name="ns" placeholder="namespace" required autofocus>
<button type="submit">Open</button></form></div>"""
    )
    return html_response(200, page("Home", body, who=who(ctx)))
