"""Driver of one protocol v0/v1 upload-pack POST (stateless RPC).

How a round goes (gitprotocol-pack "Packfile Negotiation", gitprotocol-capabilities
multi_ack, multi_ack_detailed, no-done):
- Parse the whole request first (wants, shallow/deepen, filter, haves, flush or done).
- With a deepen request, answer the shallow-update (shallow/unshallow lines, flush).
  A body that ends right after the want-list gets only that (git's fetch-pack asks
  for the shallow list alone first, and reads no ACK/NAK for it).
- For each have we also have: ``ACK <id> common`` (multi_ack_detailed),
  ``ACK <id> continue`` (multi_ack), or a single ``ACK <id>`` for the first (neither).
- On ``done``: ``ACK <last common>`` (multi_ack*) or ``NAK`` when nothing is common,
  then the pack.
- On flush: ``ACK <last> ready`` when every want reaches a common commit
  (multi_ack_detailed), then ``NAK`` (multi_ack*, or nothing common). With no-done and
  ready, ``ACK <last>`` and the pack follow at once; otherwise the response ends and the
  client comes back with another POST.
"""

from __future__ import annotations

from smart_http.backend import GitRepository
from smart_http.body import RequestBody
from smart_http.errors import ProtocolError
from smart_http.output import CoalescingWriter
from smart_http.pack_sender import check_wants, common_haves, resolve_deepen_not, send_pack
from smart_http.requests_v0 import UploadRequest, UploadRequestParser
from smart_http.responses import ack, err_line, nak, shallow_lines


def read_request(body: RequestBody) -> UploadRequest:
    parser = UploadRequestParser()
    while not parser.complete:
        event = body.next_event()
        if event is None:
            return parser.finish()
        parser.feed(event)
    return parser.request


def serve_v0(repo: GitRepository, body: RequestBody, out: CoalescingWriter) -> None:
    try:
        req = read_request(body)
        if not req.wants:
            return
        check_wants(repo, req.wants)
        deepen_not = resolve_deepen_not(repo.list_refs(), req.deepen_not) if req.deepen_not else []
    except ProtocolError as exc:
        out.write(err_line(exc.git_message))
        return
    caps = req.caps
    mode = 2 if "multi_ack_detailed" in caps else 1 if "multi_ack" in caps else 0
    pack_request = req.pack_request([], deepen_not)
    shallow = None
    if pack_request.is_shallow_request:
        shallow = repo.shallow_update(pack_request)
        out.write(shallow_lines(shallow) + b"0000")
    if not req.negotiates:
        return

    common = common_haves(repo, req.haves)
    for i, oid in enumerate(common):
        if mode == 2:
            out.write(ack(oid, "common"))
        elif mode == 1:
            out.write(ack(oid, "continue"))
        elif i == 0:
            out.write(ack(oid))
    if req.done:
        if not common:
            out.write(nak())
        elif mode:
            out.write(ack(common[-1]))
    else:
        ready = mode == 2 and bool(common) and repo.ready_to_give_up(pack_request.wants, common)
        if ready:
            out.write(ack(common[-1], "ready"))
        if mode or not common:
            out.write(nak())
        if not (ready and "no-done" in caps):
            return
        out.write(ack(common[-1]))
    pack_request.haves = common
    send_pack(
        repo,
        pack_request,
        shallow,
        out,
        sideband_max=caps.sideband_max,
        progress="no-progress" not in caps,
    )
