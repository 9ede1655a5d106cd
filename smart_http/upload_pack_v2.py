"""Driver of protocol v2 upload-pack commands: ls-refs, fetch, object-info.

Rules (gitprotocol-v2):
- The body holds one or more command requests; an empty request (a lone flush) or the
  end of the body ends the exchange. A bad request gets an ``ERR`` line and ends it.
- fetch without ``done``: an acknowledgments section (ACKs of common haves or NAK, then
  ``ready`` when every want reaches a common commit and the client did not ask
  wait-for-done). Not ready: flush, the client comes back. Ready or done: optional
  shallow-info (for a deepen request, and for every fetch from a shallow repository,
  as git does) and wanted-refs sections, then ``packfile`` with the pack on side-band
  channel 1 (progress on 2 unless no-progress), then flush.
- ``sideband-all`` wraps every non-flush, non-delim line on channel 1 as well.
"""

from __future__ import annotations

from smart_http.advertise import ls_refs_lines
from smart_http.backend import GitRepository
from smart_http.body import RequestBody
from smart_http.errors import ProtocolError, RemoteProtocolError, UnsupportedRequest
from smart_http.extensions import HasHeadTarget, HasObjectSize, HasShallowRoots
from smart_http.output import CoalescingWriter
from smart_http.pack_sender import check_wants, common_haves, resolve_deepen_not, send_pack
from smart_http.pktline import NeedData, decode_pkt, pkt_text
from smart_http.requests_v2 import (
    CommandRequest,
    CommandRequestParser,
    FetchArgs,
    parse_fetch,
    parse_ls_refs,
    parse_object_info,
)
from smart_http.responses import err_line, object_info_lines, shallow_lines, v2_acknowledgments
from smart_http.sideband import MAX_DATA_64K, Channel, frame_all
from storage.model import Oid, PackRequest

DELIM_PKT = b"0001"
FLUSH_PKT = b"0000"


def read_command(body: RequestBody) -> CommandRequest | None:
    """The next request, or None at the end of the body."""
    parser = CommandRequestParser()
    first = True
    while not parser.complete:
        event = body.next_event()
        if event is None:
            if first:
                return None
            raise RemoteProtocolError("protocol error: command request ends early")
        first = False
        parser.feed(event)
    return parser.request


def serve_v2(repo: GitRepository, body: RequestBody, out: CoalescingWriter) -> None:
    while True:
        try:
            request = read_command(body)
            if request is None or request.command is None:
                return
            if request.command == "ls-refs":
                _ls_refs(repo, request, out)
            elif request.command == "fetch":
                _fetch(repo, request, out)
            else:
                _object_info(repo, request, out)
        except ProtocolError as exc:
            out.write(err_line(exc.git_message))
            return


def _ls_refs(repo: GitRepository, request: CommandRequest, out: CoalescingWriter) -> None:
    args = parse_ls_refs(request.args)
    refs = repo.list_refs()
    unborn = None
    if args.unborn and not any(r.name == "HEAD" for r in refs) and isinstance(repo, HasHeadTarget):
        unborn = repo.head_target()
    out.write(
        ls_refs_lines(refs, peel=args.peel, symrefs=args.symrefs, prefixes=args.prefixes, unborn_head=unborn)
    )


def _object_info(repo: GitRepository, request: CommandRequest, out: CoalescingWriter) -> None:
    if not isinstance(repo, HasObjectSize):
        raise UnsupportedRequest("invalid command 'object-info'")
    args = parse_object_info(request.args)
    sizes = [(oid, repo.object_size(oid) if args.size else None) for oid in args.oids]
    out.write(object_info_lines(sizes, size=args.size))


def _wrap(data: bytes, sideband_all: bool) -> bytes:
    """Re-frame each data pkt-line of ``data`` on channel 1 when sideband-all is on."""
    if not sideband_all:
        return data
    parts: list[bytes] = []
    pos = 0
    while pos < len(data):
        result = decode_pkt(data, pos)
        assert not isinstance(result, NeedData)
        event, used = result
        parts.append(frame_all(Channel.DATA, event) if isinstance(event, bytes) else data[pos : pos + 4])
        pos += used
    return b"".join(parts)


def _fetch(repo: GitRepository, request: CommandRequest, out: CoalescingWriter) -> None:
    args = parse_fetch(request.args)
    refs = repo.list_refs() if args.want_refs or args.deepen_not else []
    by_name = {r.name: r.oid for r in refs}
    wanted_refs: list[tuple[Oid, str]] = []
    for name in args.want_refs:
        oid = by_name.get(name)
        if oid is None:
            raise RemoteProtocolError(f"unknown ref {name}")
        wanted_refs.append((oid, name))
    wants = list(dict.fromkeys(args.wants + [oid for oid, _ in wanted_refs]))
    if not wants:
        raise RemoteProtocolError("fetch: no wants")
    check_wants(repo, args.wants)
    deepen_not = resolve_deepen_not(refs, args.deepen_not) if args.deepen_not else []
    common = common_haves(repo, args.haves)
    wrap = args.sideband_all
    if not args.done:
        ready = bool(common) and not args.wait_for_done and repo.ready_to_give_up(wants, common)
        out.write(_wrap(v2_acknowledgments(common, ready), wrap))
        if not ready:
            out.write(FLUSH_PKT)
            return
        out.write(DELIM_PKT)
    pack_request = _pack_request(args, wants, common, deepen_not)
    shallow = None
    if pack_request.is_shallow_request or (isinstance(repo, HasShallowRoots) and repo.shallow_roots()):
        shallow = repo.shallow_update(pack_request)
        out.write(_wrap(pkt_text("shallow-info") + shallow_lines(shallow), wrap) + DELIM_PKT)
    if wanted_refs:
        lines = b"".join(pkt_text(f"{oid.hex()} {name}") for oid, name in wanted_refs)
        out.write(_wrap(pkt_text("wanted-refs") + lines, wrap) + DELIM_PKT)
    out.write(_wrap(pkt_text("packfile"), wrap))
    send_pack(repo, pack_request, shallow, out, sideband_max=MAX_DATA_64K, progress=not args.no_progress)


def _pack_request(args: FetchArgs, wants: list[Oid], common: list[Oid], deepen_not: list[Oid]) -> PackRequest:
    return PackRequest(
        wants=wants,
        haves=common,
        client_shallows=args.client_shallows,
        depth=args.depth,
        deepen_since=args.deepen_since,
        deepen_not=deepen_not,
        deepen_relative=args.deepen_relative,
        filter=args.filter,
        ofs_delta=args.ofs_delta,
        thin_pack=args.thin_pack,
        include_tag=args.include_tag,
    )
