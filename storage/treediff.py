"""Which files differ between two trees, with renames found as ``git diff -M`` finds them.

Rules:
- Trees are compared in git's order (a subtree sorts as if its name ended in ``/``), so
  changes come out in the order ``git diff`` prints them; equal subtrees are skipped
  without being read. An optional path prefix limits the walk (a file, or a directory
  and everything below it), as a pathspec does.
- A path whose kind changes (file <-> symlink <-> submodule) is a deletion followed by
  an addition, as git shows a type change.
- Renames pair a deleted file with an added one: first identical contents (a same
  basename preferred), then files whose basenames are unique on both sides and whose
  similarity is at least 75%, then the best remaining pairs of at least 50% (git's
  default ``-M50%``). Similarity is git's: contents cut into spans at each newline or
  every 64 bytes, hashed; the bytes of the old file's spans found again in the new file,
  divided by the larger size. At most 1000 x 1000 candidates are scored (git's
  ``diff.renameLimit``); beyond that only identical renames are found.
- A rename takes the place of its added file in the order; its deletion disappears.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from storage.model import Oid
from storage.repo_store import RepoStore
from storage.treeview import MODE_TREE, decode_name, entries, normalize_path, read_blob

MAX_SCORE = 60000
MIN_SCORE = 30000  # -M50%
BASENAME_MIN_SCORE = MIN_SCORE + (MAX_SCORE - MIN_SCORE) // 2
RENAME_LIMIT = 1000
CANDIDATES_PER_DST = 4
_HASHBASE = 107927
_MASK = 0xFFFFFFFF
_SNIFF = 8000


@dataclass(frozen=True, slots=True)
class Side:
    path: str
    mode: int
    oid: Oid


@dataclass(frozen=True, slots=True)
class FileChange:
    """One entry of a diff; ``status`` is A, D, M or R (``score`` for R, out of MAX_SCORE)."""

    status: str
    old: Side | None
    new: Side | None
    score: int = 0

    @property
    def path(self) -> str:
        side = self.new or self.old
        assert side is not None
        return side.path


def _kind(mode: int) -> int:
    return mode & 0o170000


def _key(name: bytes, mode: int) -> bytes:
    return name + b"/" if mode == MODE_TREE else name


def _wanted(path: str, prefix: str) -> bool:
    """Whether ``path`` (a file or directory) is inside or on the way to ``prefix``."""
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix + "/") or prefix.startswith(path + "/")


def _inside(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def tree_changes(
    store: RepoStore, old: Oid | None, new: Oid | None, prefix: str = ""
) -> Iterator[FileChange]:
    """A, D and M changes between two root trees (None = empty), in git's order."""
    prefix = normalize_path(prefix)
    yield from _walk(store, old, new, "", prefix)


def _walk(store: RepoStore, old: Oid | None, new: Oid | None, base: str, prefix: str) -> Iterator[FileChange]:
    a = entries(store, old) if old else []
    b = entries(store, new) if new else []
    i = j = 0
    while i < len(a) or j < len(b):
        ka = _key(a[i][0], a[i][1]) if i < len(a) else None
        kb = _key(b[j][0], b[j][1]) if j < len(b) else None
        if kb is None or (ka is not None and ka < kb):
            yield from _one_side(store, a[i], base, prefix, deleted=True)
            i += 1
        elif ka is None or kb < ka:
            yield from _one_side(store, b[j], base, prefix, deleted=False)
            j += 1
        else:
            name, mode_a, oid_a = a[i]
            _, mode_b, oid_b = b[j]
            i += 1
            j += 1
            if oid_a == oid_b and mode_a == mode_b:
                continue
            path = base + decode_name(name)
            if not _wanted(path, prefix):
                continue
            if mode_a == MODE_TREE:
                yield from _walk(store, oid_a, oid_b, path + "/", prefix)
            elif not _inside(path, prefix):
                continue
            elif _kind(mode_a) != _kind(mode_b):
                yield FileChange("D", Side(path, mode_a, oid_a), None)
                yield FileChange("A", None, Side(path, mode_b, oid_b))
            else:
                yield FileChange("M", Side(path, mode_a, oid_a), Side(path, mode_b, oid_b))


