"""The repository pages: overview and tree, file view, raw bytes, commit log, one commit, fork.

Rules:
- Revision and path live in the query string (``?rev=main&path=src/app.py``); a missing
  ``rev`` means the repo's default branch. Anything REV accepts works, ``main@{T}`` too.
- Every name, message and content goes through ``gitserver.ui.html`` or Pygments.
- ``raw`` serves bytes as ``application/octet-stream`` with ``Content-Disposition:
  attachment`` and a sandbox CSP, so a hostile HTML or SVG file never renders as a page.
- Fork (admin): the form posts to the UI, which calls the REST fork endpoint in-process
  with the session's token; when the API has no fork route the button is not shown.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gitserver.api import PREFIX as API_PREFIX
from gitserver.api import base_url
from gitserver.catalog import RepoRecord
from gitserver.errors import STATUS, ApiError, forbidden, invalid_input
from gitserver.tokens import ADMIN_REPO
from gitserver.ui import gitread
from gitserver.ui.context import SECURITY_HEADERS, Ctx, Redirect, html_response
from gitserver.ui.diffview import render_diff
from gitserver.ui.highlight import show_blob
from gitserver.ui.html import Html, esc, human_size, join, page, render, url
from gitserver.ui.views_auth import csrf_field, require_csrf, who
from gitserver.ui.views_ns import when
from gitserver.web import Request, Response

if TYPE_CHECKING:
    from storage.history import Commit

LOG_PAGE = 30


def _rev(ctx: Ctx, record: RepoRecord) -> str:
    rev = ctx.query.get("rev", "").strip()
    return rev or record.default_branch


def _path(ctx: Ctx) -> str:
    return ctx.query.get("path", "").strip("/")


def repo_url(record: RepoRecord, sub: str = "", /, **query: object) -> str:
    """``/ui/{ns}/{name}[/sub]?query`` (``view`` and ``rev`` are ordinary query keys)."""
    segments = ["ui", record.namespace, record.name] + ([sub] if sub else [])
    return url(segments, query)


def crumbs(record: RepoRecord) -> list[tuple[str, str | None]]:
    return [(record.namespace, url(["ui", record.namespace])), (record.name, repo_url(record))]


def _path_trail(record: RepoRecord, rev: str, path: str) -> Html:
    parts = path.split("/") if path else []
    links = [render('<a href="{0}">{1}</a>', repo_url(record, "tree", rev=rev), record.name)]
    for i, part in enumerate(parts):
        sub = "/".join(parts[: i + 1])
        if i == len(parts) - 1:
            links.append(render("<strong>{0}</strong>", part))
        else:
            links.append(render('<a href="{0}">{1}</a>', repo_url(record, "tree", rev=rev, path=sub), part))
    return render('<span class="path">{0}</span>', join(links, " / "))


def _fork_available(ctx: Ctx) -> bool:
    try:
        ctx.api.resolve("POST", "/namespaces/x/repos/y/fork")
    except ApiError:
        return False
    return True


def _short(commit: Commit) -> str:
    return commit.oid.hex()[:10]


def _subject(commit: Commit) -> str:
    return commit.message.strip().split("\n", 1)[0] if commit.message.strip() else "(no message)"


def _commit_line(record: RepoRecord, commit: Commit) -> Html:
    return render(
        '<a class="mono" href="{href}">{short}</a> <span class="msg">{subject}</span> '
        '<span class="muted">— {author}, {date}</span>',
        href=repo_url(record, "commit", rev=commit.oid.hex()),
        short=_short(commit),
        subject=_subject(commit),
        author=commit.author.name,
        date=when(commit.committer.time * 1_000_000),
    )


async def _sidebar(ctx: Ctx, record: RepoRecord, refs: gitread.RefsView, rev: str) -> Html:
    remote = f"{base_url(ctx.request, ctx.services)}/git/{record.namespace}/{record.name}.git"
    branches = join(
        render(
            '<li><a href="{0}">{1}</a>{2}</li>',
            repo_url(record, "tree", rev=name),
            name,
            Html(' <span class="tag">default</span>') if name == record.default_branch else Html(""),
        )
        for name, _ in refs.branches
    ) or render('<li class="muted">none</li>')
    tags = join(
        render('<li><a href="{0}">{1}</a></li>', repo_url(record, "tree", rev=name), name)
        for name, _ in refs.tags
    ) or render('<li class="muted">none</li>')
    fork = Html("")
    token = ctx.session.token if ctx.session else None
    if token is not None and token.repo == ADMIN_REPO and _fork_available(ctx):
        fork = render(
            """<div class="box"><div class="head"><strong>Fork</strong></div>
