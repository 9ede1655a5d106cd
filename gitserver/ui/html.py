"""Safe-by-default HTML building for the UI: every value is escaped unless marked ``Html``.

Rules:
- ``Html`` is a ``str`` that is already markup. ``render(template, **values)`` fills
  ``{name}`` fields of a template (``str.format`` syntax) and escapes every value that is
  not ``Html`` (quotes included, so values are safe inside attributes too).
- ``join`` concatenates fragments (escaping plain strings); ``url`` builds a path plus a
  query string with every segment and value percent-encoded.
- Repository content (names, messages, file bytes) only ever reaches a page through
  these functions or through Pygments, which escapes its own output.
- ``page`` is the one layout: header, nav, content; CSS and JS are static files, so the
  Content-Security-Policy forbids inline scripts entirely.
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode


class Html(str):
    """Trusted markup (built by this module's functions)."""

    __slots__ = ()


def esc(value: object) -> Html:
    """``value`` as markup: Html passes through, anything else is escaped text."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


class _Formatter(string.Formatter):
    def format_field(self, value: object, format_spec: str) -> str:
        if isinstance(value, Html):
            return value
        return esc(format(value, format_spec) if format_spec else value)


_FORMATTER = _Formatter()


def render(template: str, /, *args: object, **values: object) -> Html:
    """``template`` with its ``{0}`` / ``{name}`` fields filled by escaped values."""
    return Html(_FORMATTER.vformat(template, args, values))


def join(parts: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def url(path_segments: Iterable[str], query: Mapping[str, object] | None = None) -> str:
    """``/seg/seg?k=v``: segments and values percent-encoded (escape again for HTML)."""
    path = "/" + "/".join(quote(s, safe="") for s in path_segments)
    items = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
    return path + ("?" + urlencode(items) if items else "")


def page(
    title: str, body: Html, *, who: Html | str = "", crumbs: Iterable[tuple[str, str | None]] = ()
) -> Html:
    """The full document around ``body``; ``crumbs`` are ``(label, href or None)``."""
    trail = join(
        render('<a href="{href}">{label}</a>', href=href, label=label)
        if href
        else render("<span>{0}</span>", label)
        for label, href in crumbs
    )
    return render(
        """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · gitserver</title>
<link rel="stylesheet" href="/ui/-/static/ui.css">
<script src="/ui/-/static/ui.js" defer></script>
</head><body>
<header class="top"><a class="brand" href="/ui/">gitserver</a><nav class="crumbs">{trail}</nav>
<div class="who">{who}</div></header>
<main>{body}</main>
</body></html>
""",
        title=title,
        trail=trail,
        who=who if isinstance(who, Html) else esc(who),
        body=body,
    )


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
