"""Fuzz targets: one function per hostile-input surface, each taking raw bytes.

Rules: a target returns normally when the input is accepted and raises only when its
invariant breaks. The documented error types of each surface (``ALLOWED``) are caught
inside the target; any other exception escapes and is a finding (atheris reports it,
tests/fuzz/test_fuzz_smoke.py fails). The time bound per input is enforced by the runners
(``TIME_BOUND_S``). Used by the Hypothesis smoke in ``make test`` and by the atheris
campaigns of ``make fuzz`` (tests/fuzz/run.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import native
from gitserver.errors import ApiError
from gitserver.web import Request
from native import collision, pure
from smart_http.errors import ProtocolError
from smart_http.pktline import NEED_DATA, PktLineReader
from smart_http.requests_receive import ReceiveRequestParser
from smart_http.requests_v0 import UploadRequestParser
from smart_http.requests_v2 import CommandRequestParser, parse_fetch, parse_ls_refs, parse_object_info
from storage.revisions import RevisionError, parse_rev

TIME_BOUND_S = 2.0  # per input, in the smoke and in campaigns (atheris -timeout)
MAX_EVENTS = 100_000


def _events(data: bytes, *, bytewise: bool) -> list[object]:
    """Decode pkt-lines fed whole or one byte at a time; ProtocolError on bad framing."""
    reader = PktLineReader()
    out: list[object] = []
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for piece in [*pieces, b""]:
        reader.feed(piece)
        while len(out) < MAX_EVENTS:
            ev = reader.next_event()
            if ev is NEED_DATA:
                break
            out.append(ev)
    return out


def fuzz_pktline(data: bytes) -> None:
    try:
        whole = _events(data, bytewise=False)
    except ProtocolError:
        whole = None
    if len(data) <= 2048:  # byte by byte must agree with whole-buffer decoding
        try:
            split = _events(data, bytewise=True)
        except ProtocolError:
            split = None
        assert (whole is None) == (split is None), "pkt-line: whole and bytewise feeding disagree"
        if whole is not None:
            assert whole == split


def _feed_parser(parser: object, data: bytes) -> bool:
    """Feed decoded events to a request parser until it completes; False on ProtocolError."""
    try:
        for ev in _events(data, bytewise=False):
            if parser.complete:  # type: ignore[attr-defined]
                break
            parser.feed(ev)  # type: ignore[attr-defined]
    except ProtocolError:
        return False
    return True


def fuzz_upload_v0(data: bytes) -> None:
    p = UploadRequestParser()
    if _feed_parser(p, data) and p.complete:
        try:
            p.finish()
        except ProtocolError:
            pass


def fuzz_upload_v2(data: bytes) -> None:
    p = CommandRequestParser()
    if not (_feed_parser(p, data) and p.complete):
        return
    parse = {"ls-refs": parse_ls_refs, "fetch": parse_fetch, "object-info": parse_object_info}
    fn = parse.get(p.request.command or "")
    if fn is not None:
        try:
            fn(p.request.args)
        except ProtocolError:
            pass


def fuzz_receive_commands(data: bytes) -> None:
    p = ReceiveRequestParser()
    if _feed_parser(p, data) and p.complete:
        assert all(len(c.old) == 20 and len(c.new) == 20 for c in p.request.commands)


def _scan(impl: object, data: bytes) -> object:
    scanner = impl.PackScanner(max_object_size=1 << 20)  # type: ignore[attr-defined]
    try:
        entries = scanner.feed(data)
        return ([tuple(e) for e in entries], scanner.finish())
    except native.PackError:
        return "PackError"


def fuzz_pack_scan(data: bytes) -> None:
    got = _scan(pure, data)
    if native.cext is not None:
        assert _scan(native.cext, data) == got, "pack scan: C and Python twins disagree"


def _delta(impl: object, base: bytes, delta: bytes) -> object:
    try:
        return impl.delta_apply(base, delta)  # type: ignore[attr-defined]
    except native.DeltaError:
        return "DeltaError"


def fuzz_delta_apply(data: bytes) -> None:
    cut = data[0] if data else 0
    base, delta = data[1 : 1 + cut], data[1 + cut :]
    got = _delta(pure, base, delta)
    if native.cext is not None:
        assert _delta(native.cext, base, delta) == got, "delta: C and Python twins disagree"


def fuzz_sha1dc(data: bytes) -> None:
    try:
        collision.sha1(data)
    except collision.CollisionDetected:
        pass


def fuzz_revision(data: bytes) -> None:
    try:
        parse_rev(data.decode("utf-8", "surrogateescape"))
    except RevisionError:
        pass


def fuzz_rest_json(data: bytes) -> None:
    """The REST body reader: any bytes, any chunking, become a JSON object or ApiError."""
    chunks = [data[: len(data) // 2], data[len(data) // 2 :]]

    async def receive() -> dict[str, object]:
        body = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    scope = {"type": "http", "method": "POST", "path": "/api/v1/x", "query_string": b"", "headers": []}
    try:
        obj = asyncio.run(Request(scope, receive).json(1 << 16))  # type: ignore[arg-type]
        assert isinstance(obj, dict)
    except ApiError as exc:
        assert exc.status in (400, 413), exc.status


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pktline": fuzz_pktline,
    "upload_v0": fuzz_upload_v0,
    "upload_v2": fuzz_upload_v2,
    "receive_commands": fuzz_receive_commands,
    "pack_scan": fuzz_pack_scan,
    "delta_apply": fuzz_delta_apply,
    "sha1dc": fuzz_sha1dc,
    "revision": fuzz_revision,
    "rest_json": fuzz_rest_json,
}
