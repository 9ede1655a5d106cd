"""The timeline: a ref's permanent reflog as a time axis, two instants, and the diff between.

Rules:
- Points are the reflog entries of one ref (``?ref=``, default the default branch),
  oldest left, placed by time on an SVG axis (attributes, not inline styles, so the CSP
  stays strict); each says when, which ref, old → new, ``via`` (git, api, restore...)
  and which token (id and scope) made it.
- T1 and T2 are chosen with two pickers (``<select>``, which work without JS) kept in
  step with two sliders by ``ui.js``. The form is a GET, so the page URL
  ``/ui/{ns}/{name}/timeline?ref=main&from=main@{T1}&to=main@{T2}&view=split`` is the
  shareable link; instants are RFC 3339 with microseconds, exactly the reflog's.
- The diff is the storage layer's ``diff`` between the two revisions (renames
  detected there); ``from``/``to`` may be any REV, typed by hand too.
"""

from __future__ import annotations

from gitserver.catalog import RepoRecord
from gitserver.clock import rfc3339
from gitserver.errors import invalid_input
from gitserver.tokens import TokenInfo
from gitserver.ui import gitread
from gitserver.ui.context import Ctx, html_response
from gitserver.ui.diffview import render_diff
from gitserver.ui.html import Html, esc, join, page, render
from gitserver.ui.views_auth import who
from gitserver.ui.views_repo import crumbs, repo_url
from gitserver.web import Response
from storage.model import ZERO_OID, ReflogEntry

MAX_POINTS = 500


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def instant_rev(entry: ReflogEntry) -> str:
    """The REV naming the ref just after this entry: ``main@{2026-...Z}``."""
    return f"{_short_ref(entry.ref)}@{{{rfc3339(entry.at_us)}}}"


def _change(entry: ReflogEntry) -> str:
    if entry.old == ZERO_OID:
        return f"created at {entry.new.hex()[:10]}"
    if entry.new == ZERO_OID:
        return f"deleted (was {entry.old.hex()[:10]})"
    return f"{entry.old.hex()[:10]} → {entry.new.hex()[:10]}"


def _by(entry: ReflogEntry, tokens: dict[str, TokenInfo | None]) -> str:
    if entry.token_id is None:
        return "anonymous"
    info = tokens.get(entry.token_id)
    return f"token {entry.token_id} ({info.scope})" if info else f"token {entry.token_id}"


def _label(entry: ReflogEntry, tokens: dict[str, TokenInfo | None]) -> str:
    at = (rfc3339(entry.at_us) or "").replace("T", " ")
    return f"{at} · {entry.via} · {_by(entry, tokens)} · {_change(entry)}"


def _axis(entries: list[ReflogEntry], tokens: dict[str, TokenInfo | None]) -> Html:
    first, last = entries[0].at_us, entries[-1].at_us
    span = max(1, last - first)
    points = []
    for i, e in enumerate(entries):
        x = 2 + 96 * ((e.at_us - first) / span if len(entries) > 1 else 0.5)
        points.append(
            render(
                '<circle class="pt via-{via}" cx="{x:.3f}%" cy="24" r="7" data-index="{i}" tabindex="0">'
                "<title>{label}</title></circle>",
                via=e.via if e.via.isalnum() else "other",
                x=x,
                i=i,
                label=_label(e, tokens),
            )
        )
    return render(
        """<svg class="axis" width="100%" height="56" role="img" aria-label="reflog time axis">
<line x1="1%" y1="24" x2="99%" y2="24" class="axis-line"></line>{points}
<text x="1%" y="52" class="axis-label">{start}</text><text x="99%" y="52" text-anchor="end" class="axis-label">{end}</text></svg>""",
        points=join(points),
        start=(rfc3339(first) or "")[:19].replace("T", " "),
        end=(rfc3339(last) or "")[:19].replace("T", " "),
    )


def _options(entries: list[ReflogEntry], tokens: dict[str, TokenInfo | None], chosen: int) -> Html:
    return join(
        render(
            '<option value="{v}"{sel}>#{n} {label}</option>',
            v=instant_rev(e),
            sel=Html(" selected") if i == chosen else Html(""),
            n=i + 1,
            label=_label(e, tokens),
        )
        for i, e in enumerate(entries)
    )


def _index_of(entries: list[ReflogEntry], rev: str, default: int) -> int:
    for i, e in enumerate(entries):
        if instant_rev(e) == rev:
            return i
    return default


