"""``Repository``: the smart_http ``GitRepository`` contract on top of one ``RepoStore``.

Rules:
- Synchronous and single-threaded, like the ``RepoStore`` it wraps (one per connection).
- Caches are bounded and only hold derived, immutable facts: parsed commit headers, tag
  peels, and the set of objects reachable from the refs, keyed by the exact refs state so
  a push invalidates it without any hook.
- A shallow repository's own shallow commits (``RepoStore.shallow_commits``) are
  parentless for every walk here (storage.shallow); the list is re-read at the start of
  each request, so an import that makes the repo shallow is seen at once.
- Wants are trusted only after ``is_want_allowed``; ``write_pack`` still checks that each
  object exists and raises MissingObject / GitUserError otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage import fullclone, memo, packgen
from storage.errors import GitUserError
from storage.model import (
    ObjType,
    Oid,
    PackRequest,
    PushContext,
    PushResult,
    Ref,
    RefCommand,
    ShallowUpdate,
)
from storage.shallow import ShallowCommitCache, compute_shallow, pack_boundary
from storage.walk import ObjectPlan, enumerate_objects, mark_trees, reaches_any

if TYPE_CHECKING:
    from collections.abc import Callable

    from storage.repo_store import RepoStore

MAX_PEELS = 65536


class Repository:
    """A repository as the Git protocol layer sees it (see smart_http.backend)."""

    def __init__(self, store: RepoStore, *, max_cached_commits: int = 65536) -> None:
        self.store = store
        self.cache = ShallowCommitCache(store, max_cached_commits)
        self._peeled: dict[Oid, Oid | None] = {}
        self._reach_key: tuple[object, ...] | None = None
        self._reach_commits: set[Oid] | None = None
        self._reach_all: set[Oid] | None = None

    def clear_caches(self) -> None:
        """Drop every cache (on hibernation)."""
        self.cache.clear()
        self._peeled.clear()
        self._reach_key = self._reach_commits = self._reach_all = None

    # -- refs ---------------------------------------------------------------------------

    def _peel(self, oid: Oid) -> Oid | None:
        """The object an annotated tag finally names; None for anything but a tag."""
        if oid in self._peeled:
            return self._peeled[oid]
        path = str(self.store.path)
        known = memo.peeled(path, oid)  # process-wide: a woken actor needs no object reads
        if known is not memo.MISSING:
            return known  # type: ignore[return-value]
        header = self.store.object_header(oid)
        peeled = self.cache.peel(oid)[0] if header is not None and header[0] == ObjType.TAG else None
        if len(self._peeled) >= MAX_PEELS:
            self._peeled.clear()
        self._peeled[oid] = peeled
        if header is not None:
            memo.remember_peeled(path, oid, peeled)
        return peeled

    def list_refs(self) -> list[Ref]:
        refs = self.store.refs()
        out: list[Ref] = []
        head = self.store.head()
        if head in refs:
            out.append(Ref("HEAD", refs[head], self._peel(refs[head]), symref_target=head))
        for name in sorted(refs, key=lambda n: n.encode()):
            out.append(Ref(name, refs[name], self._peel(refs[name])))
        return out

    def has_object(self, oid: Oid) -> bool:
        return self.store.has_object(oid)

    def head_target(self) -> str | None:
        """The ref HEAD names, even while that branch does not exist (``ls-refs unborn``)."""
        return self.store.head()

    def object_size(self, oid: Oid) -> int | None:
        """The object's inflated size (v2 ``object-info``); None when absent."""
        header = self.store.object_header(oid)
        return None if header is None else header[1]

    # -- reachability -------------------------------------------------------------------

    def _refs_key(self, refs: dict[str, Oid]) -> tuple[object, ...]:
        return (*sorted(refs.items()), self.cache.grafts)

    def _sync_shallow(self) -> frozenset[Oid]:
        """Re-read the repository's shallow commits into the commit cache's grafts."""
        ours = self.store.shallow_commits()
        if ours != self.cache.grafts:
            self.cache.grafts = ours
        return ours

    def shallow_roots(self) -> list[Oid]:
        """The repository's own shallow commits, sorted (advertised to v0 clients)."""
        return sorted(self._sync_shallow())

    def _reachable_commits(self) -> set[Oid]:
        refs = self.store.refs()
        key = self._refs_key(refs)
        if key != self._reach_key or self._reach_commits is None:
            self._reach_key, self._reach_all = key, None
            seen: set[Oid] = set()
            stack: list[Oid] = []
            for oid in set(refs.values()):
                target, target_type, _ = self.cache.peel(oid)
                if target_type == ObjType.COMMIT and target not in seen:
                    seen.add(target)
                    stack.append(target)
            while stack:
                for parent in self.cache.commit(stack.pop()).parents:
                    if parent not in seen:
                        seen.add(parent)
                        stack.append(parent)
            self._reach_commits = seen
        return self._reach_commits

    def _reachable_objects(self) -> set[Oid]:
        commits = self._reachable_commits()
        if self._reach_all is None:
            found: set[Oid] = set(commits)
            for oid in set(self.store.refs().values()):
                target, _, tags = self.cache.peel(oid)
                found.update(tags)
                found.add(target)  # a ref may name a tree or blob directly
            roots = [self.cache.commit(c).tree for c in commits]
            trees = [o for o in found if o not in commits]
            for oid in trees:
                header = self.store.object_header(oid)
                if header is not None and header[0] == ObjType.TREE:
                    roots.append(oid)
            mark_trees(self.store, roots, found)
            self._reach_all = found
        return self._reach_all

    def is_want_allowed(self, oid: Oid) -> bool:
        refs = self.store.refs()
        if oid in refs.values():
            return True
        self._sync_shallow()
        header = self.store.object_header(oid)
        if header is None:
            return False
        if header[0] == ObjType.COMMIT:
            return oid in self._reachable_commits()
        return oid in self._reachable_objects()

    def _commit_reachable(self, oid: Oid) -> bool:
        return oid in self._reachable_commits()

    def ready_to_give_up(self, wants: Sequence[Oid], common: Sequence[Oid]) -> bool:
        self._sync_shallow()
        targets: set[Oid] = set()
        for oid in common:
            if self.store.has_object(oid):
                target, target_type, _ = self.cache.peel(oid)
                if target_type == ObjType.COMMIT:
                    targets.add(target)
        if not targets:
            return False
        min_time = min(self.cache.commit(c).time for c in targets)
        good: set[Oid] = set()
        for want in wants:
            if not self.store.has_object(want):
                return False
            target, target_type, _ = self.cache.peel(want)
            if target_type != ObjType.COMMIT:
                continue  # git cannot tell either and counts it as reached
            if not reaches_any(self.cache, target, targets, min_time, good):
                return False
        return True

    # -- fetch --------------------------------------------------------------------------

    def _known_commits(self, oids: Sequence[Oid]) -> list[Oid]:
        out: list[Oid] = []
        for oid in dict.fromkeys(oids):
            header = self.store.object_header(oid)
            if header is not None and header[0] == ObjType.COMMIT:
                out.append(oid)
        return out

    def _normalized(self, request: PackRequest) -> PackRequest:
        """The request with client shallows and haves cut to commits we store."""
        for want in request.wants:
            if not self.store.has_object(want):
                raise GitUserError(f"not our ref {want.hex()}")
        return PackRequest(
            wants=list(request.wants),
            haves=[h for h in dict.fromkeys(request.haves) if self.store.has_object(h)],
            client_shallows=self._known_commits(request.client_shallows),
            depth=request.depth,
            deepen_since=request.deepen_since,
            deepen_not=[o for o in request.deepen_not if self.store.has_object(o)],
            deepen_relative=request.deepen_relative,
            filter=request.filter,
            ofs_delta=request.ofs_delta,
            thin_pack=request.thin_pack,
            include_tag=request.include_tag,
        )

    def shallow_update(self, request: PackRequest) -> ShallowUpdate:
        """The shallow/unshallow lines of a deepen request, or, for any fetch from a
        shallow repository, the repository's boundary the client gets."""
        ours = self._sync_shallow()
        return compute_shallow(self.cache, self._normalized(request), self._commit_reachable, ours)

    def is_shallow(self) -> bool:
        """True when the repository itself is shallow (every fetch gets shallow info)."""
        return bool(self._sync_shallow())

    def plan(self, request: PackRequest, shallow: ShallowUpdate | None) -> ObjectPlan:
        """The objects ``write_pack`` would send (exposed for tests and benchmarks)."""
        ours = self._sync_shallow()  # our own shallow commits: grafts of the cache
        request = self._normalized(request)
        if shallow is None and request.is_shallow_request:
            shallow = compute_shallow(self.cache, request, self._commit_reachable, ours)
        grafts, extra_wants, extra_haves = pack_boundary(self.cache, request, shallow)
        plan = enumerate_objects(
            self.cache,
            request.wants,
            request.haves,
            grafts,
            request.filter,
            extra_haves=extra_haves,
            extra_wants=extra_wants,
        )
        if request.include_tag:
            self._add_tags(plan)
        return plan

    def _add_tags(self, plan: ObjectPlan) -> None:
        """include-tag: annotated tags under refs/tags/ whose target is being sent."""
        sent = set(plan.send)
        for name, oid in sorted(self.store.refs().items()):
            if not name.startswith("refs/tags/") or oid in sent or oid in plan.client_has:
                continue
            if self._peel(oid) is None:
                continue
            target, _, tags = self.cache.peel(oid)
            if target in sent:
                for tag in tags:
                    if tag not in sent:
                        sent.add(tag)
                        plan.send.append(tag)

    def write_pack(
        self,
        request: PackRequest,
        shallow: ShallowUpdate | None,
        write: Callable[[bytes], None],
        progress: Callable[[str], None] | None,
    ) -> None:
        plan = None
        unfiltered = fullclone.unfiltered(request)
        if unfiltered is not None and not self.store.alternate_paths():
            # pack reuse: a full clone of a store whose objects are all wanted (storage.fullclone)
            count = self.store.object_count()
            refs = self.store.refs()
            key = fullclone.verdict_key(str(self.store.path), refs, unfiltered, count)
            verdict = fullclone.known(key)
            if (
                verdict is None
                and fullclone.wants_every_ref(unfiltered, refs)
                and fullclone.recorded_whole(self.store.connection, refs, count)
            ):
                verdict = True  # decided at push time (storage.fullclone): no walk
            if verdict is None:
                whole = self.plan(unfiltered, shallow)
                verdict = len(whole.send) == count
                fullclone.remember(key, verdict)
                plan = whole if unfiltered is request else None
            if verdict and request.filter is not None:  # blob:none
                packgen.write_store_without_blobs(self.store, write, progress=progress)
                return
            if verdict:
                if progress is not None:
                    progress(f"Enumerating objects: {count}, done.\n")
                if packgen.write_whole_store(self.store.connection, write, progress=progress) is not None:
                    return
                fullclone.remember(key, False)  # dead entries: send object by object
        if plan is None:
            plan = self.plan(request, shallow)
        if progress is not None:
            progress(f"Enumerating objects: {len(plan.send)}, done.\n")
        packgen.write_pack(
            self.store,
            plan.send,
            plan.client_has,
            write,
            ofs_delta=request.ofs_delta,
            # a partial clone lacks blobs of commits it has: no thin bases under a filter
            thin_pack=request.thin_pack and request.filter is None,
            progress=progress,
        )

    # -- push ---------------------------------------------------------------------------

    def receive_pack(
        self,
        commands: Sequence[RefCommand],
        read_pack: Callable[[int], bytes] | None,
        context: PushContext,
        progress: Callable[[str], None] | None,
    ) -> PushResult:
        return self.store.receive(commands, read_pack, context, progress)
