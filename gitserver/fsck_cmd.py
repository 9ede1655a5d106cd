"""``gitserver fsck NS/NAME``: verify one repository offline, and its latest snapshot.

Rules:
- Works on the data dir without a running server (stop it, or accept that a push racing
  the check may be reported). Read-only: never repairs.
- Checks the local file with ``RepoStore.verify`` (every chunk, pack, object hash, index
  entry, ref and reflog entry) and the latest snapshot in the blob store against it
  (``storage.snapshot_check``). A repo whose local file was dropped (cold) is checked in
  the blob store only: its snapshot must read and hash correctly.
- Prints each problem on stdout, then a summary line; exit status 0 when clean, 1 when
  anything is wrong (or the repo does not exist).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gitserver import forks
from gitserver.catalog import Catalog
from gitserver.config import Settings
from storage.blobstore import BlobStoreError, open_blobstore
from storage.errors import StorageError


def run(settings: Settings, ns: str, name: str) -> int:
    from storage.rehydrate import rehydrate_copy
    from storage.repo_store import RepoStore
    from storage.snapshot_check import verify_snapshot

    catalog = Catalog(settings.data_dir)
    try:
        record = catalog.get(ns, name)
        pending = forks.pending_refs(catalog, record) if record is not None else None
        ancestors = forks.lineage(catalog, record.id)[1:] if pending is not None and record else []
    finally:
        catalog.close()
    if record is None:
        print(f"repository {ns}/{name} not found")
        return 1
    blobs = open_blobstore(settings.blob_store_url)
    problems: list[str] = []
    try:
        if pending is not None:
            # A fork never used yet has no file: its refs live in the catalog and must
            # name objects its nearest ancestor with a file holds (that file is checked).
            objects = 0
            parent = next((node for node in ancestors if node.path.exists()), None)
            if parent is None:
                problems.append("fork not used yet, and no ancestor has a local file")
            else:
                with RepoStore.open(parent.path, readonly=True) as store:
                    problems += store.verify()
                    for ref, oid in sorted(pending.items()):
                        if not store.has_object(oid):
                            problems.append(f"{ref}: {oid.hex()} missing from the fork's parent")
                    objects = store.object_count()
        elif record.path.exists():
            with RepoStore.open(record.path, readonly=True) as store:
                problems += store.verify()
                problems += verify_snapshot(store, blobs, record.id)
                objects = store.object_count()
        else:
            with tempfile.TemporaryDirectory(prefix="gitserver-fsck-") as tmp:
                copy = Path(tmp) / "repo.sqlite"
                objects = 0
                try:
                    rebuilt = rehydrate_copy(blobs, record.id, copy)
                except (BlobStoreError, StorageError) as exc:
                    problems.append(
                        f"no local file, and the snapshot cannot be rebuilt from the blob store: {exc}"
                    )
                    rebuilt = None
                if rebuilt is False:
                    problems.append("no local file and nothing in the blob store")
                elif rebuilt:
                    with RepoStore.open(copy, readonly=True) as store:
                        problems += store.verify()
                        problems += verify_snapshot(store, blobs, record.id)
                        objects = store.object_count()
    finally:
        blobs.close()
    for line in problems:
        print(line)
    verdict = "ok" if not problems else f"{len(problems)} problem(s)"
    print(f"fsck {ns}/{name} ({record.id}): {objects} objects, {verdict}")
    return 0 if not problems else 1