def _one_side(
    store: RepoStore, entry: tuple[bytes, int, Oid], base: str, prefix: str, *, deleted: bool
) -> Iterator[FileChange]:
    name, mode, oid = entry
    path = base + decode_name(name)
    if not _wanted(path, prefix):
        return
    if mode == MODE_TREE:
        if deleted:
            yield from _walk(store, oid, None, path + "/", prefix)
        else:
            yield from _walk(store, None, oid, path + "/", prefix)
    elif _inside(path, prefix):
        side = Side(path, mode, oid)
        yield FileChange("D", side, None) if deleted else FileChange("A", None, side)


# -- rename detection --------------------------------------------------------------------


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_binary(data: bytes) -> bool:
    """git's test: a NUL byte in the first 8000 bytes."""
    return b"\0" in data[:_SNIFF]


def span_counts(data: bytes) -> dict[int, int]:
    """Bytes per span hash (spans end at a newline or after 64 bytes; CR of CRLF skipped in text)."""
    text = not is_binary(data)
    counts: dict[int, int] = {}
    acc1 = acc2 = 0
    n = 0
    size = len(data)
    for pos in range(size):
        c = data[pos]
        if text and c == 0x0D and pos + 1 < size and data[pos + 1] == 0x0A:
            continue
        old1 = acc1
        acc1 = ((acc1 << 7) ^ (acc2 >> 25)) & _MASK
        acc2 = ((acc2 << 7) ^ (old1 >> 25)) & _MASK
        acc1 = (acc1 + c) & _MASK
        n += 1
        if n < 64 and c != 0x0A:
            continue
        h = ((acc1 + acc2 * 0x61) & _MASK) % _HASHBASE
        counts[h] = counts.get(h, 0) + n
        n = 0
        acc1 = acc2 = 0
    if n:
        h = ((acc1 + acc2 * 0x61) & _MASK) % _HASHBASE
        counts[h] = counts.get(h, 0) + n
    return counts


class _Blobs:
    """Sizes and span counts of candidate blobs, computed once each."""

    def __init__(self, store: RepoStore) -> None:
        self.store = store
        self._spans: dict[Oid, dict[int, int]] = {}
        self._sizes: dict[Oid, int] = {}

    def size(self, oid: Oid) -> int:
        if oid not in self._sizes:
            header = self.store.object_header(oid)
            self._sizes[oid] = header[1] if header else 0
        return self._sizes[oid]

    def spans(self, oid: Oid) -> dict[int, int]:
        if oid not in self._spans:
            self._spans[oid] = span_counts(read_blob(self.store, oid))
        return self._spans[oid]


def _regular(mode: int) -> bool:
    return _kind(mode) == 0o100000


def similarity(blobs: _Blobs, src: Side, dst: Side) -> int:
    """git's estimate of how much of ``dst`` comes from ``src`` (0..MAX_SCORE)."""
    if not (_regular(src.mode) and _regular(dst.mode)):
        return 0
    s_size, d_size = blobs.size(src.oid), blobs.size(dst.oid)
    big = max(s_size, d_size)
    if big * (MAX_SCORE - MIN_SCORE) < (big - min(s_size, d_size)) * MAX_SCORE:
        return 0
    if not d_size:
        return 0
    a, b = blobs.spans(src.oid), blobs.spans(dst.oid)
    copied = sum(min(n, b.get(h, 0)) for h, n in a.items())
    return copied * MAX_SCORE // big


