"""Test repositories built with the real git CLI, loaded into a store, and pack checks.

Rules: histories come from ``git fast-import`` (deterministic dates, branches, merges,
annotated and lightweight tags, nested trees, one large blob) and are repacked by git so
they hold real deltas. They are loaded into a ``RepoStore`` the way a push does
(``RepoStore.receive`` with ``git pack-objects --all --stdout``); when the real store is
not importable yet, a reading shim over git's own pack stands in.
"""

from __future__ import annotations

import io
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage.model import EntryKind, ObjType, Oid, PushContext, RefCommand, StoredEntry, oid_raw
from tests.helpers import git, git_env

BASE_TIME = 1_600_000_000
ENV = git_env(Path("/nonexistent-home"))


def run_git(*args: str | Path, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    return git(*args, cwd=cwd, env=ENV, input=input).stdout


def _data(buf: io.BytesIO, payload: bytes) -> None:
    buf.write(b"data %d\n" % len(payload))
    buf.write(payload)
    buf.write(b"\n")


def build_history(path: Path, commits: int = 60, files: int = 12, seed: int = 1) -> Path:
    """A bare repository with main, a feature branch merged back repeatedly, tags."""
    rng = random.Random(seed)
    run_git("init", "-q", "--bare", "-b", "main", path)
    buf = io.BytesIO()
    contents: dict[str, list[bytes]] = {}
    names = [f"dir{i % 3}/sub{i % 2}/file{i}.txt" for i in range(files)] + ["top.txt"]
    for name in names:
        contents[name] = [b"line %d of %s\n" % (n, name.encode()) for n in range(40)]
    mark = 0
    main_mark = feat_mark = 0
    tags: list[tuple[str, int, bool]] = []
    for i in range(commits):
        mark += 1
        on_feature = i % 7 in (3, 4) and i > 5
        branch = "feature" if on_feature else "main"
        buf.write(f"commit refs/heads/{branch}\nmark :{mark}\n".encode())
        buf.write(f"committer C <c@example.com> {BASE_TIME + i * 3600} +0000\n".encode())
        _data(buf, f"commit {i} on {branch}\n".encode())
        if on_feature:
            buf.write(f"from :{feat_mark or main_mark}\n".encode())
        elif main_mark:
            buf.write(f"from :{main_mark}\n".encode())
            if i % 7 == 5 and feat_mark:
                buf.write(f"merge :{feat_mark}\n".encode())
        for name in rng.sample(names, 3):
            lines = contents[name]
            lines[rng.randrange(len(lines))] = b"changed at %d %d\n" % (i, rng.randrange(1 << 30))
            buf.write(f"M 100644 inline {name}\n".encode())
            _data(buf, b"".join(lines))
        if i == commits // 2:
            buf.write(b"M 100644 inline big.bin\n")
            _data(buf, bytes(rng.randrange(256) for _ in range(200_000)))
        if on_feature:
            feat_mark = mark
        else:
            main_mark = mark
        if i % 10 == 9:
            tags.append((f"v{i // 10}", mark, i % 20 == 9))
    for name, target, light in tags:
        if light:
            buf.write(f"reset refs/tags/{name}\nfrom :{target}\n\n".encode())
        else:
            buf.write(f"tag {name}\nfrom :{target}\n".encode())
            buf.write(f"tagger T <t@example.com> {BASE_TIME + 10**6} +0000\n".encode())
            _data(buf, f"release {name}\n".encode())
    run_git("fast-import", "--quiet", cwd=path, input=buf.getvalue())
    run_git("repack", "-adf", "-q", cwd=path)
    return path


def refs_of(path: Path) -> dict[str, Oid]:
    out = run_git("for-each-ref", "--format=%(objectname) %(refname)", cwd=path).decode()
    return {name: oid_raw(oid) for oid, name in (line.split(" ", 1) for line in out.splitlines())}


def rev_parse(path: Path, rev: str) -> Oid:
    return oid_raw(run_git("rev-parse", rev, cwd=path).decode().strip())


def rev_list_objects(path: Path, *args: str) -> set[Oid]:
    out = run_git("rev-list", "--objects", *args, cwd=path).decode()
    return {oid_raw(line[:40]) for line in out.splitlines() if line and line[0] != "~"}


class ShimStore:
    """Reads a git pack the way RepoStore would (stand-in until the real store lands)."""

    def __init__(self, path: Path, pack: bytes, refs: dict[str, Oid], head: str) -> None:
        self.pack = pack
        self._refs = dict(refs)
        self._head = head
        pack_path = path / "shim.pack"
        pack_path.write_bytes(pack)
        run_git("index-pack", "-o", path / "shim.idx", pack_path)
        self.objects: dict[Oid, tuple[ObjType, bytes]] = {}
        batch = run_git("cat-file", "--batch-all-objects", "--batch", cwd=_repo_for(path, pack_path))
        pos = 0
        while pos < len(batch):
            nl = batch.index(b"\n", pos)
            oid, typ, size = batch[pos:nl].split()
            start = nl + 1
            self.objects[oid_raw(oid)] = (ObjType.from_name(typ), batch[start : start + int(size)])
            pos = start + int(size) + 1
        self.entries: dict[Oid, StoredEntry] = {}
        verify = run_git("verify-pack", "-v", path / "shim.idx").decode()
        for line in verify.splitlines():
            parts = line.split()
            if len(parts) < 5 or len(parts[0]) != 40:
                continue
            oid = oid_raw(parts[0])
            length, offset = int(parts[3]), int(parts[4])
            kind, header_len = _entry_header(pack, offset)
            self.entries[oid] = StoredEntry(
                oid=oid,
                type=self.objects[oid][0],
                size=len(self.objects[oid][1]),
                kind=EntryKind(kind),
                pack_id=1,
                offset=offset,
                length=length,
                header_len=header_len,
                crc32=0,
                base=oid_raw(parts[6]) if len(parts) > 6 else None,
                depth=int(parts[5]) if len(parts) > 6 else 0,
            )

    def has_object(self, oid: Oid) -> bool:
        return oid in self.objects

    def object_header(self, oid: Oid) -> tuple[ObjType, int] | None:
        obj = self.objects.get(oid)
        return None if obj is None else (obj[0], len(obj[1]))

    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]:
        from storage.errors import MissingObject

        try:
            return self.objects[oid]
        except KeyError:
            raise MissingObject(oid) from None

    def stored_entry(self, oid: Oid) -> StoredEntry | None:
        return self.entries.get(oid)

    def read_entry_bytes(self, entry: StoredEntry) -> Iterator[bytes]:
        data = self.pack[entry.offset : entry.offset + entry.length]
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    def iter_entries(self) -> Iterator[StoredEntry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.offset))

    def object_count(self) -> int:
        return len(self.entries)

    def refs(self) -> dict[str, Oid]:
        return dict(self._refs)

    def head(self) -> str:
        return self._head

    def receive(self, *args: Any) -> Any:
        raise NotImplementedError


