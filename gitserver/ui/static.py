"""The UI's two static files (``ui.css`` plus Pygments' colours, ``ui.js``), from package data.

Rules: a fixed allow-list of names (no path from the request touches the file system);
read once and kept in memory; served with a short public cache and the UI's CSP.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from gitserver.errors import not_found
from gitserver.ui.context import SECURITY_HEADERS, Ctx
from gitserver.ui.highlight import style_css
from gitserver.web import Response

_TYPES = {"ui.css": b"text/css; charset=utf-8", "ui.js": b"text/javascript; charset=utf-8"}


@cache
def _content(name: str) -> bytes:
    data = resources.files("gitserver.ui").joinpath("static", name).read_bytes()
    if name == "ui.css":
        data += b"\n/* Pygments */\n" + style_css().encode()
    return data


async def serve(ctx: Ctx) -> Response:
    name = ctx.request.params["file"]
    if name not in _TYPES:
        raise not_found(f"no such file: {name}")
    return Response(
        200,
        _content(name),
        [(b"content-type", _TYPES[name]), (b"cache-control", b"public, max-age=300"), *SECURITY_HEADERS],
    )
