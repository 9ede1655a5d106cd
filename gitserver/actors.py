"""The actor runtime: one live ``RepoActor`` per repository, woken on demand.

Rules:
- Identity: ``ActorHost`` maps a repo id to at most one live actor. All traffic for a
  repo goes through it.
- Single writer: ``writing()`` holds the actor's ``trio.Lock``; readers (``reading()``)
  never take it and use their own read-only SQLite connections (WAL), so clones run beside
  a push and beside each other.
- Wake = open a SQLite connection, nothing else eager (a lazy fork's file is made first,
  through the host's ``materialize`` hook). Hibernate = close every
  connection. A hibernated actor is forgotten by the host: it holds no task, no thread
  and no file descriptor. An actor that was forgotten while a caller still held it
  forwards that caller to the live one, so two actors never write one repo.
- Blocking work (SQLite, zlib, hashing) runs in worker threads under the host's
  ``CapacityLimiter``; every ``RepoStore`` is used by one thread at a time.
- The sweeper runs in a nursery owned by whoever calls ``ActorHost.run``: it hibernates
  actors idle past ``idle_timeout``; waking past ``max_resident`` evicts the least
  recently used idle actor.
- A read connection's view remembers its last ``list_refs`` answer, and up to
  ``ANSWERS`` whole small protocol answers (``smart_http.asgi.AnswerCache``: a v2
  ls-refs request's bytes -> its response, at most ``ANSWER_MAX`` bytes each), with the
  connection's ``PRAGMA data_version``, and answers from them while that is unchanged:
  SQLite changes it after any commit to the file by another connection (this actor's
  writer, another process), so nothing is ever stale. A no-op fetch's ls-refs is then
  answered in the event loop (one ``data_version`` read, microseconds, no I/O: the
  connection is the request's own, taken from the idle pool) without a worker thread.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio

if TYPE_CHECKING:
    from storage.model import Ref
    from storage.repo_store import RepoStore
    from storage.repository import Repository

T = TypeVar("T")

MAX_IDLE_READERS = 2  # read connections an awake actor keeps open between requests
ANSWERS = 2  # small protocol answers remembered per read connection
ANSWER_MAX = 64 * 1024  # bytes of one remembered answer


def _open_store(path: Path, readonly: bool) -> RepoStore:
    from storage.repo_store import RepoStore

    return RepoStore.open(path, readonly=readonly)


_views: dict[int, Repository] = {}


def _repository(store: RepoStore) -> Repository:
    """The repository view bound to ``store``; one per connection, so its caches live
    as long as the connection does (they are keyed by the refs state, never stale).
    Read connections get the ``list_refs`` memo of the module rules."""
    view = _views.get(id(store))
    if view is None or view.store is not store:
        from storage.repository import Repository

        view = Repository(store)
        if store.readonly:
            view = _ReadMemo(view)  # type: ignore[assignment]
        _views[id(store)] = view
    return view


class _ReadMemo:
    """A read connection's repository view whose ``list_refs`` and small answers are
    remembered while the connection's ``PRAGMA data_version`` stays the same (module rules)."""

    def __init__(self, inner: Repository) -> None:
        self._inner = inner
        self._refs: list[Ref] | None = None
        self._version = -1
        self._answers: dict[bytes, bytes] = {}
        self._answers_version = -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _data_version(self) -> int:
        return int(self._inner.store.connection.execute("PRAGMA data_version").fetchone()[0])

    def list_refs(self) -> list[Ref]:
        version = self._data_version()
        if self._refs is None or version != self._version:
            self._refs = self._inner.list_refs()
            self._version = version
        return list(self._refs)

    def answer_for(self, request: bytes) -> tuple[bytes | None, int]:
        """The remembered answer to ``request`` (None if none) and the stamp to pass to
        ``remember`` for an answer computed from now on."""
        version = self._data_version()
        if version != self._answers_version:
            self._answers.clear()
            self._answers_version = version
        return self._answers.get(request), version

    def remember(self, request: bytes, answer: bytes, stamp: int) -> None:
        if stamp != self._answers_version or len(answer) > ANSWER_MAX:
            return
        if len(self._answers) >= ANSWERS:
            self._answers.pop(next(iter(self._answers)))
        self._answers[request] = answer


def _close_store(store: RepoStore) -> None:
    _views.pop(id(store), None)
    store.close()


class WriteHooks(Protocol):
    def before_write(self, repo_id: str) -> None: ...

    def after_write(self, repo_id: str, store: RepoStore) -> None: ...


