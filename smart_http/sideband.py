"""Side-band multiplexing (gitprotocol-pack "Packfile Data", gitprotocol-v2 packfile section).

Rules:
- Each packet is a pkt-line whose first payload byte is the channel: 1 pack data,
  2 progress, 3 fatal error.
- side-band-64k carries at most 65515 bytes of data per packet (65520 - 4 - 1, what git
  itself sends); the old side-band at most 995 (1000 - 4 - 1).
- ``frame`` splits long data into as many packets as needed; empty data yields nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Final

from smart_http.errors import LocalProtocolError

MAX_DATA_64K: Final = 65515
MAX_DATA_SMALL: Final = 995


class Channel(enum.IntEnum):
    DATA = 1
    PROGRESS = 2
    ERROR = 3


def frame(
    channel: Channel, data: bytes | bytearray | memoryview, max_data: int = MAX_DATA_64K
) -> Iterator[bytes]:
    """Yield side-band packets carrying ``data`` on ``channel``."""
    if not 0 < max_data <= MAX_DATA_64K:
        raise LocalProtocolError(f"bad side-band packet size {max_data}")
    prefix = bytes([channel])
    view = memoryview(data)
    for start in range(0, len(view), max_data):
        chunk = view[start : start + max_data]
        yield b"%04x" % (len(chunk) + 5) + prefix + bytes(chunk)


def frame_all(channel: Channel, data: bytes, max_data: int = MAX_DATA_64K) -> bytes:
    return b"".join(frame(channel, data, max_data))