<form method="post" action="{action}" class="pad">{csrf}
<input type="text" name="namespace" value="{ns}" aria-label="namespace" size="10"> /
<input type="text" name="name" placeholder="new name" aria-label="name" size="12" required>
<button type="submit" id="fork-button">Fork</button></form></div>""",
            action=repo_url(record, "fork"),
            csrf=csrf_field(ctx),
            ns=record.namespace,
        )
    return render(
        """<aside><div class="box"><div class="head"><strong>Clone</strong></div>
<div class="clone pad"><input id="clone-url" type="text" readonly value="{remote}">
<button type="button" data-copy="clone-url">Copy</button></div></div>
<div class="box"><div class="head"><strong>History</strong></div><div class="pad">
<a href="{log}">Commit log</a> · <a id="timeline-link" href="{timeline}">Timeline</a></div></div>
<div class="box refs" id="branches"><div class="head"><strong>Branches</strong></div><ul class="pad">{branches}</ul></div>
<div class="box refs" id="tags"><div class="head"><strong>Tags</strong></div><ul class="pad">{tags}</ul></div>
{fork}</aside>""",
        remote=remote,
        log=repo_url(record, "log", rev=rev),
        timeline=repo_url(record, "timeline"),
        branches=branches,
        tags=tags,
        fork=fork,
    )


def _rev_picker(record: RepoRecord, refs: gitread.RefsView, rev: str, path: str, view: str) -> Html:
    names = [n for n, _ in refs.branches] + [n for n, _ in refs.tags]
    options = join(
        render('<option value="{0}"{1}>{0}</option>', n, Html(" selected") if n == rev else Html(""))
        for n in names
    )
    if rev not in names:
        options = join([render('<option value="{0}" selected>{0}</option>', rev), options])
    return render(
        '<form class="inline" method="get" action="{action}"><select name="rev" aria-label="revision" data-autosubmit>'
        "{options}</select>{path}<noscript><button>Go</button></noscript></form>",
        action=repo_url(record, view),
        options=options,
        path=render('<input type="hidden" name="path" value="{0}">', path) if path else Html(""),
    )


async def overview(ctx: Ctx) -> Response:
    return await tree(ctx)


async def tree(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    rev, path = _rev(ctx, record), _path(ctx)
    refs = await gitread.read(ctx, record, gitread.refs_view)
    sidebar = await _sidebar(ctx, record, refs, rev)
    title = record.full_name + (f": {path}" if path else "")
    if not refs.branches and not refs.tags and "rev" not in ctx.query:
        main = render(
            '<div class="box"><div class="head"><strong>This repository is empty</strong></div>'
            '<p class="pad">Push to it with <code>git push {0} {1}</code>.</p></div>',
            f"{base_url(ctx.request, ctx.services)}/git/{record.namespace}/{record.name}.git",
            record.default_branch,
        )
    else:
        view = await gitread.read(ctx, record, gitread.tree_page, rev, path)
        if view.item.kind != "tree":
            raise Redirect(repo_url(record, "blob", rev=rev, path=path))
        rows = join(_tree_row(record, rev, e) for e in view.entries) or render(
            '<tr><td colspan="2" class="muted">Empty directory</td></tr>'
        )
        main = render(
            """<div class="box"><div class="head">{picker}{trail}</div>
