"""Serializers of server responses: v0 ACK/NAK and shallow-update, v2 fetch sections,
object-info, report-status(-v2) and ERR lines.

Rules:
- Pure functions returning bytes; every line ends in LF except ``shallow`` and
  ``unshallow``, which git's upload-pack writes without one (``send_shallow``,
  ``send_unshallow``) and libgit2 only parses that way.
- report-status-v2 is report-status plus optional ``option`` lines; we never rewrite
  refs, so both serialize the same ``ok``/``ng`` lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from smart_http.pktline import pkt, pkt_text
from storage.model import Oid, PushResult, ShallowUpdate

FLUSH_PKT = b"0000"
DELIM_PKT = b"0001"


def err_line(message: str) -> bytes:
    """An ``ERR`` pkt-line; git shows it as ``remote error: <message>``."""
    data = ("ERR " + message).encode("utf-8", "replace")[:1000]
    return pkt(data + b"\n")


def ack(oid: Oid, status: str = "") -> bytes:
    """``ACK <oid>`` with an optional status (continue, common, ready)."""
    return pkt_text(f"ACK {oid.hex()} {status}" if status else f"ACK {oid.hex()}")


def nak() -> bytes:
    return pkt_text("NAK")


def shallow_lines(update: ShallowUpdate) -> bytes:
    """The shallow and unshallow lines (v0 shallow-update and v2 shallow-info body)."""
    out = [pkt(b"shallow " + oid.hex().encode()) for oid in update.shallow]
    out += [pkt(b"unshallow " + oid.hex().encode()) for oid in update.unshallow]
    return b"".join(out)


def v2_acknowledgments(common: Sequence[Oid], ready: bool) -> bytes:
    """The v2 acknowledgments section (header, ACKs or NAK, optional ready)."""
    out = [pkt_text("acknowledgments")]
    out += [ack(oid) for oid in common] if common else [nak()]
    if ready:
        out.append(pkt_text("ready"))
    return b"".join(out)


def object_info_lines(sizes: Sequence[tuple[Oid, int | None]], *, size: bool) -> bytes:
    out = [pkt_text("size")] if size else []
    for oid, value in sizes:
        out.append(pkt_text(f"{oid.hex()} {value}" if size and value is not None else f"{oid.hex()} "))
    out.append(FLUSH_PKT)
    return b"".join(out)


def report_status(result: PushResult) -> bytes:
    """report-status / report-status-v2, flush included."""
    out = [pkt_text("unpack " + ("ok" if result.unpack_error is None else _one_line(result.unpack_error)))]
    for ref in result.refs:
        if ref.error is None:
            out.append(pkt_text(f"ok {ref.ref}"))
        else:
            out.append(pkt_text(f"ng {ref.ref} {_one_line(ref.error)}"))
    out.append(FLUSH_PKT)
    return b"".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:2000] or "failed"
