"""Driver of one POST to ``git-receive-pack``.

How it goes (gitprotocol-pack "Pushing Data To a Server", "Report Status"):
- Parse the command list (and push options when negotiated). A bad request gets an
  ``ERR`` pkt-line; an empty one gets an empty answer.
- Hand the rest of the body, the pack, to ``repo.receive_pack`` as a ``ReadFn`` (None
  when every command is a delete). Progress goes to side-band channel 2 unless the
  client said ``quiet`` or has no side-band.
- ``GitLimits``: past ``max_pkt_lines`` the request is refused while the command list is
  read; a push of more than ``max_ref_updates`` commands is refused with ``unpack <why>``
  and ``ng <ref> too many ref updates`` before its pack is read; the pack is read
  through a ``LimitedReader``, so a pack past ``max_pack_bytes`` stops being read and
  fails as an unpack error.
- A refused command list is answered on side-band channel 3 when the client asked for
  side-band-64k (git reads every answer through its demultiplexer then, and would take
  an ``ERR`` line for a bad band), else with an ``ERR`` line.
- A ``GitUserError`` from the repository becomes ``unpack <message>`` and
  ``ng <ref> unpacker error`` for every command, so git shows it.
- With report-status(-v2) the report follows; with side-band-64k it is itself carried
  on channel 1, then a flush ends the response.
"""

from __future__ import annotations

import dataclasses

from smart_http.backend import GitRepository, ReadFn, WriteFn
from smart_http.body import RequestBody
from smart_http.capabilities import ClientCaps
from smart_http.errors import ProtocolError, RemoteProtocolError
from smart_http.limits import GitLimits, LimitedReader
from smart_http.output import DEFAULT_CHUNK, CoalescingWriter, SidebandWriter
from smart_http.requests_receive import MAX_COMMANDS, ReceiveRequest, ReceiveRequestParser
from smart_http.responses import err_line, report_status
from storage.errors import GitUserError
from storage.model import PushContext, PushResult, RefResult


def read_commands(body: RequestBody, parser: ReceiveRequestParser | None = None) -> ReceiveRequest:
    parser = parser or ReceiveRequestParser()
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
    limits: GitLimits | None = None,
) -> PushResult | None:
    """Answer one receive-pack request body. Returns the push result (None when nothing
    was pushed or the request was rejected before reaching the repository)."""
    limits = limits or GitLimits()
    out = CoalescingWriter(write, chunk_size)
    body = RequestBody(read, max_lines=limits.max_pkt_lines)
    parser = ReceiveRequestParser(max(MAX_COMMANDS, limits.max_ref_updates))
    try:
        try:
            req = read_commands(body, parser)
        except ProtocolError as exc:
            if not SidebandWriter(out, _sideband(parser.request.caps), progress=False).error(exc.git_message):
                out.write(err_line(exc.git_message))
            return None
        if not req.commands:
            return None
        if len(req.commands) > limits.max_ref_updates:
            why = f"push updates {len(req.commands)} refs, the server's limit is {limits.max_ref_updates}"
            result = PushResult(why, [RefResult(c.ref, "too many ref updates") for c in req.commands])
            _report(req, result, out)
            return result
        return _apply(repo, req, body, out, context or PushContext(), limits)
    finally:
        out.flush()


def _apply(
    repo: GitRepository,
    req: ReceiveRequest,
    body: RequestBody,
    out: CoalescingWriter,
    context: PushContext,
    limits: GitLimits,
) -> PushResult:
    caps = req.caps
    sideband = _sideband(caps)
    quiet = "quiet" in caps
    sb = SidebandWriter(out, sideband, progress=not quiet)
    context = dataclasses.replace(context, atomic="atomic" in caps, push_options=tuple(req.push_options))
    try:
        result = repo.receive_pack(
            req.commands,
            LimitedReader(body.read_raw, limits.max_pack_bytes).read if req.expects_pack else None,
            context,
            None if quiet or sideband is None else sb.progress,
        )
    except GitUserError as exc:
        result = PushResult(str(exc) or "failed", [RefResult(c.ref, "unpacker error") for c in req.commands])
    except ProtocolError as exc:  # the body broke off or stalled (asgi): say why, if anyone listens
        if not sb.error(exc.git_message):
            out.write(err_line(exc.git_message))
        raise
    except Exception:
        if not sb.error("receive-pack: internal server error"):
            out.write(err_line("receive-pack: internal server error"))
        raise
    _report(req, result, out, sb)
    return result


def _sideband(caps: ClientCaps) -> int | None:
    return 65515 if "side-band-64k" in caps else None


def _report(
    req: ReceiveRequest, result: PushResult, out: CoalescingWriter, sb: SidebandWriter | None = None
) -> None:
    """Write the report-status (when asked for) and, with side-band, the closing flush."""
    sideband = _sideband(req.caps)
    sb = sb or SidebandWriter(out, sideband, progress=False)
    if "report-status" in req.caps or "report-status-v2" in req.caps:
        report = report_status(result)
        if sideband is not None:
            sb.data(report)
            sb.flush()
        else:
            out.write(report)
    if sideband is not None:
        out.write(b"0000")
