"""The writer side of a repository's copy in the blob store: segments and snapshot commits.

Rules:
- One ``Replica`` per repository per process; its lock serializes every manifest update
  of that repo (segment shipping and snapshot commits). Methods are synchronous (worker
  threads).
- ``ship(store)`` runs on the repo's write connection right after a write committed
  (under the actor's write lock): it uploads everything past the manifest's marks (new
  packs exactly as stored, new reflog rows, a changed HEAD) as one segment object, then
  puts the manifest naming it. When it returns, the write is durable in the blob store.
- ``commit_snapshot(info)`` makes a written snapshot the manifest's base, drops the
  segments it covers and snapshots beyond ``KEEP_SNAPSHOTS``, then deletes their objects
  (best effort: an orphan object is harmless, a missing named one is not).
- Fencing (storage.manifest): the cached manifest must name this file's writer id; a
  lost conditional put raises ``RepoFenced`` and the replica stays fenced (every later
  call raises) until ``reset``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from storage.blobstore import BlobStore, BlobStoreError
from storage.manifest import (
    KEEP_SNAPSHOTS,
    Manifest,
    RepoFenced,
    SegmentInfo,
    SnapshotInfo,
    load_manifest,
    put_manifest,
    segment_key,
    snapshot_keys,
)
from storage.rehydrate import ensure_writer_id
from storage.replica_format import SegmentHeader
from storage.schema import SEQ_BITS

if TYPE_CHECKING:
    from storage.repo_store import RepoStore

log = logging.getLogger("gitserver.replica")


class Replica:
    """The blob-store copy of one repository, as seen by its single local writer."""

    def __init__(self, blobs: BlobStore, repo_id: str) -> None:
        self.blobs = blobs
        self.repo_id = repo_id
        self.lock = threading.Lock()
        self._cached: tuple[Manifest, str] | None = None
        self._loaded = False  # _cached is known (None then means: no manifest yet)
        self._fenced: RepoFenced | None = None

    # -- state ----------------------------------------------------------------------------

    def adopt(self, manifest: Manifest, etag: str) -> None:
        """Use this manifest as current (after a rehydrate claimed it)."""
        with self.lock:
            self._cached = (manifest, etag)
            self._loaded = True
            self._fenced = None

    def reset(self) -> None:
        """Forget the cached manifest and any fencing (the local file was replaced)."""
        with self.lock:
            self._cached = None
            self._loaded = False
            self._fenced = None

    @property
    def fenced(self) -> RepoFenced | None:
        return self._fenced

    def current(self) -> tuple[Manifest, str] | None:
        """The manifest (cached, else read) and its ETag; None when there is none."""
        if not self._loaded:
            self._cached = load_manifest(self.blobs, self.repo_id)
            self._loaded = True
        return self._cached

    def _owned(self, writer: str, head: str) -> tuple[Manifest, str | None]:
        if self._fenced is not None:
            raise self._fenced
        found = self.current()
        if found is None:
            return Manifest(self.repo_id, writer, head=head), None
        manifest, etag = found
        if manifest.writer != writer:
            self._fenced = RepoFenced(self.repo_id, writer, manifest.writer)
            raise self._fenced
        return manifest, etag

    def _put(self, manifest: Manifest, etag: str | None) -> str:
        try:
            new_etag = put_manifest(self.blobs, manifest, etag)
        except RepoFenced as exc:
            self._fenced = exc
            self._cached, self._loaded = None, False
            raise
        self._cached, self._loaded = (manifest, new_etag), True
        return new_etag

    # -- segments -------------------------------------------------------------------------

    def ship(self, store: RepoStore) -> SegmentInfo | None:
        """Make everything ``store`` committed durable in the blob store (see module rules).

        Returns the segment written, or None when there was nothing new. Raises
        RepoFenced, BlobStoreError."""
        writer = ensure_writer_id(store)
        conn = store.connection
        with self.lock:
            head = store.head()
            manifest, etag = self._owned(writer, head)
            alternates = tuple(store.alternate_paths())
            packs = conn.execute(
                "SELECT id, size FROM packs WHERE id > ? ORDER BY id", (manifest.pack_mark,)
            ).fetchall()
            logs = conn.execute(
                "SELECT id, ref, old, new, at, token_id, via, message FROM reflog WHERE id > ? ORDER BY id",
                (manifest.reflog_mark,),
            ).fetchall()
            if not packs and not logs:
                if etag is not None and head == manifest.head and alternates == manifest.alternates:
                    return None
                self._put(manifest.bump(head=head, alternates=alternates), etag)
                return None
            pack_mark = packs[-1][0] if packs else manifest.pack_mark
            reflog_mark = logs[-1][0] if logs else manifest.reflog_mark
            header = SegmentHeader(
                head,
                [size for _, size in packs],
                [
                    [r, bytes(o).hex(), bytes(n).hex(), at, tok, via, msg or ""]
                    for _, r, o, n, at, tok, via, msg in logs
                ],
                sorted(o.hex() for o in store.shallow_commits()),
            )
            key = segment_key(self.repo_id, writer, manifest.generation + 1)
            self.blobs.put(key, _segment_pieces(store, header, [pid for pid, _ in packs]))
            size = len(header.encode()) + sum(s for _, s in packs)
            seg = SegmentInfo(key, writer, pack_mark, reflog_mark, time.time_ns() // 1000, size)
            self._put(
                manifest.bump(
                    head=head,
                    alternates=alternates,
                    pack_mark=pack_mark,
                    reflog_mark=reflog_mark,
                    segments=(*manifest.segments, seg),
                ),
                etag,
            )
            return seg

    # -- snapshots ------------------------------------------------------------------------

    def commit_snapshot(self, info: SnapshotInfo) -> Manifest:
        """Make ``info`` (written by this writer) the manifest's base. Raises RepoFenced."""
        with self.lock:
            manifest, etag = self._owned(info.writer, info.head)
            kept = tuple(
                s
                for s in manifest.segments
                if s.writer == info.writer
                and (s.pack_mark > info.pack_mark or s.reflog_mark > info.reflog_mark)
            )
            history = (info, *manifest.history)
            new = manifest.bump(
                snapshot=info,
                segments=kept,
                history=history[:KEEP_SNAPSHOTS],
                pack_mark=max(manifest.pack_mark, info.pack_mark),
                reflog_mark=max(manifest.reflog_mark, info.reflog_mark),
            )
            self._put(new, etag)
        doomed = [s.key for s in manifest.segments if s not in kept]
        for old in history[KEEP_SNAPSHOTS:]:
            doomed.extend(snapshot_keys(self.repo_id, old.id))
        for key in doomed:
            try:
                self.blobs.delete(key)
            except BlobStoreError as exc:  # an orphan costs space, nothing else
                log.warning("could not delete %s: %s", key, exc)
        return new

    def snapshots(self) -> list[SnapshotInfo]:
        """Snapshots kept for this repo, newest first."""
        with self.lock:
            found = self.current()
        return list(found[0].history) if found else []


def _segment_pieces(store: RepoStore, header: SegmentHeader, pack_ids: list[int]) -> Iterator[bytes]:
    yield header.encode()
    conn = store.connection
    for pack_id in pack_ids:
        last = (pack_id << SEQ_BITS) - 1
        while True:
            row = conn.execute(
                "SELECT id, data FROM chunks WHERE id > ? AND id < ? ORDER BY id LIMIT 1",
                (last, (pack_id + 1) << SEQ_BITS),
            ).fetchone()
            if row is None:
                break
            last = row[0]
            yield bytes(row[1])