async def timeline(ctx: Ctx) -> Response:
    record = await ctx.repo(ctx.request.params["ns"], ctx.request.params["name"])
    ref = ctx.query.get("ref", "").strip() or record.default_branch
    full_ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    if len(ref) > 255:
        raise invalid_input("ref name too long")
    entries = await gitread.read(ctx, record, gitread.reflog, full_ref)
    if not entries and not ref.startswith("refs/"):
        full_ref = f"refs/tags/{ref}"
        entries = await gitread.read(ctx, record, gitread.reflog, full_ref)
    refs = await gitread.read(ctx, record, gitread.refs_view)
    entries = entries[-MAX_POINTS:]
    tokens = await _tokens(ctx, entries)
    q = ctx.query
    mode = "split" if q.get("view") == "split" else "unified"
    from_rev, to_rev = q.get("from", "").strip(), q.get("to", "").strip()
    if len(from_rev) > 1024 or len(to_rev) > 1024:
        raise invalid_input("revision too long")
    diff_html = Html("")
    if from_rev and to_rev:
        changes = await gitread.read(ctx, record, gitread.diff_files, from_rev, to_rev)
        diff_html = render_diff(
            changes,
            mode,
            switch_url=lambda m: repo_url(
                record, "timeline", ref=ref, **{"from": from_rev, "to": to_rev}, view=m
            ),
        )
    ref_options = join(
        render('<option value="{0}"{1}>{0}</option>', name, Html(" selected") if name == ref else Html(""))
        for name, _ in refs.branches
    )
    if entries:
        i1 = _index_of(entries, from_rev, max(0, len(entries) - 2))
        i2 = _index_of(entries, to_rev, len(entries) - 1)
        last = len(entries) - 1
        chooser = render(
            """<div class="box"><div class="head"><strong>{n} update{s} of {ref}</strong>
<span class="legend"><span><i class="via-git"></i>git push</span><span><i class="via-api"></i>API commit</span>
<span><i class="via-restore"></i>restore</span></span></div>
{axis}
<form id="timeline-form" method="get" action="{action}" class="pickers">
<input type="hidden" name="ref" value="{ref}">
<label for="t1">T1</label><div><input type="range" id="t1" min="0" max="{last}" value="{i1}" aria-label="T1 slider">
<select name="from" id="from" aria-label="T1">{opts1}</select></div>
<label for="t2">T2</label><div><input type="range" id="t2" min="0" max="{last}" value="{i2}" aria-label="T2 slider">
<select name="to" id="to" aria-label="T2">{opts2}</select></div>
<span></span><div><label><input type="radio" name="view" value="unified"{uni}> unified</label>
<label><input type="radio" name="view" value="split"{spl}> side by side</label>
<button class="primary" type="submit" id="show-diff">Show changes</button></div>
</form></div>""",
            n=len(entries),
            s="" if len(entries) == 1 else "s",
            ref=ref,
            axis=_axis(entries, tokens),
            action=repo_url(record, "timeline"),
            last=last,
            i1=i1,
            i2=i2,
            opts1=_options(entries, tokens, i1),
            opts2=_options(entries, tokens, i2),
            uni=Html(" checked") if mode == "unified" else Html(""),
            spl=Html(" checked") if mode == "split" else Html(""),
        )
    else:
        chooser = render('<p class="flash">No reflog entries for {0}.</p>', ref)
    heading = Html("")
    if from_rev and to_rev:
        heading = render(
            '<h2 id="range">Changes from <code>{0}</code> to <code>{1}</code></h2>', from_rev, to_rev
        )
    body = render(
        """<h1>Timeline of {name}</h1>
<form class="inline" method="get" action="{action}"><label>Ref <select name="ref" data-autosubmit>{refs}</select></label>
<noscript><button>Go</button></noscript></form>
{chooser}{heading}{diff}""",
        name=record.full_name,
        action=repo_url(record, "timeline"),
        refs=ref_options or esc(""),
        chooser=chooser,
        heading=heading,
        diff=diff_html,
    )
    return html_response(
        200, page(f"Timeline · {record.full_name}", body, who=who(ctx), crumbs=_crumbs(record))
    )


def _crumbs(record: RepoRecord) -> list[tuple[str, str | None]]:
    return [*crumbs(record), ("timeline", None)]


async def _tokens(ctx: Ctx, entries: list[ReflogEntry]) -> dict[str, TokenInfo | None]:
    ids = {e.token_id for e in entries if e.token_id}
    out: dict[str, TokenInfo | None] = {}
    for token_id in ids:
        out[token_id] = await ctx.services.thread(ctx.services.tokens.get, token_id)
    return out
