"""Optional repository abilities the drivers use when a ``GitRepository`` offers them.

``GitRepository`` (backend.py) has no way to name an unborn HEAD's target, to tell
an object's size or to say that it is itself shallow; these small Protocols let a
backend add them without changing the shared contract. Without them, ``ls-refs`` omits
``unborn`` lines, ``object-info`` is not advertised and the repository is served as
complete (no ``shallow`` lines unless the client deepens).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from storage.model import Oid


@runtime_checkable
class HasHeadTarget(Protocol):
    def head_target(self) -> str | None:
        """The ref HEAD points at (``refs/heads/main``), even when that ref does not exist."""
        ...


@runtime_checkable
class HasObjectSize(Protocol):
    def object_size(self, oid: Oid) -> int | None:
        """The object's size in bytes (inflated, undeltified), None when absent."""
        ...


@runtime_checkable
class HasShallowRoots(Protocol):
    def shallow_roots(self) -> list[Oid]:
        """The repository's own shallow commits (their parents are absent), sorted; []
        for a complete repository."""
        ...
