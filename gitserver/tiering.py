"""Tiered storage in the server: durability, snapshots, cold repos, rehydration.

Rules:
- The repo's SQLite file is a cache; the blob store (storage.manifest) is where the repo
  survives. ``Tiering`` owns one ``storage.replica.Replica`` per repo and plugs into the
  actor host: ``before_wake`` (rebuild a missing file, under a per-repo lock) and the
  write hooks ``before_write`` / ``after_write`` (run in the writer's worker thread).
- ``--durability remote``: ``after_write`` ships the write (segment + manifest) before it
  returns, i.e. before git sees ``ok``; a failure raises ``DurabilityError`` (git shows
  it as the unpack error). ``--durability local``: nothing is shipped per write; the blob
  store holds the latest snapshot.
- Fenced repos (another writer took the manifest) refuse every later write in this
  process with ``DurabilityError`` before anything is written.
- Snapshots: on demand (``snapshot``), automatically when ``--snapshot-after-bytes`` of
  new packs or ``--snapshot-after-segments`` segments pile up since the last one (queued
  to the task started by ``run``), and before a cold repo is dropped.
- Cold repos: ``run`` sweeps the repo files; one unused (no live actor, no wake, no
  write) for ``--cold-after`` seconds is snapshotted (unless its latest snapshot already
  equals the local state), the snapshot's objects are confirmed with ``head``, then its
  file is removed. Forks and repos that forks use are never dropped (their files are
  each other's alternates). The next request rebuilds it (``before_wake``).
- Forks (gitserver.forks): ``before_wake`` also makes the file of a lazy fork, and it
  rebuilds a missing file parent-first: every ancestor without a file (repo or nameless
  pool) is rehydrated, or made from its pending ref set, before the fork; each under
  its own wake lock. A repo's manifest wins over a pending ref set. When a lazy fork's
  file is made under remote durability it is shipped at once (its manifest holds its
  refs from then on), then its catalog entry is rewritten without the ref set and the
  ref-set object deleted once nothing names it (gitserver.catalog_mirror).
- Fork creation under remote durability is acknowledged only once the fork's catalog
  entry (and ref set) is in the blob store (``ensure_mirrored``). A deleted repo that
  forks still need keeps a pool entry; a freed pool loses its entry and its objects.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from gitserver import catalog_mirror, forks, repo_files
from gitserver.catalog import Catalog, RepoRecord
from gitserver.clock import now_us
from gitserver.config import Settings
from gitserver.errors import ApiError
from storage.blobstore import BlobStore, BlobStoreError
from storage.errors import GitUserError, StorageError
from storage.manifest import Manifest, RepoFenced, SnapshotInfo, snapshot_keys
from storage.rehydrate import ensure_writer_id, rehydrate, remove_store_files, writer_id
from storage.replica import Replica
from storage.snapshot import marks, write_snapshot

if TYPE_CHECKING:
    from gitserver.actors import ActorHost
    from storage.repo_store import RepoStore

log = logging.getLogger("gitserver.tiering")


class DurabilityError(GitUserError):
    """A write could not be made durable in the blob store (or the repo is fenced:
    ``fenced`` is then True, and the REST API answers ``409 CONFLICT``)."""

    def __init__(self, message: str, *, fenced: bool = False) -> None:
        super().__init__(message)
        self.fenced = fenced

    def api_error(self) -> ApiError:
        """The REST answer: ``409 CONFLICT`` when fenced (another copy owns the repo), else
        ``500 INTERNAL_ERROR`` saying the write is not acknowledged."""
        return ApiError("CONFLICT" if self.fenced else "INTERNAL_ERROR", str(self))


def new_snapshot_id(at_us: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(at_us // 1_000_000))
    return f"{stamp}.{at_us % 1_000_000:06d}Z-{secrets.token_hex(3)}"


class Tiering:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        catalog: Catalog,
        host: ActorHost,
        limiter: trio.CapacityLimiter,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.catalog = catalog
        self.host = host
        self.limiter = limiter
        self.remote = settings.durability == "remote"
        self._replicas: dict[str, Replica] = {}
        self._replicas_lock = threading.Lock()
        self._wake_locks: dict[str, trio.Lock] = {}
        self._last_active: dict[str, float] = {}  # wall-clock seconds
        self._mirrored: set[str] = set()
        self._ref_sets_uploaded: set[str] = set()  # ref-set objects known in the blob store
        self._pending: set[str] = set()
        self._send, self._recv = trio.open_memory_channel[str](256)
        self._token: trio.lowlevel.TrioToken | None = None
        self.rehydrations = 0
        self.drops = 0

    # -- wiring ---------------------------------------------------------------------------

    def install(self) -> None:
        """Restore the catalog if this data dir is empty, mirror it, and hook the host."""
        catalog_mirror.restore(self.catalog, self.blobs)
        catalog_mirror.reconcile(self.catalog, self.blobs)
        self.catalog.on_create = self._on_create
        self.host.materialize = None  # lazy forks are made by before_wake, after rehydration
        self.host.before_wake = self.before_wake
        self.host.write_hooks.append(self)

    def replica(self, repo_id: str) -> Replica:
        with self._replicas_lock:
            found = self._replicas.get(repo_id)
            if found is None:
                found = self._replicas[repo_id] = Replica(self.blobs, repo_id)
            return found

    def _on_create(self, record: RepoRecord) -> None:
        catalog_mirror.mirror(self.blobs, record, self.catalog, self._ref_sets_uploaded)
        self._mirrored.add(record.id)

    def remirror(self, record: RepoRecord) -> None:
        """Write a repo's catalog entry again after its row changed (e.g. default branch)."""
        self._mirrored.discard(record.id)
        self.ensure_mirrored(record)

    def ensure_mirrored(self, record: RepoRecord) -> None:
        """Make sure a new repo's catalog entry (a fork's ref set too) is in the blob store.

        Under remote durability a failure raises DurabilityError (the caller undoes the
        creation); under local durability it is logged (``reconcile`` catches up at start)."""
        if record.id in self._mirrored:
            return
        try:
            self._on_create(record)
        except (BlobStoreError, StorageError) as exc:
            if self.remote:
                raise DurabilityError(
                    f"remote durability failed, {record.full_name} is not created: {exc}"
                ) from None
            log.warning("could not mirror new repo %s: %s", record.id, exc)

    def fenced(self, repo_id: str) -> DurabilityError | None:
        """The error a write to ``repo_id`` would get because it is fenced, if it is."""
        found = self.replica(repo_id).fenced
        return None if found is None else DurabilityError(str(found), fenced=True)

    def repo_deleted(self, repo_id: str, removed: list[str], ref_sets: list[str]) -> None:
        """Forget a deleted repo in the blob store. ``removed``: the ids whose files went
        (the repo's own unless forks still need it, then it is a pool; and freed pools);
        ``ref_sets``: ref sets the deleted rows named (their objects go once unused)."""
        gone = set(removed)
        for rid in dict.fromkeys([repo_id, *removed]):
            if rid not in gone:  # a pool now: its entry says so, its objects stay
                if not catalog_mirror.mirror_pool(self.blobs, self.catalog, rid, self._ref_sets_uploaded):
                    catalog_mirror.unmirror(self.blobs, rid)
                continue
            catalog_mirror.unmirror(self.blobs, rid)
            self._mirrored.discard(rid)
            for key, _size, _etag in list(self.blobs.list(f"repos/{rid}/")):
                self.blobs.delete(key)
            with self._replicas_lock:
                self._replicas.pop(rid, None)
        self._mirrored.discard(repo_id)
        if not self.remote:  # entries of forks made without shipping may still name them
            return
        for digest in dict.fromkeys(ref_sets):
            if forks.ref_set_unused(self.catalog, digest):
                self._drop_ref_set(digest)

    def _drop_ref_set(self, digest: str) -> None:
        self._ref_sets_uploaded.discard(digest)
        try:
            catalog_mirror.drop_ref_set(self.blobs, digest)
        except BlobStoreError as exc:  # an orphan costs space, nothing else
            log.warning("could not delete ref set %s: %s", digest, exc)

    # -- waking ---------------------------------------------------------------------------

    def _wake_lock(self, repo_id: str) -> trio.Lock:
        lock = self._wake_locks.get(repo_id)
        if lock is None:
            lock = self._wake_locks[repo_id] = trio.Lock()
        return lock

    async def before_wake(self, repo_id: str, path: Path) -> None:
        """Called by an actor before it opens its first connection: rebuild a missing file
        (and first its missing ancestors', root first), or make a lazy fork's file."""
        chain: list[forks.Node] = []
        if not path.exists():
            chain = await trio.to_thread.run_sync(forks.lineage, self.catalog, repo_id, limiter=self.limiter)
        for ancestor in reversed(chain[1:]):  # root first, each under its own lock
            if not ancestor.path.exists():
                async with self._wake_lock(ancestor.id):
                    if not ancestor.path.exists():
                        await trio.to_thread.run_sync(
                            self._build, ancestor.id, ancestor.path, ancestor, limiter=self.limiter
                        )
        async with self._wake_lock(repo_id):
            self._last_active[repo_id] = time.time()
            if not path.exists():
                own = chain[0] if chain else None
                await trio.to_thread.run_sync(self._build, repo_id, path, own, limiter=self.limiter)

    def _build(self, repo_id: str, path: Path, node: forks.Node | None) -> None:
        """Make the missing file of one repo or pool whose ancestors have theirs: from its
        manifest, else from its pending ref set (a lazy fork), else empty."""
        started = time.monotonic()
        restored = rehydrate(self.blobs, repo_id, path)
        if restored is not None:
            self.replica(repo_id).adopt(*restored)
            self.rehydrations += 1
            log.info("rehydrated %s in %.3f s", repo_id, time.monotonic() - started)
            self._note_figures(repo_id, path)
            return
        if node is None:
            return  # no such repo: opening fails with FileNotFoundError
        if node.ref_set is not None and node.forked_from is not None:
            self._make_fork(node)
            return
        from storage.repo_store import RepoStore

        log.warning("repo %s has no local file and nothing in the blob store: starting it empty", repo_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        RepoStore.create(path, head=f"refs/heads/{node.default_branch}").close()
        self.replica(repo_id).reset()

    def _make_fork(self, node: forks.Node) -> None:
        """Make a lazy fork's file from its ref set; under remote durability ship it before
        the catalog forgets the ref set, so its refs are never only local."""
        from storage.repo_store import RepoStore

        if forks.build_file(self.catalog, node.id) is None:
            return
        self.replica(node.id).reset()
        if self.remote:
            try:
                with RepoStore.open(node.path) as store:
                    self.replica(node.id).ship(store)
            except (BlobStoreError, StorageError) as exc:
                remove_store_files(node.path)  # still pending: the ref set stays the truth
                raise DurabilityError(f"remote durability failed, fork {node.id} not made: {exc}") from None
        unused = forks.finish(self.catalog, node)
        if not self.remote:  # nothing shipped: the entry's ref set stays its way back
            return
        try:
            record = self.catalog.get_by_id(node.id)
            if record is not None:
                catalog_mirror.mirror(self.blobs, record, self.catalog, self._ref_sets_uploaded)
            else:
                catalog_mirror.mirror_pool(self.blobs, self.catalog, node.id, self._ref_sets_uploaded)
        except (BlobStoreError, StorageError) as exc:  # the entry keeps naming the ref set: harmless
            log.warning("could not rewrite the catalog entry of fork %s: %s", node.id, exc)
            return
        if unused and node.ref_set is not None:
            self._drop_ref_set(node.ref_set)

    def _note_figures(self, repo_id: str, path: Path) -> None:
        from storage.repo_store import RepoStore

        with RepoStore.open(path, readonly=True) as store:
            size, count = repo_files.size_figures(store)
            self.catalog.note_push(repo_id, repo_files.last_ref_update_us(store), size, count)

    # -- writes (worker threads) ----------------------------------------------------------

    def before_write(self, repo_id: str) -> None:
        fenced = self.fenced(repo_id)
        if fenced is not None:
            raise fenced

    def after_write(self, repo_id: str, store: RepoStore) -> None:
        self._last_active[repo_id] = time.time()
        replica = self.replica(repo_id)
        if self.remote:
            try:
                # ship first: an entry drops a fork's ref set only once its manifest exists
                replica.ship(store)
                if repo_id not in self._mirrored:
                    record = self.catalog.get_by_id(repo_id)
                    if record is not None:
                        catalog_mirror.mirror(self.blobs, record, self.catalog, self._ref_sets_uploaded)
                    self._mirrored.add(repo_id)
            except RepoFenced as exc:
                raise DurabilityError(str(exc), fenced=True) from None
            except (BlobStoreError, StorageError) as exc:
                raise DurabilityError(
                    f"remote durability failed, the push is not acknowledged: {exc}"
                ) from None
        try:
            if self._wants_snapshot(replica, store):
                self._request_snapshot(repo_id)
        except (BlobStoreError, StorageError) as exc:
            log.warning("snapshot check of %s failed: %s", repo_id, exc)

    def _wants_snapshot(self, replica: Replica, store: RepoStore) -> bool:
        found = replica.current()
        manifest = found[0] if found else None
        writer = writer_id(store)
        snap = manifest.snapshot if manifest else None
        mark = snap.pack_mark if snap is not None and snap.writer == writer else 0
        new_bytes = store.connection.execute(
            "SELECT COALESCE(SUM(size), 0) FROM packs WHERE id > ?", (mark,)
        ).fetchone()[0]
        segments = len(manifest.segments) if manifest else 0
        return bool(
            new_bytes >= self.settings.snapshot_after_bytes
            or segments >= self.settings.snapshot_after_segments
        )

    def _request_snapshot(self, repo_id: str) -> None:
        if repo_id in self._pending or self._token is None:
            return
        self._pending.add(repo_id)
        try:
            trio.from_thread.run_sync(self._send.send_nowait, repo_id, trio_token=self._token)
        except (trio.WouldBlock, trio.RunFinishedError):
            self._pending.discard(repo_id)

    # -- snapshots ------------------------------------------------------------------------

    async def snapshot(self, record: RepoRecord) -> SnapshotInfo:
        """Take a snapshot of the repo now (through its actor). Raises RepoFenced."""
        actor = self.host.actor(record.id, record.path)
        writer = await actor.run_write(ensure_writer_id)
        at = now_us()
        info = await actor.run_read(
            functools.partial(write_snapshot, writer=writer, at=at),
            self.blobs,
            record.id,
            new_snapshot_id(at),
        )
        await trio.to_thread.run_sync(self.replica(record.id).commit_snapshot, info, limiter=self.limiter)
        log.info("snapshot %s of %s: %d objects, %d bytes", info.id, record.id, info.objects, info.size)
        return info

    async def snapshots(self, record: RepoRecord) -> list[SnapshotInfo]:
        return await trio.to_thread.run_sync(self.replica(record.id).snapshots, limiter=self.limiter)

    # -- background -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Auto-snapshots and the cold sweep; runs until cancelled."""
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._snapshot_worker)
            nursery.start_soon(self._cold_loop)
            task_status.started()

    async def _snapshot_worker(self) -> None:
        async for repo_id in self._recv:
            try:
                record = await trio.to_thread.run_sync(self.catalog.get_by_id, repo_id, limiter=self.limiter)
                if record is not None:
                    await self.snapshot(record)
            except Exception:
                log.exception("automatic snapshot of %s failed", repo_id)
            finally:
                self._pending.discard(repo_id)

    async def _cold_loop(self) -> None:
        interval = min(max(self.settings.cold_after / 4, 0.5), 60.0)
        while True:
            await trio.sleep(interval)
            try:
                await self.sweep_cold()
            except Exception:
                log.exception("cold sweep failed")

    async def sweep_cold(self) -> int:
        """Drop every repo file unused for ``cold_after`` seconds; returns how many."""
        dropped = 0
        now = time.time()
        for path in sorted(self.settings.repos_dir.glob("*/*.sqlite")):
            repo_id = path.stem
            if not self._idle(repo_id) or now - self._last_use(repo_id, path) < self.settings.cold_after:
                continue
            record = await trio.to_thread.run_sync(self._droppable, repo_id, limiter=self.limiter)
            if record is None:
                continue
            async with self._wake_lock(repo_id):
                if not self._idle(repo_id) or not path.exists():
                    continue
                try:
                    await trio.to_thread.run_sync(self._drop, repo_id, path, limiter=self.limiter)
                    dropped += 1
                except Exception:
                    log.exception("could not drop cold repo %s", repo_id)
        return dropped

    def _idle(self, repo_id: str) -> bool:
        actor = self.host.peek(repo_id)
        return actor is None or (actor.open_connections == 0 and actor.is_idle)

    def _last_use(self, repo_id: str, path: Path) -> float:
        times = [self._last_active.get(repo_id, 0.0)]
        for suffix in ("", "-wal"):
            try:
                times.append(Path(str(path) + suffix).stat().st_mtime)
            except FileNotFoundError:
                pass
        return max(times)

    def _droppable(self, repo_id: str) -> RepoRecord | None:
        record = self.catalog.get_by_id(repo_id)
        if record is None or record.forked_from or self.catalog.forks_of(repo_id):
            return None
        return record

    def _drop(self, repo_id: str, path: Path) -> None:
        from storage.repo_store import RepoStore

        replica = self.replica(repo_id)
        with RepoStore.open(path) as store:
            writer = ensure_writer_id(store)
            found = replica.current()
            snap = _covering_snapshot(found[0] if found else None, store, writer)
            if snap is None:
                at = now_us()
                snap = write_snapshot(store, self.blobs, repo_id, new_snapshot_id(at), writer=writer, at=at)
                replica.commit_snapshot(snap)
        for key in snapshot_keys(repo_id, snap.id):
            if self.blobs.head(key) is None:
                raise StorageError(f"snapshot object {key} is missing: keeping the local file")
        remove_store_files(path)
        replica.reset()
        self._last_active.pop(repo_id, None)
        self.drops += 1
        log.info("dropped cold repo %s (snapshot %s)", repo_id, snap.id)


def _covering_snapshot(manifest: Manifest | None, store: RepoStore, writer: str) -> SnapshotInfo | None:
    """The manifest's snapshot when it holds exactly the store's state, else None."""
    if manifest is None or manifest.writer != writer or manifest.segments:
        return None
    snap = manifest.snapshot
    if snap is None or snap.writer != writer or snap.head != store.head():
        return None
    return snap if (snap.pack_mark, snap.reflog_mark) == marks(store) else None
