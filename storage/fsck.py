"""fsck of one RepoStore: every chunk, pack, object, ref and reflog row checked.

Rules:
- Read-only; never repairs. Returns readable problem lines ([] means clean). Stops
  collecting after ``limit`` problems so a wrecked store gives a bounded report.
- Checks: each pack's chunk rows are all present, each exactly CHUNK_SIZE but the last,
  and hash to the pack's trailer and recorded checksum; no chunk row belongs to no pack,
  and no pack is without objects (orphans);
  each object lies inside its pack, its raw bytes match its CRC32, its content re-hashes
  to its id with the recorded size, and every object it names is stored (gitlinks
  aside; the parents of a commit listed in ``shallow`` may be absent, and each listed
  shallow commit must be a stored commit); refs name valid refs and point at stored objects (commits under refs/heads/);
  HEAD is a valid ref name; reflog times never decrease and each ref's newest reflog
  value is its current value; every alternate opens.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import native
from storage.errors import StorageError
from storage.model import ZERO_OID, ObjType
from storage.objlinks import links
from storage.refs import check_ref_name
from storage.schema import CHUNK_SIZE, SEQ_BITS, chunk_id

if TYPE_CHECKING:
    from storage.repo_store import RepoStore

Report = Callable[[str], bool]


def verify_store(store: RepoStore, limit: int = 1000) -> list[str]:
    problems: list[str] = []

    def report(msg: str) -> bool:
        problems.append(msg)
        return len(problems) < limit

    checks = (_check_alternates, _check_packs, _check_objects, _check_shallow, _check_refs, _check_reflog)
    for check in checks:
        check(store, report)
        if len(problems) >= limit:
            break
    return problems[:limit]


def _check_alternates(store: RepoStore, report: Report) -> None:
    for i, alt in enumerate(store._alternates()):
        if alt is None:
            report(f"alternate {i} ({store.alternate_paths()[i]}) cannot be opened")


def _check_packs(store: RepoStore, report: Report) -> None:
    conn = store.connection
    packs = conn.execute("SELECT id, size, checksum FROM packs ORDER BY id").fetchall()
    for pack_id, size, checksum in packs:
        nchunks = -(-size // CHUNK_SIZE)
        sha = native.Sha1()
        tail = b""
        broken = False
        for seq in range(nchunks):
            want = min(CHUNK_SIZE, size - seq * CHUNK_SIZE)
            row = conn.execute("SELECT data FROM chunks WHERE id = ?", (chunk_id(pack_id, seq),)).fetchone()
            if row is None:
                broken = True
                if not report(f"pack {pack_id}: chunk {seq} missing"):
                    return
                continue
            data = bytes(row[0])
            if len(data) != want:
                broken = True
                if not report(f"pack {pack_id}: chunk {seq} has {len(data)} bytes, expected {want}"):
                    return
                continue
            # Hash everything but the 20-byte trailer, which may straddle two chunks.
            joined = tail + data
            body, tail = joined[:-20], joined[-20:]
            sha.update(body)
        extra = conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE id >= ? AND id < ?",
            (chunk_id(pack_id, nchunks), chunk_id(pack_id + 1, 0)),
        ).fetchone()[0]
        if extra and not report(f"pack {pack_id}: {extra} chunk rows beyond its size"):
            return
        if not broken:
            if sha.digest() != tail:
                report(f"pack {pack_id}: trailer does not match its content")
            if bytes(checksum) != tail:
                report(f"pack {pack_id}: recorded checksum differs from its trailer")
    known = {p[0] for p in packs}
    # Ingest keeps no pack without new objects, so a pack no object lies in is an orphan
    # (e.g. left by an interrupted write).
    for (pack_id,) in conn.execute(
        "SELECT id FROM packs WHERE NOT EXISTS (SELECT 1 FROM objects WHERE objects.pack_id = packs.id)"
    ):
        if not report(f"pack {pack_id}: no object lies in it (orphan pack)"):
            return
    for (owner,) in conn.execute(f"SELECT DISTINCT id >> {SEQ_BITS} FROM chunks"):
        if owner not in known and not report(f"chunk rows of unknown pack {owner}"):
            return


def _check_objects(store: RepoStore, report: Report) -> None:
    conn = store.connection
    sizes = dict(conn.execute("SELECT id, size FROM packs"))
    shallow = store.shallow_commits()
    for entry in store.iter_entries():
        name = entry.oid.hex()
        pack_size = sizes.get(entry.pack_id)
        if pack_size is None:
            if not report(f"object {name}: in unknown pack {entry.pack_id}"):
                return
            continue
        if (
            entry.offset < 12
            or entry.offset + entry.length > pack_size - 20
            or entry.header_len >= entry.length
        ):
            if not report(f"object {name}: entry lies outside pack {entry.pack_id}"):
                return
            continue
        try:
            crc = 0
            for piece in store.read_entry_bytes(entry):
                crc = zlib.crc32(piece, crc)
            if crc != entry.crc32:
                report(f"object {name}: CRC32 mismatch")
            obj_type, data = store.get_object(entry.oid)
        except StorageError as exc:
            if not report(f"object {name}: {exc}"):
                return
            continue
        if native.object_id(obj_type, data) != entry.oid:
            if not report(f"object {name}: content hashes to {native.object_id(obj_type, data).hex()}"):
                return
            continue
        if obj_type == ObjType.BLOB:
            continue
        try:
            for target, want in links(obj_type, data, entry.oid):
                header = store.object_header(target)
                if header is None and want == ObjType.COMMIT and entry.oid in shallow:
                    continue  # a shallow commit's parents are absent by design
                if header is None:
                    report(f"object {name}: names missing object {target.hex()}")
                elif header[0] != want:
                    report(
                        f"object {name}: names {target.hex()} as {want.name.lower()}, it is a "
                        f"{header[0].name.lower()}"
                    )
        except StorageError as exc:
            report(f"object {name}: {exc}")


def _check_shallow(store: RepoStore, report: Report) -> None:
    for oid in sorted(store.shallow_commits()):
        header = store.object_header(oid)
        if header is None or header[0] != ObjType.COMMIT:
            report(f"shallow {oid.hex()}: not a stored commit")


def _check_refs(store: RepoStore, report: Report) -> None:
    head = store.head()
    if check_ref_name(head):
        report(f"HEAD points at invalid ref name {head!r}")
    for name, oid in store.refs().items():
        problem = check_ref_name(name)
        if problem:
            report(f"ref {name!r}: {problem}")
        header = store.object_header(oid)
        if header is None:
            report(f"ref {name}: points at missing object {oid.hex()}")
        elif name.startswith("refs/heads/") and header[0] != ObjType.COMMIT:
            report(f"ref {name}: points at a {header[0].name.lower()}, not a commit")


def _check_reflog(store: RepoStore, report: Report) -> None:
    conn = store.connection
    last_at = None
    latest: dict[str, bytes] = {}
    for row_id, ref, new, at in conn.execute("SELECT id, ref, new, at FROM reflog ORDER BY id"):
        if last_at is not None and at < last_at and not report(f"reflog row {row_id}: time goes backwards"):
            return
        last_at = at
        latest[ref] = bytes(new)
    current = store.refs()
    for ref, new in latest.items():
        now = current.get(ref, ZERO_OID)
        if now != new:
            report(f"reflog of {ref}: last value {new.hex()} but ref is at {now.hex()}")