<div class="head" id="last-commit">{last}</div>
<table class="list" id="tree"><tbody>{rows}</tbody></table></div>""",
            picker=_rev_picker(record, refs, rev, path, "tree"),
            trail=_path_trail(record, rev, path),
            last=_commit_line(record, view.commit),
            rows=rows,
        )
    body = render(
        '<h1>{name}</h1><p class="muted">{desc}</p><div class="layout"><section>{main}</section>{side}</div>',
        name=record.full_name,
        desc=record.description,
        main=main,
        side=sidebar,
    )
    return html_response(200, page(title, body, who=who(ctx), crumbs=crumbs(record)))


def _tree_row(record: RepoRecord, rev: str, e: gitread.Entry) -> Html:
    if e.kind == "tree":
        link = render(
            '<a class="entry-tree" href="{0}">{1}/</a>',
            repo_url(record, "tree", rev=rev, path=e.path),
            e.name,
        )
    elif e.kind == "commit":
        link = render('<span class="entry-commit">{0}</span> <span class="muted">(submodule)</span>', e.name)
    else:
        link = render(
            '<a class="entry-blob" href="{0}">{1}</a>', repo_url(record, "blob", rev=rev, path=e.path), e.name
        )
    size = human_size(e.size) if e.size is not None else ""
    return render('<tr><td>{0}</td><td class="num muted">{1}</td></tr>', link, size)


async def blob(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    rev, path = _rev(ctx, record), _path(ctx)
    if not path:
        raise Redirect(repo_url(record, "tree", rev=rev))
    refs = await gitread.read(ctx, record, gitread.refs_view)
    try:
        commit, _item, data = await gitread.read(ctx, record, gitread.file_page, rev, path)
    except ApiError as exc:
        if exc.code == "INVALID_INPUT" and "directory" in exc.message:
            raise Redirect(repo_url(record, "tree", rev=rev, path=path)) from None
        raise
    shown = await ctx.services.thread(show_blob, path.rsplit("/", 1)[-1], data)
    raw = repo_url(record, "raw", rev=rev, path=path)
    if shown.binary:
        content = render(
            '<p class="pad" id="binary">Binary file ({0}) not shown. <a href="{1}">Download it</a>.</p>',
            human_size(len(data)),
            raw,
        )
    else:
        note = (
            render(
                '<p class="flash">This file is large: only the first part is shown. <a href="{0}">Raw file</a>.</p>',
                raw,
            )
            if shown.truncated
            else Html("")
        )
        content = Html(note + (shown.html or ""))
    main = render(
        """<div class="box"><div class="head">{picker}{trail}</div>
<div class="head"><span class="muted">{lines} lines · {size} · {lang}</span>
<a href="{raw}">Raw</a><a href="{log}">History</a></div>
<div id="file">{content}</div></div>""",
        picker=_rev_picker(record, refs, rev, path, "blob"),
        trail=_path_trail(record, rev, path),
        lines=shown.lines,
        size=human_size(len(data)),
        lang=shown.language,
        raw=raw,
        log=repo_url(record, "log", rev=rev, path=path),
        content=content,
    )
    body = render(
        '<h1>{0}</h1><div id="file-commit" class="muted">{1}</div>{2}',
        path.rsplit("/", 1)[-1],
        _commit_line(record, commit),
        main,
    )
    return html_response(200, page(f"{path} · {record.full_name}", body, who=who(ctx), crumbs=crumbs(record)))


async def raw(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    rev, path = _rev(ctx, record), _path(ctx)
    _commit, _item, data = await gitread.read(ctx, record, gitread.file_page, rev, path)
    filename = path.rsplit("/", 1)[-1] or "file"
    return Response(
        200,
        data,
        [
            (b"content-type", b"application/octet-stream"),
            (b"content-disposition", f"attachment; filename*=UTF-8''{quote(filename, safe='')}".encode()),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,
            (b"content-security-policy", b"sandbox; default-src 'none'"),
        ],
    )


async def log(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    rev, path = _rev(ctx, record), _path(ctx)
    try:
        skip = max(0, int(ctx.query.get("skip") or 0))
    except ValueError:
        raise invalid_input("skip must be an integer") from None
    commits, more = await gitread.read(ctx, record, gitread.log_page, rev, path, skip, LOG_PAGE)
    items = join(render("<li>{0}</li>", _commit_line(record, c)) for c in commits) or render(
        '<li class="muted">No commits.</li>'
    )
    nav = join(
        [
            render(
                '<a href="{0}">« Newer</a>',
                repo_url(record, "log", rev=rev, path=path, skip=max(0, skip - LOG_PAGE)),
            )
            if skip
            else "",
            render(
                '<a href="{0}" rel="next">Older »</a>',
                repo_url(record, "log", rev=rev, path=path, skip=skip + LOG_PAGE),
            )
            if more
            else "",
        ]
    )
    body = render(
        '<h1>Commits on {rev}{path}</h1><div class="box"><ol class="log" id="log">{items}</ol>'
        '<div class="pager">{nav}</div></div>',
        rev=rev,
        path=f" touching {path}" if path else "",
        items=items,
        nav=nav,
    )
    return html_response(200, page(f"Log · {record.full_name}", body, who=who(ctx), crumbs=crumbs(record)))


async def commit(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    rev = _rev(ctx, record)
    c = await gitread.read(ctx, record, gitread.commit_info, rev)
    mode = "split" if ctx.query.get("view") == "split" else "unified"
    parent = c.parents[0].hex() if c.parents else None
    diff = await gitread.read(ctx, record, gitread.diff_files, parent, c.oid.hex())
    parents = join(
        (
            render(
                '<a class="mono" href="{0}">{1}</a>', repo_url(record, "commit", rev=p.hex()), p.hex()[:10]
            )
            for p in c.parents
        ),
        " ",
    )
    body = render(
        """<h1>{subject}</h1><div class="box"><div class="head"><span class="mono">{oid}</span>
