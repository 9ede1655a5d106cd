"""pkt-line framing (gitprotocol-common, gitprotocol-v2): decode and encode.

Rules:
- A pkt-line starts with exactly four hexadecimal digits giving the total length,
  prefix included. Digits are ``0-9a-f`` (git's reader also takes ``A-F``, so we do);
  anything else (``+``, space, ``x``) is rejected, never handed to ``int()``.
- ``0000`` flush, ``0001`` delim, ``0002`` response-end. ``0003`` is invalid, and so is
  ``0004`` (an empty line: the docs say SHOULD NOT send, and no git client does).
- The longest line is 65520 bytes (65516 of payload).
- ``decode_pkt`` is a pure function over a buffer: a complete event and the number of
  bytes it used, or ``NeedData(n)``: at least n more bytes are needed to decide.
- ``PktLineReader`` is the incremental form: ``feed(bytes)``, ``next_event()`` returns an
  event or ``NEED_DATA``; ``take_rest()`` hands back the bytes not yet consumed (a
  receive-pack request switches from pkt-lines to a raw pack stream).
- Data events are plain ``bytes``; the special packets are ``Special`` members.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from smart_http.errors import LocalProtocolError, RemoteProtocolError

MAX_PKT_LEN: Final = 65520
MAX_PAYLOAD: Final = MAX_PKT_LEN - 4

_HEX_VALUES: Final = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}


class Special(enum.Enum):
    FLUSH = b"0000"
    DELIM = b"0001"
    RESPONSE_END = b"0002"


FLUSH: Final = Special.FLUSH
DELIM: Final = Special.DELIM
RESPONSE_END: Final = Special.RESPONSE_END

Event = bytes | Special


@dataclass(frozen=True, slots=True)
class NeedData:
    """The buffer holds no complete pkt-line; at least ``more`` bytes are missing."""

    more: int


class _NeedDataSentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedDataSentinel.NEED_DATA

_SPECIALS: Final = {0: FLUSH, 1: DELIM, 2: RESPONSE_END}


def parse_length(prefix: bytes | bytearray | memoryview) -> int:
    """Value of a 4-byte pkt-len prefix. Raises RemoteProtocolError unless it is 4 hex digits."""
    if len(prefix) != 4:
        raise RemoteProtocolError("protocol error: short pkt-line length")
    value = 0
    for c in bytes(prefix):
        digit = _HEX_VALUES.get(c)
        if digit is None:
            raise RemoteProtocolError(f"protocol error: bad line length character: {bytes(prefix)!r}")
        value = value * 16 + digit
    return value


def decode_pkt(buf: bytes | bytearray | memoryview, start: int = 0) -> tuple[Event, int] | NeedData:
    """Decode one pkt-line from ``buf[start:]``.

    Returns ``(event, consumed)`` where ``consumed`` counts the prefix too, or
    ``NeedData(n)``. Raises RemoteProtocolError on an invalid length."""
    avail = len(buf) - start
    if avail < 4:
        return NeedData(4 - avail)
    length = parse_length(buf[start : start + 4])
    special = _SPECIALS.get(length)
    if special is not None:
        return special, 4
    if length <= 4:
        raise RemoteProtocolError(f"protocol error: bad line length {length}")
    if length > MAX_PKT_LEN:
        raise RemoteProtocolError(f"protocol error: bad line length {length} (max {MAX_PKT_LEN})")
    if avail < length:
        return NeedData(length - avail)
    return bytes(buf[start + 4 : start + length]), length


class PktLineReader:
    """Incremental pkt-line decoder: feed bytes in, take events out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    def feed(self, data: bytes) -> None:
        """Append received bytes; ``b""`` marks the end of input."""
        if not data:
            self._eof = True
            return
        if self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def at_eof(self) -> bool:
        """True when input ended and every byte was consumed."""
        return self._eof and self._pos == len(self._buf)

    def next_event(self) -> Event | _NeedDataSentinel:
        """The next complete event, or NEED_DATA. Raises RemoteProtocolError on bad framing
        or when input ended in the middle of a pkt-line."""
        result = decode_pkt(self._buf, self._pos)
        if isinstance(result, NeedData):
            if self._eof and self._pos < len(self._buf):
                raise RemoteProtocolError("protocol error: input ends inside a pkt-line")
            return NEED_DATA
        event, used = result
        self._pos += used
        return event

    def take_rest(self) -> bytes:
        """Remove and return every byte fed but not yet consumed."""
        rest = bytes(self._buf[self._pos :])
        self._buf = bytearray()
        self._pos = 0
        return rest


def pkt(payload: bytes) -> bytes:
    """Frame one data pkt-line. Raises LocalProtocolError if empty or too long."""
    n = len(payload)
    if n == 0 or n > MAX_PAYLOAD:
        raise LocalProtocolError(f"cannot frame a pkt-line of {n} bytes")
    return b"%04x" % (n + 4) + payload


def pkt_text(text: str | bytes) -> bytes:
    """Frame one line of text, adding the LF."""
    data = text.encode() if isinstance(text, str) else text
    return pkt(data + b"\n")


def strip_lf(payload: bytes) -> bytes:
    """Receivers treat a text line the same with or without its trailing LF."""
    return payload[:-1] if payload.endswith(b"\n") else payload