class _HookedPushes:
    """A writer's repository view whose ``receive_pack`` runs the write hooks around the
    push, in the push's worker thread, before git sees the report."""

    def __init__(self, inner: Repository, repo_id: str, hooks: list[WriteHooks]) -> None:
        self._inner = inner
        self._repo_id = repo_id
        self._hooks = hooks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def receive_pack(self, *args: Any, **kwargs: Any) -> Any:
        return _hooked(
            self._hooks, self._repo_id, self._inner.store, self._inner.receive_pack, *args, **kwargs
        )


def _hooked(
    hooks: list[WriteHooks], repo_id: str, store: RepoStore, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``fn(*args)`` between every hook's ``before_write`` and ``after_write``, in order."""
    for hook in hooks:
        hook.before_write(repo_id)
    result = fn(*args, **kwargs)
    for hook in hooks:
        hook.after_write(repo_id, store)
    return result


class RepoActor:
    """The single owner of one repository's SQLite file inside this process."""

    def __init__(self, host: ActorHost, repo_id: str, path: Path) -> None:
        self.repo_id = repo_id
        self.path = path
        self._host = host
        self._write_lock = trio.Lock()
        self._writer: RepoStore | None = None
        self._idle_readers: list[RepoStore] = []
        self._active = 0
        self._dead = False
        self.last_used = time.monotonic()

    # -- public surface -------------------------------------------------------------

    @property
    def is_idle(self) -> bool:
        return self._active == 0 and not self._write_lock.locked()

    @property
    def open_connections(self) -> int:
        return len(self._idle_readers) + (1 if self._writer is not None else 0)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Repository]:
        """A repository view on a read-only connection of its own."""
        async with self._read_store() as store:
            yield _repository(store)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Repository]:
        """The repository's single writer; other writers wait. Its ``receive_pack`` runs
        the host's write hooks (durability) around the push."""
        async with self._write_store() as store:
            repo = _repository(store)
            hooks = self._host.write_hooks
            yield _HookedPushes(repo, self.repo_id, hooks) if hooks else repo  # type: ignore[misc]

    async def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` in a worker thread on a read connection."""
        async with self._read_store() as store:
            return await trio.to_thread.run_sync(fn, store, *args, limiter=self._host.limiter)

    async def run_write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` in a worker thread as the repo's single writer, between
        the host's write hooks (``before_write`` may refuse, ``after_write`` makes it durable)."""
        hooks = list(self._host.write_hooks)
        repo_id = self.repo_id

        def call(store: RepoStore, *a: Any) -> T:
            return _hooked(hooks, repo_id, store, fn, store, *a)

        async with self._write_store() as store:
            return await trio.to_thread.run_sync(call, store, *args, limiter=self._host.limiter)

    # -- connections ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _read_store(self) -> AsyncIterator[RepoStore]:
        if self._dead:  # forgotten by the host while our caller held us: use the live actor
            async with self._host.actor(self.repo_id, self.path)._read_store() as store:
                yield store
            return
        self._active += 1
        try:
            if self._idle_readers:
                store = self._idle_readers.pop()
            else:
                store = await self._open(readonly=True)
            try:
                yield store
            finally:
                # Closed rather than pooled when the actor was hibernated by force while we
                # read, or when enough readers are pooled already: each one carries object,
                # chunk and page caches, so a burst of concurrent clones must not leave
                # that many behind (memory would grow with peak concurrency).
                if self._dead or len(self._idle_readers) >= MAX_IDLE_READERS:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(_close_store, store, limiter=self._host.limiter)
                else:
                    self._idle_readers.append(store)
        finally:
            self._active -= 1
            self.last_used = time.monotonic()

    @contextlib.asynccontextmanager
    async def _write_store(self) -> AsyncIterator[RepoStore]:
        if self._dead:
            async with self._host.actor(self.repo_id, self.path)._write_store() as store:
                yield store
            return
        self._active += 1
        try:
            async with self._write_lock:
                if self._writer is None:
                    self._writer = await self._open(readonly=False)
                yield self._writer
        finally:
            self._active -= 1
            self.last_used = time.monotonic()

    async def _open(self, *, readonly: bool) -> RepoStore:
        was_asleep = self.open_connections == 0
        make = self._host.materialize
        if make is not None and not self.path.exists():  # a fork made lazily (gitserver.forks)
            await trio.to_thread.run_sync(make, self.repo_id, limiter=self._host.limiter)
        if was_asleep and self._host.before_wake is not None:  # rehydration (gitserver.tiering)
            await self._host.before_wake(self.repo_id, self.path)
        store = await trio.to_thread.run_sync(_open_store, self.path, readonly, limiter=self._host.limiter)
        if was_asleep:
            self._host._note_wake(self)
        return store

    def _take_connections(self) -> list[RepoStore]:
        stores = list(self._idle_readers)
        self._idle_readers.clear()
        if self._writer is not None:
            stores.append(self._writer)
            self._writer = None
        return stores


