"""Errors raised by native/ (both the C extension and its pure-Python twin).

Rules:
- Hostile input (a delta, a pack) may only ever raise these types, never crash, never
  another exception. They subclass ValueError so callers that treat "bad bytes" as a
  ValueError keep working.
- The message says what was wrong and where (offsets are pack offsets).
"""

from __future__ import annotations


class NativeError(ValueError):
    """Root of every error native/ raises on bad input."""


class DeltaError(NativeError):
    """A delta (gitformat-pack "Deltified representation") is malformed or does not fit its base."""


class PackError(NativeError):
    """A pack stream is malformed: header, entry header, zlib data, sizes or trailer."""


class TreeError(NativeError):
    """A tree object's entries are malformed; ``offset`` is where the bad entry starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


class ResolveError(NativeError):
    """Delta resolution failed; ``kind`` says how: "corrupt" (a delta does not apply, a
    collision attack), "limit" (a result exceeds max_object_size), "format" (the pack's
    bytes went bad on reading back) or "io" (they could not be read back)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
