"""Writing a snapshot of one RepoStore to the blob store: pack, index, refs manifest.

Rules:
- One read transaction: the pack, the index and the refs manifest describe the same
  state, while pushes go on beside it (WAL). The caller owns the connection.
- The pack is every entry of the store (not its alternates) in stored order, streamed:
  whole entries are copied verbatim, deltas keep their stored zlib stream under a
  REF_DELTA header (base named by id, so no offset table is held). A ref-delta may precede
  its base inside the pack, as git allows. A fork's snapshot is thin on its parent.
- The index records each entry where it sits in the new pack; it is built while the pack
  streams out, into a temporary file (zstandard), then uploaded. Memory stays bounded by
  the pieces in flight, whatever the repository's size.
- Blob objects are written before the manifest names them (storage.manifest).
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from storage.blobstore import BlobStore
from storage.errors import StorageError
from storage.manifest import SnapshotInfo, snapshot_keys
from storage.model import EntryKind, StoredEntry
from storage.packgen import decode_entry_size, encode_entry_header
from storage.replica_format import (
    INDEX_MAGIC,
    ZSTD_LEVEL,
    encode_index_record,
    json_line,
    zstd_pieces,
)

if TYPE_CHECKING:
    from storage.repo_store import RepoStore

FLUSH = 1 << 20


@dataclass
class _PackState:
    size: int = 0
    checksum: bytes = b""
    objects: int = 0


def marks(store: RepoStore) -> tuple[int, int]:
    """The store's newest ``packs.id`` and ``reflog.id`` (0 when none)."""
    conn = store.connection
    pack = conn.execute("SELECT COALESCE(MAX(id), 0) FROM packs").fetchone()[0]
    log = conn.execute("SELECT COALESCE(MAX(id), 0) FROM reflog").fetchone()[0]
    return int(pack), int(log)


def write_snapshot(
    store: RepoStore, blobs: BlobStore, repo_id: str, snap_id: str, *, writer: str, at: int
) -> SnapshotInfo:
    """Write snapshot ``snap_id`` of ``store`` and return what the manifest should record.

    Raises BlobStoreError and StorageError; objects already uploaded by a failed attempt
    are left for the caller's cleanup (no manifest names them)."""
    conn = store.connection
    conn.execute("BEGIN")
    try:
        pack_key, index_key, refs_key = snapshot_keys(repo_id, snap_id)
        count = store.object_count()
        pack_mark, reflog_mark = marks(store)
        head = store.head()
        state = _PackState()
        with tempfile.TemporaryFile(prefix="gitserver-snapshot-") as index_file:
            index = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(index_file, closefd=False)
            index.write(INDEX_MAGIC)
            blobs.put(pack_key, _pack_pieces(store, count, index, state))
            index.flush(zstandard.FLUSH_FRAME)
            index_size = index_file.tell()
            index_file.seek(0)
            blobs.put(index_key, index_file)
        header = {
            "format": 1,
            "head": head,
            "alternates": store.alternate_paths(),
            "objects": state.objects,
            "pack_size": state.size,
            "pack_checksum": state.checksum.hex(),
        }
        shallow = store.shallow_commits()
        if shallow:  # a shallow repo's boundary (absent otherwise: older readers unaffected)
            header["shallow"] = sorted(o.hex() for o in shallow)
        for_size: list[int] = []

        def counted() -> Iterator[bytes]:
            for piece in zstd_pieces(_refs_lines(store, header)):
                for_size.append(len(piece))
                yield piece

        blobs.put(refs_key, counted())
        refs_size = sum(for_size)
    finally:
        conn.execute("ROLLBACK")
    return SnapshotInfo(
        id=snap_id,
        at=at,
        size=state.size + index_size + refs_size,
        key=pack_key,
        objects=state.objects,
        writer=writer,
        pack_mark=pack_mark,
        reflog_mark=reflog_mark,
        head=head,
    )


def _refs_lines(store: RepoStore, header: dict[str, object]) -> Iterator[bytes]:
    yield json_line(header)
    for name, oid in store.refs().items():
        yield json_line({"ref": name, "oid": oid.hex()})
    last = 0
    conn = store.connection
    while True:
        rows = conn.execute(
            "SELECT id, ref, old, new, at, token_id, via, message FROM reflog WHERE id > ? ORDER BY id LIMIT 1000",
            (last,),
        ).fetchall()
        if not rows:
            return
        for _rid, ref, old, new, at, token_id, via, message in rows:
            yield json_line(
                {"log": [ref, bytes(old).hex(), bytes(new).hex(), at, token_id, via, message or ""]}
            )
        last = rows[-1][0]


def _pack_pieces(
    store: RepoStore, count: int, index: zstandard.ZstdCompressionWriter, state: _PackState
) -> Iterator[bytes]:
    sha = hashlib.sha1()
    buf = bytearray()
    offset = 0

    def out(data: bytes) -> None:
        nonlocal offset
        buf.extend(data)
        offset += len(data)

    out(b"PACK" + struct.pack(">II", 2, count))
    written = 0
    for entry in store.iter_entries():
        start = offset
        crc = 0
        header_len = entry.header_len
        kind = entry.kind
        pieces = store.read_entry_bytes(entry)
        if entry.kind == EntryKind.OFS_DELTA:
            assert entry.base is not None
            head = b""
            for piece in pieces:
                head += piece
                if len(head) >= entry.header_len:
                    break
            new_header = encode_entry_header(EntryKind.REF_DELTA, decode_entry_size(head[: entry.header_len]))
            new_header += entry.base
            header_len = len(new_header)
            kind = EntryKind.REF_DELTA
            crc = zlib.crc32(new_header, crc)
            out(new_header)
            rest = head[entry.header_len :]
            crc = zlib.crc32(rest, crc)
            out(rest)
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
            out(piece)
        record = StoredEntry(
            entry.oid,
            entry.type,
            entry.size,
            kind,
            1,
            start,
            offset - start,
            header_len,
            crc,
            entry.base,
            entry.depth,
        )
        index.write(encode_index_record(record))
        written += 1
        if len(buf) >= FLUSH:
            sha.update(buf)
            yield bytes(buf)
            buf.clear()
    if written != count:
        raise StorageError(f"snapshot saw {written} entries, counted {count}")
    sha.update(buf)
    trailer = sha.digest()
    buf.extend(trailer)
    yield bytes(buf)
    state.size = offset + 20
    state.checksum = trailer
    state.objects = written
