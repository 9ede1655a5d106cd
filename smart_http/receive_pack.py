"""Driver of one POST to ``git-receive-pack``.

How it goes (gitprotocol-pack "Pushing Data To a Server", "Report Status"):
- Parse the command list (and push options when negotiated). A bad request gets an
  ``ERR`` pkt-line; an empty one gets an empty answer.
- Hand the rest of the body, the pack, to ``repo.receive_pack`` as a ``ReadFn`` (None
  when every command is a delete). Progress goes to side-band channel 2 unless the
  client said ``quiet`` or has no side-band.
- A ``GitUserError`` from the repository becomes ``unpack <message>`` and
  ``ng <ref> unpacker error`` for every command, so git shows it.
- With report-status(-v2) the report follows; with side-band-64k it is itself carried
  on channel 1, then a flush ends the response.
"""

from __future__ import annotations

import dataclasses

from smart_http.backend import GitRepository, ReadFn, WriteFn
from smart_http.body import RequestBody
from smart_http.errors import ProtocolError, RemoteProtocolError
from smart_http.output import DEFAULT_CHUNK, CoalescingWriter, SidebandWriter
from smart_http.requests_receive import ReceiveRequest, ReceiveRequestParser
from smart_http.responses import err_line, report_status
from storage.errors import GitUserError
from storage.model import PushContext, PushResult, RefResult


def read_commands(body: RequestBody) -> ReceiveRequest:
    parser = ReceiveRequestParser()
    while not parser.complete:
        event = body.next_event()
        if event is None:
            if parser.request.commands:
                raise RemoteProtocolError("protocol error: command list ends without a flush")
            break
        parser.feed(event)
    return parser.request


def serve_receive_pack(
    repo: GitRepository,
    read: ReadFn,
    write: WriteFn,
    context: PushContext | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> PushResult | None:
    """Answer one receive-pack request body. Returns the push result (None when nothing
    was pushed or the request was rejected before reaching the repository)."""
    out = CoalescingWriter(write, chunk_size)
    body = RequestBody(read)
    try:
        try:
            req = read_commands(body)
        except ProtocolError as exc:
            out.write(err_line(exc.git_message))
            return None
        if not req.commands:
            return None
        return _apply(repo, req, body, out, context or PushContext())
    finally:
        out.flush()


def _apply(
    repo: GitRepository, req: ReceiveRequest, body: RequestBody, out: CoalescingWriter, context: PushContext
) -> PushResult:
    caps = req.caps
    sideband = 65515 if "side-band-64k" in caps else None
    quiet = "quiet" in caps
    sb = SidebandWriter(out, sideband, progress=not quiet)
    context = dataclasses.replace(context, atomic="atomic" in caps, push_options=tuple(req.push_options))
    try:
        result = repo.receive_pack(
            req.commands,
            body.read_raw if req.expects_pack else None,
            context,
            None if quiet or sideband is None else sb.progress,
        )
    except GitUserError as exc:
        result = PushResult(str(exc) or "failed", [RefResult(c.ref, "unpacker error") for c in req.commands])
    except Exception:
        if not sb.error("receive-pack: internal server error"):
            out.write(err_line("receive-pack: internal server error"))
        raise
    if "report-status" in caps or "report-status-v2" in caps:
        report = report_status(result)
        if sideband is not None:
            sb.data(report)
            sb.flush()
        else:
            out.write(report)
    if sideband is not None:
        out.write(b"0000")
    return result
