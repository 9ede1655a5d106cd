"""Time as the server stores and shows it: integer UTC microseconds inside, RFC 3339 outside.

Rules: stored times are ``int`` microseconds since the Unix epoch (UTC), like the reflog;
JSON shows them as RFC 3339 with microseconds and a ``Z`` (``2026-11-27T15:04:05.123456Z``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_us() -> int:
    return time.time_ns() // 1000


def rfc3339(us: int | None) -> str | None:
    """``us`` as RFC 3339 UTC text; None stays None."""
    if us is None:
        return None
    secs, micros = divmod(us, 1_000_000)
    stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micros:06d}Z"
