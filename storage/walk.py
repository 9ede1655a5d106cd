"""Reachability: which objects a fetch must send, given what the client has.

Rules:
- Object ids are raw 20-byte ``bytes``; every set here is a set of those.
- Commits come from a bounded LRU of parsed headers (tree, parents, time); trees are read
  and parsed once per walk and never retained; blob contents are never read (only their
  size, for ``blob:limit``).
- ``grafts`` are commits treated as having no parents: the client's shallow boundary and
  the new one of a deepen request (git registers both as shallow for its own walk).
- Commits to send = reachable(include) minus reachable(exclude), found the way git's
  ``limit_list`` does: newest first, stopping once only uninteresting commits are queued
  (a few extra steps absorb clock skew). Trees and blobs to send = those reachable from
  the sent commits' trees minus those reachable from the trees of the "edge" commits
  (excluded commits that are parents of sent ones, plus the exclude tips themselves),
  which is what the client certainly has; that set is also what a thin pack may use as
  delta bases.
- "What the client has" is never computed by reading whole edge trees (that is the whole
  repository for a one-file change): ``mark_changed_paths`` walks the sent commits' trees
  and the parent edges' trees side by side by path and reads only paths where a sent tree
  differs from every edge tree there (git's "sparse" walk). Everything it marks is read
  from an edge tree, so the marked set is always a subset of what the client has: a
  missed object is impossible, an object the client has at another path may be sent
  (waste, never an error). Work and memory scale with the change, not the repository.
  Exclude tips that are not parents of sent commits only contribute their root tree id.
  A shallow fetch (client shallows, a deepen) marks every edge's whole tree instead, as
  git does for shallow clients (``--objects-edge-aggressive``): the sets stay git's.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import native
from storage.errors import MissingObject, ObjectCorrupt
from storage.model import FilterSpec, ObjType, Oid
from storage.objparse import CommitInfo, parse_commit, parse_tag

SLOP = 5  # uninteresting commits processed after the last interesting one (clock skew)


class ObjectReader(Protocol):
    """The part of ``RepoStore`` a walk needs."""

    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]: ...

    def object_header(self, oid: Oid) -> tuple[ObjType, int] | None: ...


class CommitCache:
    """Parsed commit headers and tag targets, LRU-bounded by entry count."""

    def __init__(self, reader: ObjectReader, max_commits: int = 65536) -> None:
        self.reader = reader
        self.max_commits = max_commits
        self._commits: OrderedDict[Oid, CommitInfo] = OrderedDict()

    def commit(self, oid: Oid) -> CommitInfo:
        """Parsed header of commit ``oid``; raises MissingObject or ObjectCorrupt."""
        info = self._commits.get(oid)
        if info is not None:
            self._commits.move_to_end(oid)
            return info
        obj_type, data = self.reader.get_object(oid)
        if obj_type != ObjType.COMMIT:
            raise ObjectCorrupt(f"{oid.hex()} is a {obj_type.name.lower()}, not a commit", oid)
        info = parse_commit(data)
        self._commits[oid] = info
        if len(self._commits) > self.max_commits:
            self._commits.popitem(last=False)
        return info

    def peel(self, oid: Oid) -> tuple[Oid, ObjType, list[Oid]]:
        """Follow annotated tags: (final object, its type, the tag objects passed through)."""
        tags: list[Oid] = []
        if oid in self._commits:
            return oid, ObjType.COMMIT, tags
        while True:
            header = self.reader.object_header(oid)
            if header is None:
                raise MissingObject(oid)
            if header[0] != ObjType.TAG:
                return oid, header[0], tags
            if len(tags) > 64:
                raise ObjectCorrupt("tag chain too long", oid)
            tags.append(oid)
            _, data = self.reader.get_object(oid)
            oid = parse_tag(data).target

    def clear(self) -> None:
        self._commits.clear()


@dataclass
class CommitWalk:
    """Result of ``commit_difference``."""

    commits: list[Oid]  # the included commits, newest first (roughly)
    edges: set[Oid]  # excluded commits bordering the included ones, plus exclude tips
    uninteresting: set[Oid] = field(default_factory=set)  # every excluded commit seen
    parent_edges: set[Oid] = field(default_factory=set)  # excluded parents of included commits


def commit_difference(
    cache: CommitCache,
    include: Iterable[Oid],
    exclude: Iterable[Oid],
    grafts: frozenset[Oid] | set[Oid] = frozenset(),
    *,
    since: int | None = None,
    since_excludes_ancestors: bool = False,
) -> CommitWalk:
    """Commits reachable from ``include`` but not from ``exclude`` (both commit ids).

    ``since`` drops commits older than it: without ``since_excludes_ancestors`` the walk
    just stops there (rev-list --max-age on an unlimited walk); with it, they count as
    excluded and so do their ancestors (a limited walk). Raises MissingObject."""
    state: dict[Oid, bool] = {}  # oid -> excluded
    in_heap: set[Oid] = set()
    done: set[Oid] = set()
    heap: list[tuple[int, int, Oid]] = []
    order: list[Oid] = []
    seq = 0
    n_interesting = 0  # queued commits currently not excluded

    def parents(oid: Oid) -> tuple[Oid, ...]:
        return () if oid in grafts else cache.commit(oid).parents

    def push(oid: Oid, excluded: bool) -> None:
        nonlocal seq, n_interesting
        info = cache.commit(oid)
        if not excluded and since is not None and since_excludes_ancestors and info.time < since:
            excluded = True
        state[oid] = excluded
        seq += 1
        heapq.heappush(heap, (-info.time, seq, oid))
        in_heap.add(oid)
        if not excluded:
            n_interesting += 1

    def exclude_from(oid: Oid) -> None:
        nonlocal n_interesting
        stack = [oid]
        while stack:
            cur = stack.pop()
            if state.get(cur):
                continue
            if cur not in state:
                push(cur, True)
                continue
            state[cur] = True
            if cur in in_heap:
                n_interesting -= 1
            if cur in done:
                stack.extend(parents(cur))

    excluded_tips = list(dict.fromkeys(exclude))
    for oid in excluded_tips:
        exclude_from(oid)
    for oid in include:
        if oid not in state:
            push(oid, False)

    slop = SLOP
    while heap:
        _, _, oid = heapq.heappop(heap)
        in_heap.discard(oid)
        done.add(oid)
        if state[oid]:
            for parent in parents(oid):
                exclude_from(parent)
            if n_interesting == 0:
                slop -= 1
                if slop <= 0:
                    break
            continue
        n_interesting -= 1
        slop = SLOP
        if since is not None and not since_excludes_ancestors and cache.commit(oid).time < since:
            continue  # dropped: the walk stops here (and it is no edge: the client lacks it)
        order.append(oid)
        for parent in parents(oid):
            if parent not in state:
                push(parent, False)

    commits = [oid for oid in order if not state[oid]]  # order holds no dropped commit
    parent_edges: set[Oid] = set()
    for oid in commits:
        for parent in parents(oid):
            if state.get(parent):
                parent_edges.add(parent)
    uninteresting = {oid for oid, excl in state.items() if excl}
    return CommitWalk(commits, parent_edges | set(excluded_tips), uninteresting, parent_edges)


def _read_tree(reader: ObjectReader, oid: Oid) -> tuple[bytes, list[Oid], list[Oid]]:
    """(data, subtree ids, blob ids) of tree ``oid``; ObjectCorrupt for a non-tree or a
    malformed entry."""
    obj_type, data = reader.get_object(oid)
    if obj_type != ObjType.TREE:
        raise ObjectCorrupt(f"{oid.hex()} is a {obj_type.name.lower()}, not a tree", oid)
    try:
        trees, blobs = native.tree_links(data)  # C, GIL released (twin: native.tree_pure)
    except native.TreeError as exc:
        raise ObjectCorrupt(f"tree {oid.hex()}: {exc}", oid) from None
    return (
        data,
        [trees[i : i + 20] for i in range(0, len(trees), 20)],
        [blobs[i : i + 20] for i in range(0, len(blobs), 20)],
    )


def _tree_children(reader: ObjectReader, oid: Oid) -> tuple[list[Oid], list[Oid]]:
    _, trees, blobs = _read_tree(reader, oid)
    return trees, blobs


_TREE_MODE = 0o040000


def _tree_entries(reader: ObjectReader, oid: Oid) -> tuple[list[Oid], list[Oid], list[tuple[bytes, Oid]]]:
    """(subtree ids, blob ids, (name, subtree id) pairs) of tree ``oid``."""
    data, trees, blobs = _read_tree(reader, oid)
    named: list[tuple[bytes, Oid]] = []
    if trees:
        find = data.find
        pos, size = 0, len(data)
        while pos < size:  # entries are well-formed here: tree_links accepted them
            space = find(b" ", pos)
            nul = find(b"\0", space + 1)
            mode = data[pos:space]
            if mode == b"40000" or (mode != b"100644" and int(mode, 8) & 0o170000 == _TREE_MODE):
                named.append((data[space + 1 : nul], data[nul + 1 : nul + 21]))
            pos = nul + 21
        if [sub for _, sub in named] != trees:
            raise ObjectCorrupt(f"tree {oid.hex()}: entries disagree with the scanner", oid)
    return trees, blobs, named


def mark_changed_paths(
    reader: ObjectReader, new_roots: Iterable[Oid], have_roots: Iterable[Oid], has: set[Oid]
) -> None:
    """Add to ``has`` the trees ``have_roots`` and the entries of every tree of theirs at a
    path where some tree of ``new_roots`` (not yet in ``has``) sits too.

    Trees are grouped by path from the roots down, depth first: a group is read only when
    it holds both a new tree the client is not known to have and at least one have tree.
    Everything added comes out of a have tree, so ``has`` stays within what the client
    has; what is read is bounded by the paths that changed (times the number of distinct
    have trees there), not by the size of the trees."""
    haves = dict.fromkeys(have_roots)
    has.update(haves)
    # a group: (new trees, have trees) at one path, as insertion-ordered sets
    stack: list[tuple[dict[Oid, None], dict[Oid, None]]] = [(dict.fromkeys(new_roots), haves)]
    while stack:
        news, olds = stack.pop()
        fresh = [t for t in news if t not in has]
        if not fresh or not olds:
            continue
        by_name: dict[bytes, tuple[dict[Oid, None], dict[Oid, None]]] = {}
        for old in olds:
            trees, blobs, named = _tree_entries(reader, old)
            has.update(blobs)
            has.update(trees)
            for name, sub in named:
                group = by_name.get(name)
                if group is None:
                    by_name[name] = ({}, {sub: None})
                else:
                    group[1][sub] = None
        for new in fresh:
            for name, sub in _tree_entries(reader, new)[2]:
                group = by_name.get(name)
                if group is not None and sub not in has:
                    group[0][sub] = None
        stack.extend(group for group in by_name.values() if group[0])


def mark_trees(reader: ObjectReader, roots: Iterable[Oid], seen: set[Oid]) -> None:
    """Add every tree and blob reachable from the trees ``roots`` to ``seen``."""
    stack = [r for r in roots if r not in seen]
    seen.update(stack)
    while stack:
        trees, blobs = _tree_children(reader, stack.pop())
        seen.update(blobs)
        for sub in trees:
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)


class TreeCollector:
    """Collects trees and blobs to send under a filter, skipping what the client has."""

    def __init__(self, reader: ObjectReader, has: set[Oid], filt: FilterSpec | None) -> None:
        self.reader = reader
        self.has = has
        self.filter = filt
        self.out: list[Oid] = []
        self.sent: set[Oid] = set()
        self._depth: dict[Oid, int] = {}  # tree filter: shallowest depth seen per object

    def add_explicit(self, oid: Oid, obj_type: ObjType) -> None:
        """A tree or blob named directly by a want: sent whatever the filter says."""
        if oid not in self.sent:
            self.sent.add(oid)
            self.out.append(oid)
        if obj_type == ObjType.TREE:
            self.add_root(oid, explicit=True)

    def _keep_blob(self, oid: Oid) -> bool:
        filt = self.filter
        if filt is None:
            return True
        if filt.kind == "blob:none":
            return False
        if filt.kind == "blob:limit":
            header = self.reader.object_header(oid)
            if header is None:
                raise MissingObject(oid)
            return header[1] < filt.limit
        return True

    def add_root(self, root: Oid, explicit: bool = False) -> None:
        """Walk one commit's root tree (or an explicitly wanted tree)."""
        if self.filter is not None and self.filter.kind == "tree":
            self._add_root_depth(root, explicit)
            return
        has, sent, out = self.has, self.sent, self.out
        if root in has or (root in sent and not explicit):
            return
        if root not in sent:
            sent.add(root)
            out.append(root)
        stack = [root]
        while stack:
            trees, blobs = _tree_children(self.reader, stack.pop())
            for blob in blobs:
                if blob not in sent and blob not in has:
                    sent.add(blob)  # also marks a filtered-out blob as decided
                    if self._keep_blob(blob):
                        out.append(blob)
            for sub in trees:
                if sub not in sent and sub not in has:
                    sent.add(sub)
                    out.append(sub)
                    stack.append(sub)

    def _add_root_depth(self, root: Oid, explicit: bool) -> None:
        assert self.filter is not None
        limit = self.filter.limit
        has, depths = self.has, self._depth
        if root in has:
            return
        if limit == 0 and not explicit:
            return
        stack = [(root, 0)]
        while stack:
            oid, depth = stack.pop()
            known = depths.get(oid)
            if known is not None and known <= depth:
                continue
            depths[oid] = depth
            if oid not in self.sent:
                self.sent.add(oid)
                self.out.append(oid)
            trees, blobs = _tree_children(self.reader, oid)
            child = depth + 1
            if child >= limit:
                continue
            for blob in blobs:
                if blob not in has and blob not in self.sent:
                    self.sent.add(blob)
                    self.out.append(blob)
            for sub in trees:
                if sub not in has:
                    seen_at = depths.get(sub)
                    if seen_at is None or seen_at > child:
                        stack.append((sub, child))