def detect_renames(store: RepoStore, changes: list[FileChange]) -> list[FileChange]:
    """``changes`` with deleted/added pairs that are renames merged into R entries."""
    dsts = [i for i, c in enumerate(changes) if c.status == "A"]
    srcs = [i for i, c in enumerate(changes) if c.status == "D"]
    if not dsts or not srcs:
        return changes
    paired: dict[int, tuple[int, int]] = {}  # dst index -> (src index, score)
    used: set[int] = set()
    _exact(changes, srcs, dsts, paired, used)
    left_src = [s for s in srcs if s not in used]
    left_dst = [d for d in dsts if d not in paired]
    if left_src and left_dst and len(left_src) * len(left_dst) <= RENAME_LIMIT * RENAME_LIMIT:
        blobs = _Blobs(store)
        _by_basename(changes, left_src, left_dst, paired, used, blobs)
        left_src = [s for s in srcs if s not in used]
        left_dst = [d for d in dsts if d not in paired]
        _by_matrix(changes, left_src, left_dst, paired, used, blobs)
    out: list[FileChange] = []
    for i, c in enumerate(changes):
        if i in used:
            continue
        if i in paired:
            s, score = paired[i]
            out.append(FileChange("R", changes[s].old, c.new, score))
        else:
            out.append(c)
    return out


def _exact(
    changes: list[FileChange],
    srcs: list[int],
    dsts: list[int],
    paired: dict[int, tuple[int, int]],
    used: set[int],
) -> None:
    by_oid: dict[Oid, list[int]] = {}
    for s in srcs:
        side = changes[s].old
        assert side is not None
        by_oid.setdefault(side.oid, []).append(s)
    for d in dsts:
        dst = changes[d].new
        assert dst is not None
        best, best_score = -1, -1
        for s in by_oid.get(dst.oid, ()):
            src = changes[s].old
            assert src is not None
            if s in used:
                continue
            if not (_regular(src.mode) and _regular(dst.mode)) and src.mode != dst.mode:
                continue
            score = 1 + (_basename(src.path) == _basename(dst.path))
            if score > best_score:
                best, best_score = s, score
                if score == 2:
                    break
        if best >= 0:
            paired[d] = (best, MAX_SCORE)
            used.add(best)


def _by_basename(
    changes: list[FileChange],
    srcs: list[int],
    dsts: list[int],
    paired: dict[int, tuple[int, int]],
    used: set[int],
    blobs: _Blobs,
) -> None:
    def unique(idx: list[int], old: bool) -> dict[str, int]:
        seen: dict[str, int] = {}
        dup: set[str] = set()
        for i in idx:
            side = changes[i].old if old else changes[i].new
            assert side is not None
            name = _basename(side.path)
            if name in seen:
                dup.add(name)
            seen[name] = i
        return {k: v for k, v in seen.items() if k not in dup}

    src_names = unique(srcs, True)
    dst_names = unique(dsts, False)
    for s in srcs:
        src = changes[s].old
        assert src is not None
        name = _basename(src.path)
        d = dst_names.get(name)
        if d is None or src_names.get(name) != s:
            continue
        dst = changes[d].new
        assert dst is not None
        score = similarity(blobs, src, dst)
        if score >= BASENAME_MIN_SCORE:
            paired[d] = (s, score)
            used.add(s)


def _by_matrix(
    changes: list[FileChange],
    srcs: list[int],
    dsts: list[int],
    paired: dict[int, tuple[int, int]],
    used: set[int],
    blobs: _Blobs,
) -> None:
    candidates: list[tuple[int, int, int, int, int]] = []  # (-score, -same name, order, dst, src)
    order = 0
    for d in dsts:
        dst = changes[d].new
        assert dst is not None
        best: list[tuple[int, int, int]] = []
        for s in srcs:
            src = changes[s].old
            assert src is not None
            score = similarity(blobs, src, dst)
            if score < MIN_SCORE:
                continue
            best.append((score, int(_basename(src.path) == _basename(dst.path)), s))
        best.sort(key=lambda t: -t[0])
        for score, same, s in best[:CANDIDATES_PER_DST]:
            candidates.append((-score, -same, order, d, s))
            order += 1
    candidates.sort()
    for neg_score, _, _, d, s in candidates:
        if d in paired or s in used:
            continue
        paired[d] = (s, -neg_score)
        used.add(s)
