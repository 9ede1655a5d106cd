"""A request body read as pkt-line events, then (for a push) as raw bytes.

Rules:
- Reads the body through a ``ReadFn`` in bounded pieces; never reads it all ahead.
- ``next_event()`` returns None at a clean end of body; a body that ends inside a
  pkt-line raises RemoteProtocolError.
- ``read_raw(n)`` first returns bytes already buffered by the pkt-line reader, then
  reads on: this is how the pack that follows a receive-pack command list is handed on.
- ``limit`` bounds how many bytes may be read as pkt-lines (the pack is not counted);
  ``max_lines`` bounds how many pkt-lines (flush and delim included) one request may
  carry. Both raise RemoteProtocolError with status 413.
"""

from __future__ import annotations

from smart_http.backend import ReadFn
from smart_http.errors import RemoteProtocolError
from smart_http.pktline import NEED_DATA, Event, PktLineReader

READ_SIZE = 65536
DEFAULT_LIMIT = 64 << 20


class RequestBody:
    def __init__(self, read: ReadFn, *, limit: int = DEFAULT_LIMIT, max_lines: int | None = None) -> None:
        self._read = read
        self._max_lines = max_lines
        self._lines = 0
        self._reader = PktLineReader()
        self._eof = False
        self._limit = limit
        self._consumed = 0
        self._rest: bytes | None = None

    def next_event(self) -> Event | None:
        while True:
            event = self._reader.next_event()
            if event is not NEED_DATA:
                self._lines += 1
                if self._max_lines is not None and self._lines > self._max_lines:
                    raise RemoteProtocolError(
                        f"request has more than {self._max_lines} pkt-lines (the server's limit)",
                        http_status=413,
                    )
                return event
            if self._eof:
                return None
            data = self._read(READ_SIZE)
            self._consumed += len(data)
            if self._consumed > self._limit:
                raise RemoteProtocolError("request too large", http_status=413)
            self._reader.feed(data)
            if not data:
                self._eof = True

    def read_raw(self, n: int) -> bytes:
        if self._rest is None:
            self._rest = self._reader.take_rest()
        if self._rest:
            data, self._rest = self._rest[:n], self._rest[n:]
            return data
        if self._eof:
            return b""
        data = self._read(n)
        if not data:
            self._eof = True
        return data
