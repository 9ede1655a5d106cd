"""Request parsers: real requests captured with GIT_TRACE_PACKET (git 2.39), edge cases,
and Hypothesis proofs that any event sequence only raises RemoteProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_http.errors import ProtocolError, RemoteProtocolError
from smart_http.pktline import DELIM, FLUSH, RESPONSE_END, Event, PktLineReader, pkt, pkt_text
from smart_http.requests_receive import ReceiveRequestParser
from smart_http.requests_v0 import UploadRequestParser
from smart_http.requests_v2 import CommandRequestParser, parse_fetch, parse_ls_refs, parse_object_info
from storage.model import ZERO_OID, FilterSpec

A = "988293fc5e87e809e4cfa30172184bf60434fd80"
B = "16ee275c374206c4a8d1bc0168a4355e469fcc4b"

# captured from `git fetch --deepen 1` (protocol v0), the final round
V0_DEEPEN = (
    pkt_text(
        f"want {A} multi_ack_detailed no-done side-band-64k deepen-relative thin-pack no-progress "
        "include-tag ofs-delta deepen-since deepen-not agent=git/2.39.5"
    )
    + pkt_text(f"shallow {A}")
    + pkt_text("deepen 1")
    + b"0000"
    + pkt_text(f"have {A}")
    + pkt_text("done")
)


def events(wire: bytes) -> list[Event]:
    r = PktLineReader()
    r.feed(wire)
    r.feed(b"")
    out: list[Event] = []
    while True:
        ev = r.next_event()
        if not isinstance(ev, bytes | type(FLUSH)):
            return out
        out.append(ev)  # type: ignore[arg-type]


def test_v0_captured_deepen_round() -> None:
    p = UploadRequestParser()
    for ev in events(V0_DEEPEN):
        p.feed(ev)
    req = p.finish()
    assert req.wants == [bytes.fromhex(A)] and req.haves == [bytes.fromhex(A)]
    assert req.done and req.negotiates and req.depth == 1
    assert "deepen-relative" in req.caps and req.caps.agent == "git/2.39.5"
    assert req.caps.sideband_max == 65515
    assert req.pack_request([], []).deepen_relative


def test_v0_want_list_only_does_not_negotiate() -> None:
    p = UploadRequestParser()
    for ev in events(pkt_text(f"want {A} shallow") + pkt_text("deepen 1") + b"0000"):
        p.feed(ev)
    req = p.finish()
    assert not req.negotiates and not req.done


@pytest.mark.parametrize(
    "wire",
    [
        pkt_text(f"have {A}"),  # have before want
        pkt_text(f"want {A} bogus-cap") + b"0000",
        pkt_text(f"want {A} side-band side-band-64k") + b"0000",
        pkt_text(f"want {A}") + pkt_text(f"want {B} ofs-delta") + b"0000",
        pkt_text(f"want {A[:39]}") + b"0000",
        pkt_text(f"want {A}") + pkt_text("deepen 1") + pkt_text("deepen-since 5") + b"0000",
        pkt_text(f"want {A}") + pkt_text("filter sparse:oid=x") + b"0000",
        pkt_text(f"want {A}") + b"0000" + pkt_text("done") + pkt_text(f"have {A}"),
        pkt_text(f"want {A}") + b"0001",
    ],
)
def test_v0_rejects(wire: bytes) -> None:
    p = UploadRequestParser()
    with pytest.raises(RemoteProtocolError):
        for ev in events(wire):
            p.feed(ev)
        p.finish()


def test_v0_filter_and_deepen_not() -> None:
    p = UploadRequestParser()
    for ev in events(
        pkt_text(f"want {A} filter") + pkt_text("filter blob:limit=1k") + pkt_text("deepen-not v1") + b"0000"
    ):
        p.feed(ev)
    req = p.finish()
    assert req.filter == FilterSpec("blob:limit", 1024) and req.deepen_not == ["v1"]


def test_v2_fetch_request() -> None:
    wire = (
        pkt_text("command=fetch")
        + pkt_text("agent=git/2.39.5")
        + pkt_text("object-format=sha1")
        + pkt_text("server-option=ci.skip")
        + b"0001"
        + pkt_text("thin-pack")
        + pkt_text("ofs-delta")
        + pkt_text(f"want {A}")
        + pkt_text(f"have {B}")
        + pkt_text("deepen 3")
        + pkt_text("filter tree:0")
        + pkt_text("want-ref refs/heads/main")
        + pkt_text("packfile-uris https")
        + pkt_text("done")
        + b"0000"
    )
    p = CommandRequestParser()
    for ev in events(wire):
        p.feed(ev)
    assert p.complete and p.request.command == "fetch" and p.request.server_options == ["ci.skip"]
    args = parse_fetch(p.request.args)
    assert args.done and args.thin_pack and args.ofs_delta and args.depth == 3
    assert args.filter == FilterSpec("tree", 0) and args.want_refs == ["refs/heads/main"]


def test_v2_ls_refs_and_object_info() -> None:
    ls = parse_ls_refs([b"peel", b"symrefs", b"unborn", b"ref-prefix refs/heads/"])
    assert ls.peel and ls.symrefs and ls.unborn and ls.prefixes == ("refs/heads/",)
    oi = parse_object_info([b"size", f"oid {A}".encode()])
    assert oi.size and oi.oids == (bytes.fromhex(A),)


@pytest.mark.parametrize(
    "wire",
    [
        pkt_text("command=push") + b"0000",
        pkt_text("fetch") + b"0000",
        pkt_text("command=fetch") + pkt_text("bogus=1") + b"0000",
        pkt_text("command=fetch") + pkt_text("object-format=sha256") + b"0000",
        pkt_text("command=ls-refs") + b"0001" + b"0001",
        pkt_text("command=ls-refs") + b"0002",
    ],
)
def test_v2_rejects(wire: bytes) -> None:
    p = CommandRequestParser()
    with pytest.raises(RemoteProtocolError):
        for ev in events(wire):
            p.feed(ev)


@pytest.mark.parametrize(
    "args",
    [
        [b"want xyz"],
        [b"deepen 1", b"deepen-not main"],
        [b"frobnicate"],
        [b"deepen -1"],
        [b"deepen 99999999999999999999"],
    ],
)
def test_v2_fetch_rejects(args: list[bytes]) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_fetch(args)


def test_receive_commands_options_and_caps() -> None:
    wire = (
        pkt(
            f"{'0' * 40} {A} refs/heads/main\0 report-status-v2 side-band-64k atomic push-options quiet "
            "object-format=sha1 agent=git/2.39.5\n".encode()
        )
        + pkt_text(f"{B} {'0' * 40} refs/heads/old")
        + b"0000"
        + pkt_text("ci.skip")
        + b"0000"
    )
    p = ReceiveRequestParser()
    for ev in events(wire):
        p.feed(ev)
    req = p.request
    assert p.complete and [c.ref for c in req.commands] == ["refs/heads/main", "refs/heads/old"]
    assert req.commands[0].old == ZERO_OID and req.commands[1].is_delete
    assert "atomic" in req.caps and req.push_options == ["ci.skip"] and req.expects_pack


@pytest.mark.parametrize(
    "line",
    [
        f"{'0' * 40} {'0' * 40} refs/heads/x",
        f"{A} {B} refs/heads/a..b",
        f"{A} {B} HEAD",
        f"{A} {B} refs/heads/x.lock",
        f"{A} {B}",
        f"{A} {B} refs/heads/x\0push-cert=1",
        "push-cert\0report-status",
    ],
)
def test_receive_rejects(line: str) -> None:
    p = ReceiveRequestParser()
    with pytest.raises(RemoteProtocolError):
        p.feed(line.encode() + b"\n")


def test_receive_duplicate_ref() -> None:
    p = ReceiveRequestParser()
    p.feed(f"{A} {B} refs/heads/x\0report-status\n".encode())
    with pytest.raises(RemoteProtocolError):
        p.feed(f"{B} {A} refs/heads/x\n".encode())
    assert len(p.request.commands) == 1


_lines = st.one_of(
    st.sampled_from([FLUSH, DELIM, RESPONSE_END]),
    st.binary(min_size=1, max_size=120),
    st.sampled_from(
        [
            f"want {A} multi_ack_detailed side-band-64k".encode(),
            f"want {B}\n".encode(),
            f"have {A}\n".encode(),
            b"done\n",
            b"deepen 2\n",
            b"deepen-since 100\n",
            b"filter blob:none\n",
            f"shallow {B}\n".encode(),
            b"command=fetch\n",
            b"command=ls-refs\n",
            b"agent=x\n",
            f"{'0' * 40} {A} refs/heads/main\0report-status push-options\n".encode(),
            f"{A} {B} refs/heads/dev\n".encode(),
        ]
    ),
)


@settings(max_examples=400)
@given(st.lists(_lines, max_size=12))
def test_parsers_raise_only_protocol_errors(seq: list[Event]) -> None:
    for parser in (UploadRequestParser(), CommandRequestParser(), ReceiveRequestParser()):
        try:
            for ev in seq:
                parser.feed(ev)
            if isinstance(parser, UploadRequestParser):
                parser.finish()
            if isinstance(parser, CommandRequestParser):
                args = parser.request.args
                for fn in (parse_fetch, parse_ls_refs, parse_object_info):
                    try:
                        fn(args)
                    except RemoteProtocolError:
                        pass
        except RemoteProtocolError:
            pass
        except ProtocolError:  # pragma: no cover - would be a bug
            raise