@dataclass
class ObjectPlan:
    """What to send: ``send`` in walk order (commits, tags, then trees and blobs) and
    ``client_has``: trees, blobs and commits the client certainly has (thin-pack bases)."""

    send: list[Oid]
    client_has: set[Oid]
    commit_count: int


def enumerate_objects(
    cache: CommitCache,
    wants: Sequence[Oid],
    haves: Sequence[Oid],
    grafts: frozenset[Oid] | set[Oid] = frozenset(),
    filt: FilterSpec | None = None,
    extra_haves: Sequence[Oid] = (),
    extra_wants: Sequence[Oid] = (),
) -> ObjectPlan:
    """Objects reachable from ``wants`` minus those the client has (reachable from ``haves``).

    ``wants`` may be any object (tags are peeled and sent; trees and blobs named directly
    are sent whatever the filter). ``extra_wants``/``extra_haves`` are commits added by a
    deepen request (parents and the commits of unshallowed boundaries). Raises
    MissingObject / ObjectCorrupt when the store is inconsistent."""
    reader = cache.reader
    send: list[Oid] = []
    sent_other: set[Oid] = set()
    commit_wants: list[Oid] = []
    explicit: list[tuple[Oid, ObjType]] = []
    for want in wants:
        target, target_type, tags = cache.peel(want)
        for tag in tags:
            if tag not in sent_other:
                sent_other.add(tag)
                send.append(tag)
        if target_type == ObjType.COMMIT:
            commit_wants.append(target)
        elif target_type in (ObjType.TREE, ObjType.BLOB):
            explicit.append((target, target_type))
    commit_wants.extend(extra_wants)
    have_commits: list[Oid] = []
    for have in [*haves, *extra_haves]:
        target, target_type, _ = cache.peel(have)
        if target_type == ObjType.COMMIT:
            have_commits.append(target)

    walk = commit_difference(cache, commit_wants, have_commits, grafts)
    client_has: set[Oid] = set()
    if grafts or extra_haves or extra_wants:
        # a shallow fetch: every edge's whole tree, as git's --objects-edge-aggressive
        mark_trees(reader, (cache.commit(edge).tree for edge in walk.edges), client_has)
    else:
        client_has.update(cache.commit(edge).tree for edge in walk.edges - walk.parent_edges)
        mark_changed_paths(
            reader,
            [cache.commit(commit).tree for commit in walk.commits],
            [cache.commit(edge).tree for edge in walk.parent_edges],
            client_has,
        )
    send.extend(walk.commits)
    collector = TreeCollector(reader, client_has, filt)
    for oid, obj_type in explicit:
        collector.add_explicit(oid, obj_type)
    if filt is None or not (filt.kind == "tree" and filt.limit == 0):
        for commit in walk.commits:
            collector.add_root(cache.commit(commit).tree)
    send.extend(oid for oid in collector.out if oid not in sent_other)
    client_has.update(walk.edges)
    return ObjectPlan(send, client_has, len(walk.commits))


def reaches_any(
    cache: CommitCache, start: Oid, targets: set[Oid], min_time: int, known_good: set[Oid]
) -> bool:
    """True when commit ``start`` reaches a commit in ``targets`` without passing commits
    older than ``min_time`` (git's can_all_from_reach cutoff). ``known_good`` caches commits
    already shown to reach one, and is extended."""
    stack = [start]
    seen = {start}
    while stack:
        oid = stack.pop()
        if oid in targets or oid in known_good:
            known_good.add(start)
            return True
        info = cache.commit(oid)
        if info.time < min_time:
            continue
        for parent in info.parents:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return False
