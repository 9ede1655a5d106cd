"""File contents as HTML: syntax highlighting with Pygments, binary and large files handled.

Rules:
- Binary (a NUL byte in the first 8 KiB, or not UTF-8 decodable) is never rendered:
  the page says "binary file" and links to the raw bytes.
- Files above ``MAX_HIGHLIGHT`` bytes are shown as plain escaped text, cut at
  ``MAX_SHOW`` bytes; the raw link serves all of it.
- The lexer is chosen from the file name only (never by guessing from content, which is
  slow and surprising); unknown names are plain text. Pygments escapes what it emits.
- Output is one ``<table>`` row per line, with line numbers as anchors ``#L12``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pygments import highlight as _pyg_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from gitserver.ui.html import Html, esc, join, render

MAX_HIGHLIGHT = 512 * 1024
MAX_SHOW = 1024 * 1024
CSS_CLASS = "hl"


@dataclass(frozen=True, slots=True)
class Shown:
    """How a blob is displayed: ``html`` is None for binary files."""

    html: Html | None
    binary: bool
    truncated: bool
    lines: int
    language: str


def is_binary(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return True
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the probe's end is still text
        return exc.start < min(len(data), 65536) - 4
    return False


def _lexer(filename: str) -> Lexer:
    try:
        return get_lexer_for_filename(filename, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def show_blob(filename: str, data: bytes) -> Shown:
    """Render ``data`` (the file ``filename``) for the file view."""
    if is_binary(data):
        return Shown(None, True, False, 0, "binary")
    truncated = len(data) > MAX_SHOW
    text = data[:MAX_SHOW].decode("utf-8", errors="replace")
    if len(data) > MAX_HIGHLIGHT:
        lexer: Lexer = TextLexer(stripnl=False, ensurenl=False)
        lines = [esc(line) for line in text.split("\n")]
    else:
        lexer = _lexer(filename)
        formatted = _pyg_highlight(text, lexer, HtmlFormatter(nowrap=True, cssclass=CSS_CLASS))
        lines = [Html(line) for line in _split_spans(formatted)]
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines.pop()
    rows = join(
        render(
            '<tr id="L{n}"><td class="ln"><a href="#L{n}">{n}</a></td><td class="code">{line}</td></tr>',
            n=i,
            line=line,
        )
        for i, line in enumerate(lines, 1)
    )
    table = render('<table class="source {cls}"><tbody>{rows}</tbody></table>', cls=CSS_CLASS, rows=rows)
    return Shown(table, False, truncated, len(lines), lexer.name)


def _split_spans(formatted: str) -> list[str]:
    """Split Pygments' nowrap output into lines, closing and reopening spans that cross a
    newline so each table row is well-formed markup."""
    out: list[str] = []
    open_spans: list[str] = []
    current: list[str] = []
    i = 0
    n = len(formatted)
    while i < n:
        ch = formatted[i]
        if ch == "<":
            end = formatted.index(">", i) + 1
            tag = formatted[i:end]
            if tag.startswith("</"):
                if open_spans:
                    open_spans.pop()
            else:
                open_spans.append(tag)
            current.append(tag)
            i = end
        elif ch == "\n":
            current.append("</span>" * len(open_spans))
            out.append("".join(current))
            current = list(open_spans)
            i += 1
        else:
            j = i
            while j < n and formatted[j] not in "<\n":
                j += 1
            current.append(formatted[i:j])
            i = j
    out.append("".join(current))
    return out


@cache
def style_css() -> str:
    """Pygments' token colours for ``.hl`` (appended to the UI stylesheet)."""
    return str(HtmlFormatter(style="default", cssclass=CSS_CLASS).get_style_defs(f".{CSS_CLASS}"))
