"""Helpers for tests/native: real packs made by the git CLI, and hand-made packs.

Rules: packs come from `git pack-objects` (the reference writer) or are assembled here
byte by byte for the hostile cases; expectations come from git's own .idx (read with
dulwich) and `git verify-pack -v`, never from the code under test.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="T",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="T",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_DATE="1700000000 +0000",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(cwd),
    )
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, env=env, check=True, capture_output=True
    ).stdout


def make_repo(path: Path, *, big: bool) -> None:
    """A small history with deltas, an annotated tag, an empty file and (big) a 1 MiB file."""
    rnd = random.Random(1234)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(2, 9))) for _ in range(300)]
    text = [b" ".join(rnd.choice(words) for _ in range(12)) for _ in range(400)]
    for rev in range(6):
        (path / "src").mkdir(exist_ok=True)
        for i in range(4):
            lines = list(text)
            for _ in range(5 + rev):
                lines[rnd.randrange(len(lines))] = b"edit %d %d" % (rev, rnd.randrange(10**6))
            (path / "src" / f"f{i}.txt").write_bytes(b"\n".join(lines) + b"\n")
        (path / "empty").write_bytes(b"")
        (path / "bin.dat").write_bytes(bytes(rnd.randrange(256) for _ in range(3000)))
        if big:
            blob = bytearray(b"\n".join(text) * 30)[: 1 << 20]
            blob[rnd.randrange(len(blob))] = ord("#")
            (path / "big.txt").write_bytes(bytes(blob))
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"rev {rev}")
    git(path, "tag", "-a", "v1", "-m", "release one")


def read_idx_v2(idx: bytes) -> dict[int, tuple[bytes, int]]:
    """offset -> (oid, crc32) from a .idx version 2 (gitformat-pack, "Version 2 pack-*.idx")."""
    assert idx[:8] == b"\377tOc\x00\x00\x00\x02"
    n = int.from_bytes(idx[8 + 255 * 4 : 8 + 256 * 4], "big")
    names = 8 + 256 * 4
    crcs = names + 20 * n
    offs = crcs + 4 * n
    large = offs + 4 * n
    out = {}
    for i in range(n):
        off = int.from_bytes(idx[offs + 4 * i : offs + 4 * i + 4], "big")
        if off & 0x80000000:
            j = off & 0x7FFFFFFF
            off = int.from_bytes(idx[large + 8 * j : large + 8 * j + 8], "big")
        crc = int.from_bytes(idx[crcs + 4 * i : crcs + 4 * i + 4], "big")
        out[off] = (idx[names + 20 * i : names + 20 * i + 20], crc)
    return out


@dataclass
class RealPack:
    data: bytes
    idx_entries: dict[int, tuple[bytes, int]]  # offset -> (oid, crc32)
    verify: dict[int, tuple[str, int, int, bytes | None]]  # offset -> (type, size, size_in_pack, base oid)


def pack_repo(repo: Path, out_dir: Path, *, ofs_delta: bool) -> RealPack:
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = git(repo, "rev-list", "--objects", "--all")
    args = ["pack-objects", "-q"]
    if ofs_delta:
        args.append("--delta-base-offset")
    name = git(repo, *args, str(out_dir / "p"), input=objs).decode().strip()
    base = out_dir / f"p-{name}"
    idx_entries = read_idx_v2((Path(str(base) + ".idx")).read_bytes())
    verify: dict[int, tuple[str, int, int, bytes | None]] = {}
    for line in git(repo, "verify-pack", "-v", str(base) + ".idx").decode().splitlines():
        parts = line.split()
        if len(parts) >= 5 and len(parts[0]) == 40:
            base_oid = bytes.fromhex(parts[6]) if len(parts) >= 7 else None
            verify[int(parts[4])] = (parts[1], int(parts[2]), int(parts[3]), base_oid)
    return RealPack((Path(str(base) + ".pack")).read_bytes(), idx_entries, verify)


# --- hand-made packs -------------------------------------------------------------------


def entry_header(kind: int, size: int) -> bytes:
    c = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(c | 0x80)
        c = size & 0x7F
        size >>= 7
    out.append(c)
    return bytes(out)


def ofs_encode(dist: int) -> bytes:
    out = [dist & 0x7F]
    dist >>= 7
    while dist:
        dist -= 1
        out.append(0x80 | (dist & 0x7F))
        dist >>= 7
    return bytes(reversed(out))


def whole(kind: int, data: bytes, *, size: int | None = None) -> bytes:
    return entry_header(kind, len(data) if size is None else size) + zlib.compress(data)


def assemble(entries: list[bytes], *, count: int | None = None, version: int = 2) -> bytes:
    body = (
        b"PACK" + version.to_bytes(4, "big") + (len(entries) if count is None else count).to_bytes(4, "big")
    )
    body += b"".join(entries)
    return body + hashlib.sha1(body).digest()


def fix_trailer(pack: bytes) -> bytes:
    if len(pack) < 20:
        return pack
    body = pack[:-20]
    return body + hashlib.sha1(body).digest()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sub_pack(data: bytes, ends: list[int], k: int) -> bytes:
    """A valid pack of the first ``k`` entries of ``data`` (``ends``: end offset of each entry)."""
    body = b"PACK\0\0\0\2" + k.to_bytes(4, "big") + data[12 : ends[k - 1]]
    return body + hashlib.sha1(body).digest()
