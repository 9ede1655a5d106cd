"""Import: fill an empty repository from another smart-HTTP Git remote, streamed.

How it works:
- dulwich's HTTP client talks to the remote (protocol v2 or v0, whatever it offers) in a
  producer thread; every piece of pack data it receives goes into a bounded queue
  (``QUEUE_PIECES`` pieces), which ``RepoStore.receive`` drains as its ``read_pack`` in the
  repo's single-writer thread. The pack is never whole in memory, and it is checked like a
  push: hashed, closed, refs created only when everything is stored.
- Refs taken: the remote's branches and tags (``refs/heads/*``, ``refs/tags/*``), or only
  ``refs/heads/<branch>`` when a branch is given. Each is created with compare-and-swap
  from zero, so the import fails with ``NotEmpty`` unless the repo has no refs at all.
  The reflog says ``via: import``.
- ``depth`` N fetches like ``git clone --depth N``: the remote names the commits at the
  boundary (its ``shallow`` lines; a remote that is itself shallow names its own too,
  even without a depth); they are recorded as this repo's shallow commits in the same
  transaction as the refs (``RepoStore.receive(shallow=...)``), and the closure check
  allows exactly their parents to be absent. Without a depth the whole history is
  fetched, as before.
- The remote's own errors (unreachable, 401, not a git remote, broken pack) become
  ``ImportFailed`` with the reason; nothing is stored then.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from storage.model import ZERO_OID, Oid, PushContext, RefCommand
from storage.repo_store import RepoStore

QUEUE_PIECES = 16  # pieces dulwich hands us are at most ~64 KiB: ~1 MiB in flight
_TAKEN = ("refs/heads/", "refs/tags/")


class ImportFailed(Exception):
    """The remote could not be imported (the message says why)."""


class NotEmpty(Exception):
    """The repository already has refs."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    refs: dict[str, Oid]
    shallow: list[Oid] = field(default_factory=list)  # the repo's shallow commits, sorted
    head: str | None = None  # the branch HEAD names after the import (None: nothing imported)


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an http:// or https:// Git remote")
    return url


class _Abort(Exception):
    pass


class _Pipe:
    """A bounded queue of pack pieces between dulwich (producer) and ingest (consumer)."""

    def __init__(self) -> None:
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_PIECES)
        self._closed = threading.Event()
        self._buf = b""
        self._eof = False

    def put(self, item: bytes | BaseException | None) -> None:
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Abort

    def read(self, n: int) -> bytes:
        while len(self._buf) < n and not self._eof:
            item = self._q.get()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                raise ImportFailed(f"fetching from the remote failed: {item}") from item
            else:
                self._buf += item
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._closed.set()


def import_into(
    store: RepoStore,
    url: str,
    *,
    branch: str | None,
    context: PushContext,
    depth: int | None = None,
    timeout: float = 600.0,
) -> ImportResult:
    """Fetch ``url`` into the empty ``store`` (the repo's writer), ``depth`` commits deep
    when given (the store becomes shallow). Raises NotEmpty, ImportFailed."""
    from dulwich.client import get_transport_and_path

    if store.refs():
        raise NotEmpty("the repository is not empty")
    try:
        client, path = get_transport_and_path(url)
    except Exception as exc:  # dulwich raises many kinds for odd URLs
        raise ImportFailed(f"cannot use {url!r}: {exc}") from None
    pipe = _Pipe()
    wanted: dict[str, Oid] = {}
    remote_head: list[Oid] = []  # the oid the remote's HEAD points at, when it advertises one
    refs_known = threading.Event()
    errors: list[BaseException] = []
    shallow: set[Oid] = set()  # filled by the producer before it signals the end of the pack

    def determine_wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
        for raw_name, raw_oid in refs.items():
            name = raw_name.decode("utf-8", "replace")
            if name == "HEAD" and raw_oid:
                remote_head.append(bytes.fromhex(raw_oid.decode("ascii")))
            if name.endswith("^{}") or not name.startswith(_TAKEN):
                continue
            if branch is not None and name != f"refs/heads/{branch}":
                continue
            wanted[name] = bytes.fromhex(raw_oid.decode("ascii"))
        refs_known.set()
        return sorted({oid.hex().encode() for oid in wanted.values()})

    def produce() -> None:
        try:
            fetched = client.fetch_pack(
                path,
                cast(Any, determine_wants),
                cast(Any, _EmptyWalker()),
                pack_data=_sink(pipe.put),
                depth=depth,
            )
            shallow.update(bytes.fromhex(h.decode("ascii")) for h in fetched.new_shallow or ())
            pipe.put(None)
        except _Abort:
            pass
        except BaseException as exc:
            errors.append(exc)
            refs_known.set()
            try:
                pipe.put(exc)
            except _Abort:
                pass

    producer = threading.Thread(target=produce, name="gitserver-import", daemon=True)
    producer.start()
    try:
        if not refs_known.wait(timeout) or errors:
            raise ImportFailed(f"could not list the remote's refs: {errors[0] if errors else 'timed out'}")
        if not wanted:
            if branch is not None:  # asked for one branch: its absence is an error, not an empty import
                raise ImportFailed(f"the remote has no branch {branch!r} (refs/heads/{branch})")
            return ImportResult({})
        commands = [RefCommand(ZERO_OID, oid, ref) for ref, oid in sorted(wanted.items())]
        result = store.receive(commands, pipe.read, context, shallow=lambda: sorted(shallow))
        if result.unpack_error:
            raise ImportFailed(f"the remote's pack was refused: {result.unpack_error}")
        failed = [r for r in result.refs if r.error]
        if failed:
            if any(r.error == "ref already exists" for r in failed):
                raise NotEmpty("the repository is not empty")
            raise ImportFailed(f"{failed[0].ref}: {failed[0].error}")
        head = _choose_head(store.head(), wanted, remote_head[0] if remote_head else None)
        if head != store.head():
            store.set_head(head)
        return ImportResult(dict(wanted), sorted(store.shallow_commits()), head)
    finally:
        pipe.close()
        producer.join(timeout=30)


def _choose_head(current: str, imported: dict[str, Oid], remote_head: Oid | None) -> str:
    """Where HEAD should point after an import, as ``git clone`` decides it: the repo's own
    default branch when it was imported; else the imported branch the remote's HEAD is at
    (``main`` and ``master`` first among equals); else the first imported branch."""
    if current in imported:
        return current
    branches = sorted(
        (r for r in imported if r.startswith("refs/heads/")),
        key=lambda r: (r not in ("refs/heads/main", "refs/heads/master"), r),
    )
    if not branches:
        return current
    for ref in branches:
        if imported[ref] == remote_head:
            return ref
    return branches[0]


def _sink(put: Callable[[bytes], None]) -> Callable[[bytes], int]:
    def pack_data(data: bytes) -> int:
        if data:
            put(bytes(data))
        return len(data)

    return pack_data


class _EmptyWalker:
    """A graph walker for a repo that has nothing: no haves, nothing to acknowledge."""

    shallow: set[bytes] = set()

    def ack(self, sha: bytes) -> None:
        pass

    def nak(self) -> None:
        pass

    def next(self) -> bytes | None:
        return None

    __next__ = next

    __next__ = next

    def __iter__(self) -> Any:
        return iter(())
