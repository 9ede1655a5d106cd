"""Per-request limits of the Git remote, chosen by the server's settings.

Rules:
- One frozen value handed to the drivers (``serve_upload_pack``, ``serve_receive_pack``)
  and to the ASGI bridge; ``None`` means "no limit" for that dimension.
- Every limit fails with a message git shows the user: ``ERR`` (``remote error: ...``)
  for a request that is refused before anything is applied, ``unpack <why>`` plus
  ``ng <ref> unpacker error`` for a pack that is refused while it streams. Nothing of a
  refused push is stored (``storage.repo_store.RepoStore.receive`` rolls back).
- ``LimitedReader`` counts the raw bytes of a pushed pack and raises
  ``storage.errors.LimitExceeded`` (a ``GitUserError``) once the pack passes the limit,
  so reading stops there and the store rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from smart_http.backend import ReadFn
from storage.errors import LimitExceeded

MAX_REF_UPDATES = 100_000
MAX_PKT_LINES = 500_000


@dataclass(frozen=True, slots=True)
class GitLimits:
    max_pack_bytes: int | None = None  # raw bytes of one pushed pack
    max_ref_updates: int = MAX_REF_UPDATES  # commands in one receive-pack request
    max_pkt_lines: int | None = MAX_PKT_LINES  # pkt-lines in one request (wants, haves, commands)
    body_timeout: float | None = None  # seconds without a request-body byte before we cut off


class LimitedReader:
    """A ``ReadFn`` that passes bytes on until ``limit`` is exceeded, then raises."""

    def __init__(self, read: ReadFn, limit: int | None) -> None:
        self._read = read
        self._limit = limit
        self.consumed = 0

    def read(self, n: int) -> bytes:
        data = self._read(n)
        self.consumed += len(data)
        if self._limit is not None and self.consumed > self._limit:
            raise LimitExceeded(f"pack exceeds the server's limit of {self._limit} bytes per push")
        return data
