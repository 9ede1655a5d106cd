"""The namespace view: a page of repos with size, last push and fork parent; search, sort, paging.

Rules: admin only (listing is a control-plane call, as in the API); reads the catalog's
figures (kept current by pushes), never wakes a repo actor. Paging uses the catalog's
opaque keyset cursor, carried in the URL, so pages are shareable.
"""

from __future__ import annotations

from gitserver.auth import require_admin
from gitserver.catalog import SORTS, BadCursor, RepoRecord
from gitserver.clock import rfc3339
from gitserver.errors import invalid_input
from gitserver.names import check_namespace
from gitserver.ui.context import Ctx, html_response
from gitserver.ui.html import Html, human_size, join, page, render, url
from gitserver.ui.views_auth import who
from gitserver.web import Response

PAGE = 25


def when(us: int | None) -> str:
    """A stored time for people: ``2026-11-27 15:04:05 UTC`` (or ``never``)."""
    text = rfc3339(us)
    return "never" if text is None else text[:19].replace("T", " ") + " UTC"


async def namespace(ctx: Ctx) -> Response:
    require_admin(ctx.session.token if ctx.session else None)
    ns = check_namespace(ctx.request.params["ns"])
    q = ctx.query
    search = q.get("search", "").strip()
    sort = q.get("sort") or "name"
    if sort not in SORTS:
        raise invalid_input(f"sort must be one of {', '.join(SORTS)}")
    cursor = q.get("cursor") or None
    catalog = ctx.services.catalog
    try:
        records, next_cursor = await ctx.services.thread(
            lambda: catalog.list_page(
                ns, limit=PAGE, cursor=cursor, search=search or None, sort=sort, descending=sort != "name"
            )
        )
    except BadCursor:
        raise invalid_input("this page link is no longer valid") from None
    parents: dict[str, RepoRecord | None] = {}
    for r in records:
        if r.forked_from and r.forked_from not in parents:
            parents[r.forked_from] = await ctx.services.thread(catalog.get_by_id, r.forked_from)
    rows = join(_row(r, parents.get(r.forked_from) if r.forked_from else None) for r in records)
    if not records:
        rows = render(
            '<tr><td colspan="5" class="muted">No repositories{0}.</td></tr>',
            f" matching “{search}”" if search else "",
        )
    sort_options = join(
        render('<option value="{v}"{sel}>{v}</option>', v=s, sel=Html(" selected") if s == sort else Html(""))
        for s in SORTS
    )
    pager = Html("")
    if cursor or next_cursor:
        first = url(["ui", ns], {"search": search, "sort": sort})
        nxt = (
            url(["ui", ns], {"search": search, "sort": sort, "cursor": next_cursor}) if next_cursor else None
        )
        pager = render(
            '<div class="pager">{first}{next}</div>',
            first=render('<a href="{0}">« First page</a>', first) if cursor else Html(""),
            next=render('<a href="{0}" rel="next">Next page »</a>', nxt) if nxt else Html(""),
        )
    body = render(
        """<h1>Repositories in {ns}</h1>
<div class="box"><div class="head">
<form class="inline" method="get" action="{action}">
<input type="search" name="search" value="{search}" placeholder="Find a repository…">
<label>Sort <select name="sort" data-autosubmit>{sort_options}</select></label>
<button type="submit">Search</button></form></div>
<table class="list" id="repos"><thead><tr><th>Name</th><th>Fork of</th><th class="num">Size</th>
<th class="num">Objects</th><th>Last push</th></tr></thead><tbody>{rows}</tbody></table>{pager}</div>""",
        ns=ns,
        action=url(["ui", ns]),
        search=search,
        sort_options=sort_options,
        rows=rows,
        pager=pager,
    )
    return html_response(200, page(ns, body, who=who(ctx), crumbs=[(ns, None)]))


def _row(r: RepoRecord, parent: RepoRecord | None) -> Html:
    if parent is not None:
        fork = render('<a href="{0}">{1}</a>', url(["ui", parent.namespace, parent.name]), parent.full_name)
    elif r.forked_from:
        fork = render('<span class="muted">deleted repo</span>')
    else:
        fork = Html("")
    return render(
        '<tr><td><a href="{href}">{name}</a>{badges}<div class="muted">{desc}</div></td><td>{fork}</td>'
        '<td class="num">{size}</td><td class="num">{count}</td><td>{push}</td></tr>',
        href=url(["ui", r.namespace, r.name]),
        name=r.name,
        badges=join(
            render(' <span class="tag">{0}</span>', b)
            for b, on in (("public", r.public), ("read-only", r.read_only))
            if on
        ),
        desc=r.description,
        fork=fork,
        size=human_size(r.size_bytes),
        count=r.object_count,
        push=when(r.last_push_at),
    )