<span class="muted">parents {parents}</span><a href="{tree}">Browse files</a></div>
<div class="head muted">{author} &lt;{email}&gt; authored {adate}; committed by {committer} {cdate}</div>
<pre class="message" id="message">{message}</pre></div>{diff}""",
        subject=_subject(c),
        oid=c.oid.hex(),
        parents=parents or esc("none"),
        tree=repo_url(record, "tree", rev=c.oid.hex()),
        author=c.author.name,
        email=c.author.email,
        adate=when(c.author.time * 1_000_000),
        committer=c.committer.name,
        cdate=when(c.committer.time * 1_000_000),
        message=c.message,
        diff=render_diff(
            diff, mode, switch_url=lambda m: repo_url(record, "commit", rev=c.oid.hex(), view=m)
        ),
    )
    return html_response(
        200, page(f"{_short(c)} · {record.full_name}", body, who=who(ctx), crumbs=crumbs(record))
    )


async def fork(ctx: Ctx) -> Response:
    form = await require_csrf(ctx)
    assert ctx.session is not None
    if ctx.session.token.repo != ADMIN_REPO:
        raise forbidden("forking needs an admin token")
    ns, name = ctx.request.params["ns"], ctx.request.params["name"]
    body: dict[str, object] = {"name": form.get("name", "").strip()}
    if form.get("namespace", "").strip():
        body["namespace"] = form["namespace"].strip()
    status, data = await _call_api(ctx, "POST", f"/namespaces/{ns}/repos/{name}/fork", body)
    if status != 201:
        found = data.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        code = str(error.get("code"))
        raise ApiError(
            code if code in STATUS else "INTERNAL_ERROR",
            str(error.get("message") or "fork failed"),
            status=status,
        )
    raise Redirect(url(["ui", str(data["namespace"]), str(data["name"])]))


async def _call_api(ctx: Ctx, method: str, path: str, body: dict[str, object]) -> tuple[int, dict[str, Any]]:
    """Call a REST handler in-process as the session's token (same auth, same rules)."""
    assert ctx.session is not None
    raw = json.dumps(body).encode()
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = dict(ctx.request.scope)
    scope.update(
        method=method,
        path=API_PREFIX + path,
        query_string=b"",
        headers=[
            (b"authorization", f"Bearer {ctx.session.secret}".encode()),
            (b"content-type", b"application/json"),
            (b"host", ctx.request.headers.get("host", "").encode()),
        ],
    )
    request = Request(scope, receive)
    try:
        handler, params = ctx.api.resolve(method, path)
        request.params = params
        response = await handler(request)
    except ApiError as exc:
        return exc.status, json.loads(exc.body())
    return response.status, json.loads(response.body or b"{}")
