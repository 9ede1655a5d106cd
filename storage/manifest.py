"""A repository's manifest in the blob store: what to read to rebuild it, and who writes it.

Rules:
- Key layout, all under the repo's id (never its name, which can be reused):
  ``repos/<id>/manifest.json``, ``repos/<id>/snapshots/<snap>.pack`` (+ ``.idx.zst``,
  ``.refs.zst``) and ``repos/<id>/segments/<writer>-<seq>.seg``.
- The manifest names the latest snapshot and the segments shipped after it, in order;
  the repository is that snapshot plus those segments replayed. Objects it names are
  written BEFORE the manifest that names them, and deleted only after a manifest that no
  longer names them is written.
- Fencing: the manifest is replaced only by a conditional put, ``If-Match`` on the ETag
  the writer last saw, ``If-None-Match`` for the first one. ``writer`` is the incarnation
  id of the local SQLite file that wrote it; a writer whose put loses re-reads the
  manifest: if it still names this writer (its own earlier put whose answer was lost, or
  a crash between put and reply), it adopts it; otherwise another writer won and
  ``RepoFenced`` is raised. The writer must then stop writing that repo.
- ``pack_mark`` / ``reflog_mark`` are the writer's local ``packs.id`` / ``reflog.id``
  maxima already covered by the manifest: the next segment ships what lies beyond them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from storage.blobstore import BlobStore, NotFound, PreconditionFailed
from storage.errors import StorageError

FORMAT = 1
KEEP_SNAPSHOTS = 5  # snapshots listed (and kept) per repo; older ones are deleted


class RepoFenced(StorageError):
    """Another writer replaced this repository's manifest: this one must stop writing."""

    def __init__(self, repo_id: str, writer: str, other: str | None) -> None:
        super().__init__(
            f"repository {repo_id} is fenced: its manifest in the blob store was written by "
            f"{other or 'nobody'}, not by this copy ({writer}); refusing to write"
        )
        self.repo_id = repo_id
        self.writer = writer
        self.other = other


def repo_prefix(repo_id: str) -> str:
    return f"repos/{repo_id}/"


def manifest_key(repo_id: str) -> str:
    return f"repos/{repo_id}/manifest.json"


def snapshot_keys(repo_id: str, snap_id: str) -> tuple[str, str, str]:
    """(pack, index, refs) keys of one snapshot."""
    base = f"repos/{repo_id}/snapshots/{snap_id}"
    return base + ".pack", base + ".idx.zst", base + ".refs.zst"


def segment_key(repo_id: str, writer: str, seq: int) -> str:
    return f"repos/{repo_id}/segments/{writer}-{seq:010d}.seg"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: str
    at: int  # UTC microseconds
    size: int  # bytes of pack + index + refs objects
    key: str  # the pack's key; index and refs sit beside it
    objects: int
    writer: str
    pack_mark: int
    reflog_mark: int
    head: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "size": self.size, "key": self.key}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    key: str
    writer: str
    pack_mark: int
    reflog_mark: int
    at: int
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    repo_id: str
    writer: str
    generation: int = 0
    head: str = "refs/heads/main"
    alternates: tuple[str, ...] = ()  # the store's alternates (a fork's parent files, relative)
    pack_mark: int = 0
    reflog_mark: int = 0
    snapshot: SnapshotInfo | None = None
    segments: tuple[SegmentInfo, ...] = ()
    history: tuple[SnapshotInfo, ...] = field(default_factory=tuple)  # newest first, includes snapshot

    def encode(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.pop("format") != FORMAT:
                raise ValueError("unknown manifest format")
            snap = data.pop("snapshot")
            return cls(
                snapshot=SnapshotInfo(**snap) if snap else None,
                segments=tuple(SegmentInfo(**s) for s in data.pop("segments")),
                history=tuple(SnapshotInfo(**s) for s in data.pop("history")),
                alternates=tuple(data.pop("alternates", ())),
                **data,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageError(f"unreadable repository manifest: {exc}") from None

    def bump(self, **changes: Any) -> Manifest:
        return replace(self, generation=self.generation + 1, **changes)


def load_manifest(blobs: BlobStore, repo_id: str) -> tuple[Manifest, str] | None:
    """The repo's manifest and its ETag, or None when it has none."""
    key = manifest_key(repo_id)
    for _ in range(3):  # replaced between head and get: read again
        found = blobs.head(key)
        if found is None:
            return None
        try:
            raw = b"".join(blobs.get(key))
        except NotFound:
            continue
        again = blobs.head(key)
        if again is not None and again[1] == found[1]:
            return Manifest.decode(raw), found[1]
    raise StorageError(f"manifest of {repo_id} keeps changing while read")


def put_manifest(blobs: BlobStore, manifest: Manifest, etag: str | None) -> str:
    """Replace the manifest if it still has ``etag`` (None: only if there is none).

    Returns the new ETag. Raises RepoFenced when another writer holds the manifest."""
    key = manifest_key(manifest.repo_id)
    raw = manifest.encode()
    try:
        if etag is None:
            return blobs.put(key, raw, if_none_match=True)
        return blobs.put(key, raw, if_match=etag)
    except PreconditionFailed:
        current = load_manifest(blobs, manifest.repo_id)
        # Our own put may have won with its answer lost (S3 retries see 412): same content.
        if current is not None and current[0] == manifest:
            return current[1]
        raise RepoFenced(manifest.repo_id, manifest.writer, current[0].writer if current else None) from None