class ActorHost:
    """Owns every live actor of this process; see the module header for the rules."""

    def __init__(
        self,
        limiter: trio.CapacityLimiter | None = None,
        idle_timeout: float = 60.0,
        max_resident: int = 1000,
        sweep_interval: float | None = None,
    ) -> None:
        self.limiter = limiter or trio.CapacityLimiter(8)
        self.idle_timeout = idle_timeout
        self.max_resident = max_resident
        self._sweep_interval = sweep_interval or max(0.05, min(idle_timeout / 4, 5.0))
        self._actors: OrderedDict[str, RepoActor] = OrderedDict()  # least recently used first
        self._wakes = 0
        self._hibernations = 0
        # makes the file of a repo that has none yet (a lazy fork), by repo id; set by Services
        self.materialize: Callable[[str], None] | None = None
        # awaited before a sleeping actor opens its file (rebuilds a dropped file); and the
        # hooks run around every write in its worker thread; both set by gitserver.tiering
        self.before_wake: Callable[[str, Path], Awaitable[None]] | None = None
        self.write_hooks: list[WriteHooks] = []

    def actor(self, repo_id: str, path: Path) -> RepoActor:
        """The live actor for ``repo_id``, created (not yet woken) when there is none."""
        actor = self._actors.get(repo_id)
        if actor is None:
            actor = RepoActor(self, repo_id, path)
            self._actors[repo_id] = actor
        else:
            self._actors.move_to_end(repo_id)
        return actor

    def peek(self, repo_id: str) -> RepoActor | None:
        return self._actors.get(repo_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The idle sweeper; runs until cancelled, then hibernates everything."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self._sweep_interval)
                await self.sweep()
        finally:
            with trio.CancelScope(shield=True):
                await self.hibernate_all()

    async def sweep(self) -> None:
        """Hibernate every actor idle for longer than ``idle_timeout``."""
        deadline = time.monotonic() - self.idle_timeout
        for actor in list(self._actors.values()):
            if actor.is_idle and actor.last_used <= deadline:
                await self._hibernate(actor)

    async def forget(self, repo_id: str) -> None:
        """Hibernate and drop an actor (repo deleted). Waits for its writer to finish."""
        actor = self._actors.get(repo_id)
        if actor is None:
            return
        async with actor._write_lock:
            await self._hibernate(actor, force=True)

    async def hibernate_all(self) -> None:
        for repo_id in list(self._actors):
            await self.forget(repo_id)

    def statistics(self) -> dict[str, int]:
        resident = sum(1 for a in self._actors.values() if a.open_connections)
        return {
            "resident_actors": resident,
            "known_actors": len(self._actors),
            "wakes_total": self._wakes,
            "hibernations_total": self._hibernations,
        }

    # -- internals ------------------------------------------------------------------

    def _note_wake(self, actor: RepoActor) -> None:
        self._wakes += 1
        if actor.repo_id in self._actors:
            self._actors.move_to_end(actor.repo_id)
        resident = [a for a in self._actors.values() if a.open_connections or a is actor]
        excess = len(resident) - self.max_resident
        for victim in resident:
            if excess <= 0:
                break
            if victim is not actor and victim.is_idle:
                self._close_now(victim)
                excess -= 1

    async def _hibernate(self, actor: RepoActor, force: bool = False) -> None:
        if not force and not actor.is_idle:
            return
        stores = actor._take_connections()
        actor._dead = True
        if self._actors.get(actor.repo_id) is actor:
            del self._actors[actor.repo_id]
        if stores:
            self._hibernations += 1
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_close_all, stores, limiter=self.limiter)

    def _close_now(self, actor: RepoActor) -> None:
        """Evict synchronously (LRU cap): closing SQLite handles is quick."""
        stores = actor._take_connections()
        actor._dead = True
        if self._actors.get(actor.repo_id) is actor:
            del self._actors[actor.repo_id]
        if stores:
            self._hibernations += 1
            _close_all(stores)


def _close_all(stores: list[RepoStore]) -> None:
    for store in stores:
        _close_store(store)
