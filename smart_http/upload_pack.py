"""Entry point of the upload-pack driver (one POST to ``git-upload-pack``).

Synchronous: run it in a worker thread. It reads the request through ``read`` and
writes the response through ``write`` in pieces of about ``chunk_size`` bytes; it never
holds a whole pack. Protocol errors are answered with an ``ERR`` pkt-line, errors while
the pack streams go to side-band channel 3; only unexpected errors propagate.
"""

from __future__ import annotations

from smart_http.backend import GitRepository, ReadFn, WriteFn
from smart_http.body import RequestBody
from smart_http.limits import GitLimits
from smart_http.output import PACK_CHUNK, CoalescingWriter
from smart_http.upload_pack_v0 import serve_v0
from smart_http.upload_pack_v2 import serve_v2


def serve_upload_pack(
    repo: GitRepository,
    read: ReadFn,
    write: WriteFn,
    *,
    version: int = 0,
    chunk_size: int = PACK_CHUNK,
    limits: GitLimits | None = None,
) -> None:
    """Answer one upload-pack request body with protocol ``version`` (0, 1 or 2).
    ``limits.max_pkt_lines`` bounds the request (wants, haves): past it, ``ERR``."""
    out = CoalescingWriter(write, chunk_size)
    body = RequestBody(read, max_lines=(limits or GitLimits()).max_pkt_lines)
    try:
        if version == 2:
            serve_v2(repo, body, out)
        else:
            serve_v0(repo, body, out)
    finally:
        out.flush()
