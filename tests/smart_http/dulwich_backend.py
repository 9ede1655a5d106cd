"""A test ``GitRepository`` over a dulwich on-disk bare repository.

Test scaffolding only: it walks whole histories in memory and writes undeltified packs,
which is fine for the tiny repositories the end-to-end tests use. It implements the
contract of ``smart_http.backend.GitRepository`` plus the optional ``head_target`` and
``object_size`` (``smart_http.extensions``).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Sequence

from dulwich.objects import DEFAULT_OBJECT_FORMAT, Blob, Commit, ShaFile, Tag, Tree
from dulwich.pack import write_pack_objects
from dulwich.repo import Repo

from smart_http.backend import ProgressFn, ReadFn, WriteFn
from storage.errors import PackFormatError
from storage.model import (
    ZERO_OID,
    Oid,
    PackRequest,
    PushContext,
    PushResult,
    Ref,
    RefCommand,
    RefResult,
    ShallowUpdate,
)


def _hex(oid: Oid) -> bytes:
    return oid.hex().encode()


def _raw(sha: bytes) -> Oid:
    return bytes.fromhex(sha.decode())


class DulwichRepository:
    def __init__(self, path: str, pushes: list[PushContext] | None = None) -> None:
        self.path = path
        self.repo = Repo(path)
        self.pushes: list[PushContext] = [] if pushes is None else pushes

    @classmethod
    def create(cls, path: str, head: str = "refs/heads/main") -> None:
        Repo.init_bare(path, mkdir=True, default_branch=head.removeprefix("refs/heads/").encode()).close()

    def close(self) -> None:
        self.repo.close()

    def __enter__(self) -> DulwichRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers
    def _obj(self, oid: Oid) -> ShaFile:
        return self.repo.object_store[_hex(oid)]

    def _peel(self, oid: Oid) -> Oid:
        obj = self._obj(oid)
        while isinstance(obj, Tag):
            obj = self.repo.object_store[obj.object[1]]
        return _raw(obj.id)

    def _commits_from(self, tips: Iterable[Oid], stop: set[Oid] | frozenset[Oid] = frozenset()) -> set[Oid]:
        """Commits reachable from tips; parents of ``stop`` commits are not walked."""
        seen: set[Oid] = set()
        queue = deque(self._peel(t) for t in tips if self.has_object(t))
        while queue:
            oid = queue.popleft()
            if oid in seen:
                continue
            obj = self._obj(oid)
            if not isinstance(obj, Commit):
                continue
            seen.add(oid)
            if oid not in stop:
                queue.extend(_raw(p) for p in obj.parents if self.has_object(_raw(p)))
        return seen

    def _tree_objects(self, tree: bytes, out: set[Oid], max_depth: int | None, depth: int = 0) -> None:
        if max_depth is not None and depth >= max_depth:
            return
        oid = _raw(tree)
        if oid in out:
            return
        out.add(oid)
        obj = self.repo.object_store[tree]
        assert isinstance(obj, Tree)
        for entry in obj.iteritems():
            if entry.mode == 0o160000:
                continue
            if entry.mode & 0o40000:
                self._tree_objects(entry.sha, out, max_depth, depth + 1)
            elif max_depth is None or depth + 1 < max_depth:
                out.add(_raw(entry.sha))

    def _reachable(self, tips: Iterable[Oid]) -> set[Oid]:
        out: set[Oid] = set()
        for commit in self._commits_from(tips):
            out.add(commit)
            c = self._obj(commit)
            assert isinstance(c, Commit)
            self._tree_objects(c.tree, out, None)
        return out

    # -- GitRepository
    def list_refs(self) -> list[Ref]:
        refs = self.repo.get_refs()
        symrefs = self.repo.refs.get_symrefs()
        out: list[Ref] = []
        if b"HEAD" in refs:
            target = symrefs.get(b"HEAD")
            out.append(Ref("HEAD", _raw(refs[b"HEAD"]), symref_target=target.decode() if target else None))
        for name in sorted(n for n in refs if n != b"HEAD"):
            oid = _raw(refs[name])
            peeled = self._peel(oid)
            out.append(Ref(name.decode(), oid, peeled=peeled if peeled != oid else None))
        return out

    def head_target(self) -> str | None:
        return self.repo.refs.get_symrefs().get(b"HEAD", b"").decode() or None

    def object_size(self, oid: Oid) -> int | None:
        if not self.has_object(oid):
            return None
        return len(self._obj(oid).as_raw_string())

    def has_object(self, oid: Oid) -> bool:
        return _hex(oid) in self.repo.object_store

    def is_want_allowed(self, oid: Oid) -> bool:
        tips = [r.oid for r in self.list_refs()]
        if oid in tips:
            return True
        return oid in self._reachable(tips) or any(oid == t for t in tips)

    def ready_to_give_up(self, wants: Sequence[Oid], common: Sequence[Oid]) -> bool:
        common_set = set(common)
        return all(self._commits_from([w]) & common_set for w in wants)

    def shallow_update(self, request: PackRequest) -> ShallowUpdate:
        wants = [self._peel(w) for w in request.wants]
        included: set[Oid] = set()
        shallow: set[Oid] = set()
        if request.depth is not None:
            frontier = list(dict.fromkeys(wants))
            if request.deepen_relative and request.client_shallows:
                # depth counts from the client's current boundary, not from the wants
                included |= self._commits_from(wants, stop=set(request.client_shallows))
                frontier = []
                for oid in request.client_shallows:
                    c = self._obj(oid)
                    assert isinstance(c, Commit)
                    frontier.extend(_raw(p) for p in c.parents)
            for level in range(request.depth):
                if not frontier:
                    break
                nxt: list[Oid] = []
                for oid in frontier:
                    if oid in included:
                        continue
                    included.add(oid)
                    c = self._obj(oid)
                    assert isinstance(c, Commit)
                    if level == request.depth - 1 and c.parents:
                        shallow.add(oid)
                    else:
                        nxt.extend(_raw(p) for p in c.parents)
                frontier = nxt
        else:
            excluded = self._commits_from(request.deepen_not) if request.deepen_not else set()
            for oid in self._commits_from(wants):
                c = self._obj(oid)
                assert isinstance(c, Commit)
                if oid in excluded or (
                    request.deepen_since is not None and c.commit_time < request.deepen_since
                ):
                    continue
                included.add(oid)
            for oid in included:
                c = self._obj(oid)
                assert isinstance(c, Commit)
                if any(_raw(p) not in included for p in c.parents):
                    shallow.add(oid)
        unshallow = [s for s in request.client_shallows if s in included and s not in shallow]
        return ShallowUpdate(sorted(shallow), unshallow)

    def write_pack(
        self, request: PackRequest, shallow: ShallowUpdate | None, write: WriteFn, progress: ProgressFn | None
    ) -> None:
        client_shallow = set(request.client_shallows)
        have_commits = self._commits_from(request.haves, stop=client_shallow)
        have_objects: set[Oid] = set(have_commits)
        for commit in have_commits:
            c = self._obj(commit)
            assert isinstance(c, Commit)
            self._tree_objects(c.tree, have_objects, None)
        boundary = set(shallow.shallow) if shallow else set()
        unshallow = set(shallow.unshallow) if shallow else set()
        stop = boundary | (client_shallow - unshallow)
        send: dict[Oid, None] = {}
        tips: list[Oid] = []
        for want in request.wants:
            obj = self._obj(want)
            while isinstance(obj, Tag):
                send[_raw(obj.id)] = None
                obj = self.repo.object_store[obj.object[1]]
            tips.append(_raw(obj.id))
            if not isinstance(obj, Commit):
                send[_raw(obj.id)] = None
        tree_depth = request.filter.limit if request.filter and request.filter.kind == "tree" else None
        for commit in self._commits_from(tips, stop=stop):
            if commit in have_commits:
                continue
            send[commit] = None
            c = self._obj(commit)
            assert isinstance(c, Commit)
            trees: set[Oid] = set()
            self._tree_objects(c.tree, trees, tree_depth)
            for oid in sorted(trees - have_objects):
                if request.filter and request.filter.kind.startswith("blob"):
                    obj = self._obj(oid)
                    if isinstance(obj, Blob) and (
                        request.filter.kind == "blob:none" or len(obj.data) > request.filter.limit
                    ):
                        continue
                send[oid] = None
        if request.include_tag:
            for ref in self.list_refs():
                if ref.name.startswith("refs/tags/") and ref.peeled is not None and ref.peeled in send:
                    obj = self._obj(ref.oid)
                    while isinstance(obj, Tag):
                        send[_raw(obj.id)] = None
                        obj = self.repo.object_store[obj.object[1]]
        for oid in list(send):
            if oid in have_objects and oid not in request.wants:
                del send[oid]
        if progress:
            progress(f"Counting objects: {len(send)}, done.\n")
        objects = [self._obj(oid) for oid in send]
        write_pack_objects(write, objects, DEFAULT_OBJECT_FORMAT, deltify=False)

    def receive_pack(
        self,
        commands: Sequence[RefCommand],
        read_pack: ReadFn | None,
        context: PushContext,
        progress: ProgressFn | None,
    ) -> PushResult:
        self.pushes.append(context)
        if read_pack is not None:
            data = io.BytesIO()
            while chunk := read_pack(65536):
                data.write(chunk)
            data.seek(0)

            def read_all(n: int) -> bytes:
                out = data.read(n)
                if len(out) < n:
                    raise PackFormatError("pack truncated")
                return out

            try:
                if data.getbuffer().nbytes:
                    self.repo.object_store.add_thin_pack(read_all, data.read)
            except PackFormatError:
                raise
            except Exception as exc:
                raise PackFormatError(f"bad pack: {exc}") from exc
            if progress:
                progress("Resolving deltas: done.\n")
        errors: list[str | None] = []
        refs = self.repo.get_refs()
        for cmd in commands:
            current = refs.get(cmd.ref.encode())
            expected = None if cmd.old == ZERO_OID else _hex(cmd.old)
            if cmd.ref.startswith("refs/heads/protected/"):
                errors.append("protected branch")  # a test-only policy, to see an ng reach git
            elif current != expected:
                errors.append("stale info")
            elif not cmd.is_delete and not self.has_object(cmd.new):
                errors.append("missing necessary objects")
            else:
                errors.append(None)
        if context.atomic and any(errors):
            return PushResult(
                None,
                [RefResult(c.ref, e or "atomic push failed") for c, e in zip(commands, errors, strict=True)],
            )
        results = []
        for cmd, err in zip(commands, errors, strict=True):
            if err is None:
                name = cmd.ref.encode()
                if cmd.is_delete:
                    ok = self.repo.refs.remove_if_equals(name, _hex(cmd.old))
                elif cmd.is_create:
                    ok = self.repo.refs.add_if_new(name, _hex(cmd.new))
                else:
                    ok = self.repo.refs.set_if_equals(name, _hex(cmd.old), _hex(cmd.new))
                err = None if ok else "failed to update ref"
            results.append(RefResult(cmd.ref, err))
        return PushResult(None, results)
