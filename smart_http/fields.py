"""Parsers for the fields inside request lines: object ids, ref names, numbers.

Rules:
- Object ids are 40 hex digits on the wire (either case, per gitprotocol-pack) and raw
  20-byte ``bytes`` once parsed.
- Ref names follow git-check-ref-format (gitprotocol-common "refname"), checked here so a
  hostile name never reaches storage.
- Every failure raises RemoteProtocolError naming the offending field.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

from smart_http.errors import RemoteProtocolError

_HEX40: Final = re.compile(rb"[0-9a-fA-F]{40}\Z")
_BAD_REF_CHARS: Final = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
MAX_NUMBER: Final = 1 << 62


def parse_oid(text: bytes, what: str = "object id") -> bytes:
    """Raw object id from 40 hex digits. Raises RemoteProtocolError."""
    if not _HEX40.match(text):
        raise RemoteProtocolError(f"protocol error: expected {what}, got {text[:60]!r}")
    return binascii.unhexlify(text)


def parse_number(text: bytes, what: str) -> int:
    """A non-negative decimal number. Raises RemoteProtocolError."""
    if not text.isdigit() or len(text) > 18:
        raise RemoteProtocolError(f"protocol error: bad {what} {text[:60]!r}")
    value = int(text)
    if value >= MAX_NUMBER:
        raise RemoteProtocolError(f"protocol error: {what} too large")
    return value


def is_valid_refname(name: str) -> bool:
    """git check-ref-format rules for a full ref name (``refs/...``)."""
    if not name.startswith("refs/") or len(name) > 4096:
        return False
    if _BAD_REF_CHARS.search(name) or ".." in name or "@{" in name:
        return False
    if name.endswith(("/", ".", ".lock")):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/"))


def parse_refname(text: bytes) -> str:
    """A ref name from the wire. Raises RemoteProtocolError."""
    try:
        name = text.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("protocol error: ref name is not UTF-8") from None
    if not is_valid_refname(name):
        raise RemoteProtocolError(f"invalid ref name {name[:200]!r}")
    return name


def decode_text(text: bytes, what: str) -> str:
    """A UTF-8 text argument. Raises RemoteProtocolError."""
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"protocol error: {what} is not UTF-8") from None
