"""Per-file diffs as HTML, unified or side by side, from the storage diff's patches.

Rules:
- Input is what the read API's diff gives per file (``FileChange``: path, old_path,
  status A/M/D/R/..., additions, deletions, binary, patch). The patch text is parsed only
  to lay lines out (``@@`` hunk headers, ``+``/``-``/`` `` lines); no diff is computed here.
- Side by side pairs each run of deletions with the run of additions that follows it,
  row by row (git's own "word diff" is not attempted); context lines appear on both sides.
- Renames show ``old → new``; binary files say so and show no lines. Every line is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gitserver.ui.html import Html, join, render

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
STATUS_WORDS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type changed",
}


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    old_path: str | None
    status: str
    additions: int
    deletions: int
    binary: bool
    patch: str


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # "hunk", "ctx", "add", "del"
    old: int | None
    new: int | None
    text: str


def parse_patch(patch: str) -> list[Line]:
    """The hunk lines of one file's patch (headers before the first ``@@`` skipped)."""
    out: list[Line] = []
    old = new = 0
    in_hunk = False
    for raw in patch.split("\n"):
        m = _HUNK.match(raw)
        if m:
            old, new = int(m.group(1)), int(m.group(2))
            out.append(Line("hunk", None, None, raw))
            in_hunk = True
            continue
        if not in_hunk or raw.startswith("\\"):  # headers; "\ No newline at end of file"
            continue
        if raw.startswith("+"):
            out.append(Line("add", None, new, raw[1:]))
            new += 1
        elif raw.startswith("-"):
            out.append(Line("del", old, None, raw[1:]))
            old += 1
        elif raw.startswith(" "):
            out.append(Line("ctx", old, new, raw[1:]))
            old += 1
            new += 1
    return out


def _num(n: int | None) -> str:
    return "" if n is None else str(n)


def _unified(lines: list[Line]) -> Html:
    rows = []
    for ln in lines:
        if ln.kind == "hunk":
            rows.append(
                render('<tr class="hunk"><td class="ln"></td><td class="ln"></td><td>{0}</td></tr>', ln.text)
            )
            continue
        cls, sign = {"add": ("add", "+"), "del": ("del", "-"), "ctx": ("", " ")}[ln.kind]
        rows.append(
            render(
                '<tr><td class="ln">{o}</td><td class="ln">{n}</td><td class="{cls}">{sign}{text}</td></tr>',
                o=_num(ln.old),
                n=_num(ln.new),
                cls=cls,
                sign=sign,
                text=ln.text,
            )
        )
    return render(
        '<table class="diff unified"><colgroup><col class="lnc"><col class="lnc"><col></colgroup>{0}</table>',
        join(rows),
    )


def _side(line: Line | None, side: str) -> Html:
    if line is None:
        return render('<td class="ln empty"></td><td class="empty"></td>')
    number = line.old if side == "old" else line.new
    cls = {"add": "add", "del": "del"}.get(line.kind, "")
    return render('<td class="ln">{0}</td><td class="{1}">{2}</td>', _num(number), cls, line.text)


def _split(lines: list[Line]) -> Html:
    rows: list[Html] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.kind == "hunk":
            rows.append(render('<tr class="hunk"><td class="ln"></td><td colspan="3">{0}</td></tr>', ln.text))
            i += 1
        elif ln.kind == "ctx":
            rows.append(render("<tr>{0}{1}</tr>", _side(ln, "old"), _side(ln, "new")))
            i += 1
        else:
            dels: list[Line] = []
            adds: list[Line] = []
            while i < len(lines) and lines[i].kind == "del":
                dels.append(lines[i])
                i += 1
            while i < len(lines) and lines[i].kind == "add":
                adds.append(lines[i])
                i += 1
            for k in range(max(len(dels), len(adds))):
                left = dels[k] if k < len(dels) else None
                right = adds[k] if k < len(adds) else None
                rows.append(render("<tr>{0}{1}</tr>", _side(left, "old"), _side(right, "new")))
    return render(
        '<table class="diff split"><colgroup><col class="lnc"><col><col class="lnc"><col></colgroup>{0}</table>',
        join(rows),
    )


def _file(change: FileChange, mode: str, index: int) -> Html:
    name = (
        render("{0} → {1}", change.old_path, change.path)
        if change.old_path and change.old_path != change.path
        else render("{0}", change.path)
    )
    if change.binary:
        content = render('<p class="muted pad">Binary file changed.</p>')
    else:
        lines = parse_patch(change.patch)
        if not lines:
            content = render('<p class="muted pad">No content changes.</p>')
        else:
            content = _split(lines) if mode == "split" else _unified(lines)
    return render(
        """<div class="box file" id="file-{i}" data-path="{path}" data-status="{status}">
<div class="head file-head"><span class="badge {status}" title="{word}">{status}</span>
<strong class="mono file-name">{name}</strong>
<span class="stat"><span class="plus">+{add}</span> <span class="minus">&minus;{dele}</span></span></div>{content}</div>""",
        i=index,
        path=change.path,
        status=change.status,
        word=STATUS_WORDS.get(change.status, change.status),
        name=name,
        add=change.additions,
        dele=change.deletions,
        content=content,
    )


def render_diff(changes: Iterable[FileChange], mode: str, switch_url: Callable[[str], str]) -> Html:
    """Every changed file, with a summary line and unified / side-by-side switch links."""
    changes = list(changes)
    adds = sum(c.additions for c in changes)
    dels = sum(c.deletions for c in changes)
    other = "split" if mode != "split" else "unified"
    label = "Side by side" if other == "split" else "Unified"
    summary = render(
        '<div class="head" id="diff-summary"><strong>{n} file{s} changed</strong>'
        '<span class="stat"><span class="plus">+{a}</span> <span class="minus">&minus;{d}</span></span>'
        '<a href="{switch}" id="diff-mode">{label}</a></div>',
        n=len(changes),
        s="" if len(changes) == 1 else "s",
        a=adds,
        d=dels,
        switch=switch_url(other),
        label=label,
    )
    files = join(_file(c, mode, i) for i, c in enumerate(changes))
    if not changes:
        files = render('<p class="muted">No differences.</p>')
    return render('<section class="diffs"><div class="box">{0}</div>{1}</section>', summary, files)
