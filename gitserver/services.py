"""The server's long-lived parts, opened once and shared by the app and the API.

Rules:
- ``Services.open`` is synchronous and eager: data dir, catalog, KV store, blob store
  (an empty catalog is restored from it, gitserver.tiering, which also makes lazy
  forks' files when they wake) and the
  bootstrap admin token are ready before the first request (bad config fails at start).
- ``thread`` runs blocking work (catalog, KV, repo files) in a worker thread under the
  one ``CapacityLimiter`` that the actors use too, so blocking work is bounded overall.
- ``close`` is idempotent; the actor host's own shutdown belongs to the nursery running it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from gitserver import admin_token, repo_files
from gitserver.actors import ActorHost
from gitserver.catalog import Catalog
from gitserver.config import Settings
from gitserver.tiering import Tiering
from gitserver.tokens import TokenStore
from storage.blobstore import BlobStore, open_blobstore
from storage.kv import KV, open_kv

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    kv: KV
    tokens: TokenStore
    limiter: trio.CapacityLimiter
    host: ActorHost
    blobs: BlobStore
    tiering: Tiering

    @classmethod
    def open(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.repos_dir.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(settings.data_dir)
        kv = open_kv(settings.kv_url)
        tokens = TokenStore(kv, bootstrap_admin=[admin_token.load_or_create(settings)])
        limiter = trio.CapacityLimiter(settings.worker_threads)
        host = ActorHost(
            limiter=limiter, idle_timeout=settings.idle_timeout, max_resident=settings.max_resident
        )
        blobs = open_blobstore(settings.blob_store_url)
        tiering = Tiering(settings, blobs, catalog, host, limiter)
        tiering.install()  # restores the catalog of an empty data dir from the blob store
        host.write_hooks.append(repo_files.CatalogBookkeeping(catalog))  # after durability
        return cls(settings, catalog, kv, tokens, limiter, host, blobs, tiering)

    async def thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread under the shared limiter."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def close(self) -> None:
        self.catalog.close()
        self.kv.close()
        self.blobs.close()
