"""pkt-line and side-band framing, including Hypothesis proofs that hostile input only
raises RemoteProtocolError, fed whole and byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_http.errors import LocalProtocolError, RemoteProtocolError
from smart_http.pktline import (
    DELIM,
    FLUSH,
    MAX_PKT_LEN,
    NEED_DATA,
    RESPONSE_END,
    NeedData,
    PktLineReader,
    decode_pkt,
    pkt,
    pkt_text,
    strip_lf,
)
from smart_http.sideband import MAX_DATA_64K, MAX_DATA_SMALL, Channel, frame_all


def test_docs_examples() -> None:
    assert decode_pkt(b"0006a\n") == (b"a\n", 6)
    assert decode_pkt(b"0005a") == (b"a", 5)
    assert decode_pkt(b"000bfoobar\n") == (b"foobar\n", 11)
    assert pkt(b"a\n") == b"0006a\n"
    assert pkt_text("foobar") == b"000bfoobar\n"


def test_specials() -> None:
    assert decode_pkt(b"0000") == (FLUSH, 4)
    assert decode_pkt(b"0001") == (DELIM, 4)
    assert decode_pkt(b"0002rest") == (RESPONSE_END, 4)


@pytest.mark.parametrize("prefix", [b"0003", b"0004", b"+005", b" 005", b"00x5", b"-001", b"fff1", b"ffff"])
def test_invalid_lengths(prefix: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_pkt(prefix + b"x" * 10)


def test_uppercase_hex_is_accepted_like_git() -> None:
    assert decode_pkt(b"000Aabcdef") == (b"abcdef", 10)


def test_need_data() -> None:
    assert decode_pkt(b"00") == NeedData(2)
    assert decode_pkt(b"0009abc") == NeedData(2)
    assert decode_pkt(b"xx0005a", 2) == (b"a", 5)


def test_max_length() -> None:
    line = b"%04x" % MAX_PKT_LEN + b"x" * (MAX_PKT_LEN - 4)
    assert decode_pkt(line) == (b"x" * (MAX_PKT_LEN - 4), MAX_PKT_LEN)
    with pytest.raises(LocalProtocolError):
        pkt(b"x" * (MAX_PKT_LEN - 3))
    with pytest.raises(LocalProtocolError):
        pkt(b"")


def test_strip_lf() -> None:
    assert strip_lf(b"done\n") == strip_lf(b"done") == b"done"


def test_reader_incremental_and_rest() -> None:
    r = PktLineReader()
    data = b"0009hello0000PACKrest"
    for b in data[:6]:
        r.feed(bytes([b]))
    assert r.next_event() is NEED_DATA
    r.feed(data[6:])
    assert r.next_event() == b"hello"
    assert r.next_event() is FLUSH
    assert r.take_rest() == b"PACKrest"


def test_reader_truncated_at_eof() -> None:
    r = PktLineReader()
    r.feed(b"0009hel")
    r.feed(b"")
    with pytest.raises(RemoteProtocolError):
        r.next_event()


def test_sideband_limits() -> None:
    data = b"x" * (MAX_DATA_64K + 1)
    framed = frame_all(Channel.DATA, data)
    first = decode_pkt(framed)
    assert not isinstance(first, NeedData)
    assert first[1] == MAX_PKT_LEN and first[0][:1] == b"\x01"
    small = frame_all(Channel.PROGRESS, b"y" * 2000, MAX_DATA_SMALL)
    assert small[:5] == b"03e8\x02"
    assert frame_all(Channel.ERROR, b"") == b""


@given(
    st.lists(st.one_of(st.binary(min_size=1, max_size=300), st.sampled_from([FLUSH, DELIM, RESPONSE_END])))
)
def test_roundtrip(events: list[object]) -> None:
    wire = b"".join(pkt(e) if isinstance(e, bytes) else e.value for e in events)  # type: ignore[attr-defined]
    r = PktLineReader()
    for i in range(len(wire)):
        r.feed(wire[i : i + 1])
    r.feed(b"")
    got = []
    while (ev := r.next_event()) is not NEED_DATA:
        got.append(ev)
    assert got == events and r.at_eof


@settings(max_examples=300)
@given(st.binary(max_size=200), st.booleans())
def test_hostile_input_raises_only_protocol_error(data: bytes, bytewise: bool) -> None:
    r = PktLineReader()
    try:
        pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
        for piece in [*pieces, b""]:
            r.feed(piece)
            while r.next_event() is not NEED_DATA:
                pass
    except RemoteProtocolError:
        pass
