"""The contract between the Git protocol layer and a repository.

smart_http drives the wire protocol; everything it needs to know about a repository it
asks through ``GitRepository``. storage implements it (``storage.repository``). All
methods are synchronous and are called from a worker thread, never from the event loop.

Rules:
- Object ids are raw 20-byte ``bytes`` (see ``storage.model``).
- ``write_pack`` and ``receive_pack`` stream: they never hold a whole pack in memory.
- Errors meant for the git user are raised as ``storage.errors.GitUserError`` (the
  message is shown by git as ``remote: error: ...`` or an ``ng`` reason).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from storage.model import Oid, PackRequest, PushContext, PushResult, Ref, RefCommand, ShallowUpdate

# Writes bytes of the pack stream to the client (the caller frames them in side-band).
WriteFn = Callable[[bytes], None]
# Reports a progress message (already formatted, e.g. "Counting objects: 10% (1/10)\r").
ProgressFn = Callable[[str], None]
# Reads up to n bytes of the request body; returns b"" at end of body.
ReadFn = Callable[[int], bytes]


class GitRepository(Protocol):
    def list_refs(self) -> list[Ref]:
        """Every ref, sorted by name, with ``HEAD`` first when it resolves.

        Annotated tags carry ``peeled``; ``HEAD`` carries ``symref_target``. An empty
        repository returns [] (the advertisement then shows ``capabilities^{}``)."""
        ...

    def has_object(self, oid: Oid) -> bool:
        """True when the object is stored (in this repo or a fork parent)."""
        ...

    def is_want_allowed(self, oid: Oid) -> bool:
        """True when ``oid`` may be requested: a ref tip or reachable from one
        (allow-reachable-sha1-in-want). Never true for unreachable objects."""
        ...

    def ready_to_give_up(self, wants: Sequence[Oid], common: Sequence[Oid]) -> bool:
        """True when every want reaches at least one common commit, so negotiation
        can stop (git's ``ok_to_give_up``; drives the v2 ``ready`` and v0 ACK ready)."""
        ...

    def shallow_update(self, request: PackRequest) -> ShallowUpdate:
        """Compute the shallow boundary for a deepen request (depth / since / not /
        relative), given the client's current shallow commits."""
        ...

    def write_pack(
        self,
        request: PackRequest,
        shallow: ShallowUpdate | None,
        write: WriteFn,
        progress: ProgressFn | None,
    ) -> None:
        """Stream a complete pack (header, entries, trailer) for ``request``.

        Stored deltified bytes are reused verbatim where their base is sent earlier
        (ofs-delta when ``request.ofs_delta``) or, with ``thin_pack``, is known to the
        client; otherwise the object is sent whole. Objects reachable from ``haves``
        are not sent; ``filter`` and the shallow boundary are honoured."""
        ...

    def receive_pack(
        self,
        commands: Sequence[RefCommand],
        read_pack: ReadFn | None,
        context: PushContext,
        progress: ProgressFn | None,
    ) -> PushResult:
        """Ingest a pushed pack (``read_pack`` is None when every command is a delete)
        and apply ref commands with compare-and-swap on the old values.

        All-or-nothing per ref (per push when ``context.atomic``): a broken pack moves no
        ref and leaves no rows. Ref updates and reflog entries commit in one transaction
        with the pack."""
        ...
