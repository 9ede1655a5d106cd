"""Response output for the drivers: coalescing and side-band writers.

Rules:
- ``CoalescingWriter`` gathers small writes and passes them on in pieces of about
  ``chunk`` bytes (default 64 KiB; upload-pack uses ``PACK_CHUNK``, 256 KiB, so a clone
  crosses from its worker thread to the event loop once per 256 KiB), so the ASGI bridge
  crosses threads rarely; it never holds more than one piece, so a pack is streamed, not
  buffered.
- ``SidebandWriter.data`` frames whole packets straight from the caller's buffer (a
  memoryview); only a partial packet's tail is staged.
- ``SidebandWriter`` frames pack bytes on channel 1, progress on 2 (dropped when the
  client said no-progress) and errors on 3; without side-band, pack bytes go raw and
  progress is dropped. Progress is flushed through at once, so it arrives while the
  work it reports is going on.
"""

from __future__ import annotations

from collections.abc import Callable

from smart_http.sideband import Channel, frame

DEFAULT_CHUNK = 65536
PACK_CHUNK = 256 * 1024


class CoalescingWriter:
    def __init__(self, sink: Callable[[bytes], None], chunk: int = DEFAULT_CHUNK) -> None:
        self._sink = sink
        self._chunk = chunk
        self._parts: list[bytes] = []
        self._size = 0
        self.bytes_written = 0

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.bytes_written += len(data)
        if not self._parts and len(data) >= self._chunk:
            self._sink(bytes(data))
            return
        self._parts.append(bytes(data))
        self._size += len(data)
        if self._size >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            self._sink(data)


class SidebandWriter:
    """Multiplexes the pack stream for a client; ``max_data`` None means no side-band.

    Pack bytes are gathered until a full packet's worth is there, so many small writes
    from a pack writer do not become many tiny packets; ``flush`` frames what is left
    (call it before anything else is written on the response)."""

    def __init__(self, out: CoalescingWriter, max_data: int | None, *, progress: bool) -> None:
        self._out = out
        self._max = max_data
        self._progress = progress and max_data is not None
        self._pending = bytearray()

    def data(self, data: bytes | memoryview) -> None:
        if self._max is None:
            self._out.write(data)
            return
        view = memoryview(data)
        if self._pending:  # top up the partial packet first
            take = self._max - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < self._max:
                return
            for packet in frame(Channel.DATA, self._pending, self._max):
                self._out.write(packet)
            self._pending.clear()
        full = len(view) - len(view) % self._max
        if full:  # whole packets straight from the caller's buffer, no staging copy
            for packet in frame(Channel.DATA, view[:full], self._max):
                self._out.write(packet)
        self._pending += view[full:]

    def flush(self) -> None:
        if self._pending and self._max is not None:
            for packet in frame(Channel.DATA, bytes(self._pending), self._max):
                self._out.write(packet)
            self._pending.clear()

    def progress(self, message: str) -> None:
        if self._progress and message:
            assert self._max is not None
            self.flush()
            for packet in frame(Channel.PROGRESS, message.encode("utf-8", "replace"), self._max):
                self._out.write(packet)
            # a user watches progress: pass it on now, not with the next 64 KiB of pack
            self._out.flush()

    def error(self, message: str) -> bool:
        """Send a fatal error on channel 3; False when there is no side-band to carry it."""
        if self._max is None:
            return False
        self.flush()
        text = message if message.endswith("\n") else message + "\n"
        for packet in frame(Channel.ERROR, text.encode("utf-8", "replace"), self._max):
            self._out.write(packet)
        return True
