"""native: SHA-1, object ids, git delta apply and a streaming pack scanner.

Rules:
- Two implementations with one API: the C extension (``native.cext`` over the cffi
  module ``native._native``) and the pure-Python twin (``native.pure``). The C one is used
  when it imports and ``GITSERVER_NATIVE`` is not "python"; ``IMPLEMENTATION`` says which.
- Hostile input raises only the errors in ``native.errors`` (DeltaError, PackError).
- API: object_id(type, data), Sha1, sha1(data), delta_header(delta),
  delta_apply(base, delta), PackScanner(max_object_size=None) with feed/finish,
  ScannedEntry, and tree_links(data) -> (packed tree ids, packed blob ids) (its pure twin
  lives in native.tree_pure), and DeltaResolver: a pushed pack from scan to resolved rows
  and checked links (pure twin in native.resolve_pure). See docs/architecture.md "native/ API".
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, TypeAlias

from . import pure, resolve_pure, tree_pure
from .entry import ScannedEntry
from .errors import DeltaError, NativeError, PackError, ResolveError, TreeError

cext: ModuleType | None
try:
    from . import cext as _cext

    cext = _cext
except ImportError:  # extension not built: the pure twin serves
    cext = None

_impl: ModuleType = cext if cext is not None and os.environ.get("GITSERVER_NATIVE") != "python" else pure
IMPLEMENTATION: str = "c" if _impl is cext else "python"

object_id = _impl.object_id
Sha1 = _impl.Sha1
sha1 = _impl.sha1
delta_header = _impl.delta_header
delta_apply = _impl.delta_apply
PackScanner = _impl.PackScanner
tree_links = cext.tree_links if _impl is cext and cext is not None else tree_pure.tree_links
if TYPE_CHECKING:
    from .cext import DeltaResolver as _CDeltaResolver

    AnyDeltaResolver: TypeAlias = "resolve_pure.DeltaResolver | _CDeltaResolver"
else:
    AnyDeltaResolver = object
DeltaResolver: type[AnyDeltaResolver] = (
    cext.DeltaResolver if _impl is cext and cext is not None else resolve_pure.DeltaResolver
)

__all__ = [
    "IMPLEMENTATION",
    "AnyDeltaResolver",
    "DeltaError",
    "DeltaResolver",
    "NativeError",
    "PackError",
    "PackScanner",
    "ResolveError",
    "ScannedEntry",
    "Sha1",
    "TreeError",
    "cext",
    "delta_apply",
    "delta_header",
    "object_id",
    "pure",
    "resolve_pure",
    "sha1",
    "tree_links",
    "tree_pure",
]
