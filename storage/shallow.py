"""The shallow boundary of a deepen request, computed the way git's upload-pack does.

Rules:
- ``deepen N``: commits at distance N-1 (tips are at 0) from the wants become shallow;
  with ``deepen-relative`` the distance is counted from the client's shallow commits that
  our refs reach, one further (so history grows by N). ``deepen`` 0x7fffffff (what
  ``--unshallow`` sends) on our never-shallow store unshallows every client shallow.
- ``deepen-since`` / ``deepen-not``: the commits kept are those reachable from the wants
  that are not older than the time (the walk stops at older ones) and not reachable from
  the deepen-not commits; kept commits with a parent that is not kept become shallow.
- A client shallow commit becomes ``unshallow`` when it is kept and is not on the new
  boundary; a boundary commit the client already has as shallow is not sent again.
- Object ids are raw.
- A shallow repository (``RepoStore.shallow_commits``, an import with a depth) is served
  the way git's upload-pack serves one: its shallow commits are parentless for every
  walk (``ShallowCommitCache``); they always end up on the client's boundary (``shallow``
  lines for those the wanted history reaches, unless the client already has them as
  shallow), never ``unshallow``ed; a fetch without deepen from such a repository still
  gets the ``shallow`` lines (git's deepen to "infinite" depth, with the client's own
  shallow commits as further boundaries); ``--unshallow`` deepens to our boundary.
"""

from __future__ import annotations

from collections.abc import Callable

from storage.errors import GitUserError
from storage.model import ObjType, Oid, PackRequest, ShallowUpdate
from storage.objparse import CommitInfo
from storage.walk import CommitCache, ObjectReader, commit_difference

INFINITE_DEPTH = 0x7FFFFFFF


class ShallowCommitCache(CommitCache):
    """A CommitCache that shows the repository's own shallow commits as parentless."""

    def __init__(self, reader: ObjectReader, max_commits: int = 65536) -> None:
        super().__init__(reader, max_commits)
        self.grafts: frozenset[Oid] = frozenset()

    def commit(self, oid: Oid) -> CommitInfo:
        info = super().commit(oid)
        if info.parents and oid in self.grafts:
            return info._replace(parents=())
        return info


def _peeled_commits(cache: CommitCache, oids: list[Oid]) -> list[Oid]:
    out: list[Oid] = []
    for oid in oids:
        target, target_type, _ = cache.peel(oid)
        if target_type == ObjType.COMMIT:
            out.append(target)
    return out


def _distances(
    cache: CommitCache, heads: list[Oid], limit: int, stop: set[Oid] | frozenset[Oid] = frozenset()
) -> dict[Oid, int]:
    """Breadth-first distance from ``heads`` of every commit closer than ``limit``; the
    walk does not go past commits in ``stop``."""
    dist: dict[Oid, int] = {}
    frontier = list(dict.fromkeys(heads))
    for head in frontier:
        dist[head] = 0
    level = 0
    while frontier and level + 1 < limit:
        level += 1
        nxt: list[Oid] = []
        for oid in frontier:
            if oid in stop:
                continue
            for parent in cache.commit(oid).parents:
                if parent not in dist:
                    dist[parent] = level
                    nxt.append(parent)
        frontier = nxt
    return dist


def compute_shallow(
    cache: CommitCache,
    request: PackRequest,
    reachable: Callable[[Oid], bool],
    ours: frozenset[Oid] = frozenset(),
) -> ShallowUpdate:
    """The ``shallow``/``unshallow`` lines for ``request``.

    ``reachable(oid)`` says whether a commit is reachable from our refs (deepen-relative
    only counts from those); ``ours`` are the repository's own shallow commits (``cache``
    must show them parentless). Raises GitUserError for a request git would refuse."""
    client = [c for c in dict.fromkeys(request.client_shallows)]
    client_set = set(client)
    if not request.is_shallow_request:
        if not ours:
            return ShallowUpdate([], [])
        # A shallow repository answers every fetch with its boundary, as far as the
        # wanted history reaches it; the client's own shallow commits stay boundaries.
        dist = _distances(cache, _peeled_commits(cache, request.wants), INFINITE_DEPTH, client_set)
        return ShallowUpdate([c for c in dist if c in ours and c not in client_set], [])
    if request.depth is not None:
        depth = request.depth
        if depth <= 0:
            raise GitUserError(f"invalid depth {depth}")
        if depth >= INFINITE_DEPTH and not ours:
            return ShallowUpdate([], client)
        if request.deepen_relative and depth < INFINITE_DEPTH:
            heads = [c for c in client if reachable(c)]
            depth += 1
        else:
            heads = _peeled_commits(cache, request.wants)
        dist = _distances(cache, heads, depth)
        boundary = depth - 1
        shallow = [c for c, d in dist.items() if (d == boundary or c in ours) and c not in client_set]
        unshallow = [c for c in client if dist.get(c, boundary) < boundary and c not in ours]
        return ShallowUpdate(shallow, unshallow)

    wants = _peeled_commits(cache, request.wants)
    excluded = _peeled_commits(cache, request.deepen_not)
    kept_list = commit_difference(
        cache,
        wants,
        excluded,
        since=request.deepen_since,
        since_excludes_ancestors=bool(excluded),
    ).commits
    if not kept_list:
        raise GitUserError("no commits selected for shallow requests")
    kept = set(kept_list)
    border = [c for c in kept_list if c in ours or any(p not in kept for p in cache.commit(c).parents)]
    border_set = set(border)
    shallow = [c for c in border if c not in client_set]
    unshallow = [c for c in client if c in kept and c not in border_set]
    return ShallowUpdate(shallow, unshallow)


def pack_boundary(
    cache: CommitCache, request: PackRequest, update: ShallowUpdate | None
) -> tuple[set[Oid], list[Oid], list[Oid]]:
    """(grafts, extra wants, extra haves) for the object walk of a shallow fetch.

    Every client shallow and every new shallow commit is treated as parentless; an
    unshallowed commit is something the client has whose parents it now wants."""
    grafts = set(request.client_shallows)
    extra_wants: list[Oid] = []
    extra_haves: list[Oid] = []
    if update is not None:
        grafts.update(update.shallow)
        for oid in update.unshallow:
            extra_haves.append(oid)
            extra_wants.extend(cache.commit(oid).parents)
    return grafts, extra_wants, extra_haves