def _repo_for(path: Path, pack_path: Path) -> Path:
    repo = path / "shimrepo.git"
    run_git("init", "-q", "--bare", repo)
    run_git("index-pack", "--stdin", cwd=repo, input=pack_path.read_bytes())
    return repo


def _entry_header(pack: bytes, offset: int) -> tuple[int, int]:
    byte = pack[offset]
    kind = (byte >> 4) & 7
    pos = offset + 1
    while byte & 0x80:
        byte = pack[pos]
        pos += 1
    if kind == EntryKind.OFS_DELTA:
        while pack[pos] & 0x80:
            pos += 1
        pos += 1
    elif kind == EntryKind.REF_DELTA:
        pos += 20
    return kind, pos - offset


def load_store(tmp: Path, source: Path) -> Any:
    """A store holding every object and ref of the bare repository ``source``."""
    pack = run_git("pack-objects", "--all", "--stdout", "-q", cwd=source, input=b"")
    refs = refs_of(source)
    head = run_git("symbolic-ref", "HEAD", cwd=source).decode().strip()
    try:
        from storage.repo_store import RepoStore  # type: ignore[import-not-found]
    except ImportError:
        tmp.mkdir(parents=True, exist_ok=True)
        return ShimStore(tmp, pack, refs, head)
    tmp.mkdir(parents=True, exist_ok=True)
    store = RepoStore.create(tmp / "repo.sqlite", head=head)
    stream = io.BytesIO(pack)
    zero = b"\0" * 20
    result = store.receive(
        [RefCommand(zero, oid, name) for name, oid in refs.items()], stream.read, PushContext(), None
    )
    assert result.unpack_error is None, result
    assert all(r.error is None for r in result.refs), result
    return store


def index_pack(repo: Path, pack: bytes, fix_thin: bool = False, strict: bool = True) -> set[Oid]:
    """Feed ``pack`` to ``git index-pack --stdin`` in ``repo``; the object ids it held.

    ``strict`` also checks connectivity, so it needs a complete (or shallow-marked) repo."""
    args = ["index-pack", "--stdin"] + (["--strict"] if strict else [])
    if fix_thin:
        args.append("--fix-thin")
    out = run_git(*args, cwd=repo, input=pack).decode().split()
    name = out[-1]
    idx = next(repo.glob(f"objects/pack/pack-{name}.idx"))
    listing = subprocess.run(
        ["git", "show-index"], input=idx.read_bytes(), capture_output=True, check=True, env=ENV
    ).stdout.decode()
    return {oid_raw(line.split()[1]) for line in listing.splitlines()}
