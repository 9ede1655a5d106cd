"""The actor runtime: one actor per repo, one writer at a time, readers beside it,
hibernation that really closes the SQLite file, and the resident cap."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import trio

from gitserver.actors import ActorHost
from storage.repo_store import RepoStore


def _make_repo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.sqlite"
    RepoStore.create(path).close()
    return path


async def test_one_live_actor_per_repo(tmp_path: Path) -> None:
    host = ActorHost(idle_timeout=60)
    path = _make_repo(tmp_path, "a")
    assert host.actor("a", path) is host.actor("a", path)
    assert host.actor("b", _make_repo(tmp_path, "b")) is not host.actor("a", path)


async def test_writes_are_serialized_and_reads_run_beside_them(tmp_path: Path) -> None:
    host = ActorHost(limiter=trio.CapacityLimiter(4), idle_timeout=60)
    actor = host.actor("r", _make_repo(tmp_path, "r"))
    spans: list[tuple[float, float]] = []
    writer_inside = threading.Event()
    reader_done = threading.Event()

    def slow_write(store: RepoStore, first: bool) -> None:
        start = time.monotonic()
        if first:
            writer_inside.set()
            # The first writer waits until a reader has finished: reads must not queue
            # behind the writer.
            assert reader_done.wait(10), "a reader was blocked by the writer"
        time.sleep(0.05)
        spans.append((start, time.monotonic()))

    def read(store: RepoStore) -> dict:
        assert writer_inside.wait(10)
        refs = store.refs()
        reader_done.set()
        return refs

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actor.run_write, slow_write, True)
        nursery.start_soon(actor.run_write, slow_write, False)
        assert await actor.run_read(read) == {}
    spans.sort()
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0], "two writers overlapped"


async def test_idle_actor_hibernates_closing_sqlite_and_wakes_again(tmp_path: Path) -> None:
    host = ActorHost(idle_timeout=0.0)
    path = _make_repo(tmp_path, "sleepy")
    actor = host.actor("sleepy", path)
    assert await actor.run_read(lambda s: s.refs()) == {}
    assert actor.open_connections == 1
    await host.sweep()
    assert actor.open_connections == 0
    assert host.statistics()["known_actors"] == 0
    assert host.statistics()["hibernations_total"] == 1
    # A stale handle forwards to the new live actor; only one is ever registered.
    assert await actor.run_read(lambda s: s.refs()) == {}
    assert host.statistics()["wakes_total"] == 2
    assert host.statistics()["known_actors"] == 1
    assert host.peek("sleepy") is not actor


async def test_busy_actor_is_not_hibernated(tmp_path: Path) -> None:
    host = ActorHost(idle_timeout=0.0)
    actor = host.actor("busy", _make_repo(tmp_path, "busy"))
    async with actor.reading():
        await host.sweep()
        assert host.peek("busy") is actor
    await host.sweep()
    assert host.peek("busy") is None


async def test_resident_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    host = ActorHost(idle_timeout=60, max_resident=2)
    actors = [host.actor(n, _make_repo(tmp_path, n)) for n in ("x", "y", "z")]
    for actor in actors:
        await actor.run_read(lambda s: s.refs())
    assert host.statistics()["resident_actors"] == 2
    assert actors[0].open_connections == 0  # x was least recently used
    assert actors[2].open_connections == 1


async def test_run_hibernates_everything_when_cancelled(tmp_path: Path) -> None:
    host = ActorHost(idle_timeout=60)
    actor = host.actor("c", _make_repo(tmp_path, "c"))
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        await actor.run_write(lambda s: s.refs())
        nursery.cancel_scope.cancel()
    assert actor.open_connections == 0


async def test_a_burst_of_readers_leaves_only_a_few_connections_open(tmp_path: Path) -> None:
    """Each pooled reader carries caches: after 6 concurrent reads, at most
    MAX_IDLE_READERS connections stay open, and the next read still works."""
    from gitserver.actors import MAX_IDLE_READERS

    host = ActorHost(limiter=trio.CapacityLimiter(8), idle_timeout=60)
    actor = host.actor("burst", _make_repo(tmp_path, "burst"))
    everyone_in = trio.Event()
    inside = 0

    async def read() -> None:
        nonlocal inside
        async with actor.reading():
            inside += 1
            if inside == 6:
                everyone_in.set()
            await everyone_in.wait()

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(read)
    assert actor.open_connections == MAX_IDLE_READERS
    assert await actor.run_read(lambda s: s.refs()) == {}


def _commit_on(store: RepoStore, ref: str, message: bytes) -> bytes:
    """Write a one-commit history and point ``ref`` at it (creating or moving it)."""
    from storage.model import ZERO_OID, ObjType, PushContext, RefCommand

    tree = store.write_objects([(ObjType.TREE, b"")])[0]
    body = b"tree %s\nauthor A <a@b> 0 +0000\ncommitter A <a@b> 0 +0000\n\n%s\n" % (
        tree.hex().encode(),
        message,
    )
    commit = store.write_objects([(ObjType.COMMIT, body)])[0]
    old = store.refs().get(ref, ZERO_OID)
    store.update_refs([RefCommand(old, commit, ref)], PushContext(via="api"))
    return commit


async def test_remembered_refs_never_stale(tmp_path: Path) -> None:
    """A read connection's list_refs memo follows every commit: the actor's writer's,
    and another process's (a separate connection on the file)."""
    host = ActorHost(limiter=trio.CapacityLimiter(2), idle_timeout=60)
    path = _make_repo(tmp_path, "m")
    actor = host.actor("m", path)

    async def refs() -> dict[str, bytes]:
        async with actor.reading() as repo:
            got = await trio.to_thread.run_sync(repo.list_refs)
        return {r.name: r.oid for r in got}

    assert await refs() == {}
    first = await actor.run_write(_commit_on, "refs/heads/main", b"one")
    assert (await refs())["refs/heads/main"] == first
    assert (await refs())["refs/heads/main"] == first  # from the memo
    other = RepoStore.open(path)  # another writer, as another process would be
    try:
        second = _commit_on(other, "refs/heads/main", b"two")
    finally:
        other.close()
    assert (await refs())["refs/heads/main"] == second
    await host.hibernate_all()


async def test_remembered_answers_dropped_on_any_commit(tmp_path: Path) -> None:
    """A read view's remembered protocol answers (smart_http.asgi.AnswerCache) hold only
    while nothing was committed to the file."""
    from smart_http.asgi import AnswerCache

    host = ActorHost(limiter=trio.CapacityLimiter(2), idle_timeout=60)
    path = _make_repo(tmp_path, "a")
    actor = host.actor("a", path)
    async with actor.reading() as repo:
        assert isinstance(repo, AnswerCache)
        answer, stamp = repo.answer_for(b"req")
        assert answer is None
        repo.remember(b"req", b"answer", stamp)
        assert repo.answer_for(b"req") == (b"answer", stamp)
        repo.remember(b"big", b"x" * (1 << 20), stamp)  # too big to keep
        assert repo.answer_for(b"big")[0] is None
    await actor.run_write(_commit_on, "refs/heads/main", b"one")
    async with actor.reading() as repo:
        answer, later = repo.answer_for(b"req")
        assert answer is None and later != stamp
        repo.remember(b"req", b"stale", stamp)  # computed before the commit: not kept
        assert repo.answer_for(b"req")[0] is None
    await host.hibernate_all()
