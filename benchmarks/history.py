"""Deterministic generator of a bare git repository with real history made from real code.

How it works:
- The repository is a monorepo: each package of `benchmarks.sources.CATALOG` chosen by the
  size lives under `<package>/`, is developed on its own branch `line/<package>`, and each of
  its releases is replayed on that branch, then merged into `main` with a merge commit.
- One release-to-release change becomes several commits, in a fixed order: first the moves
  (a deleted file paired with an added file of the same name and at least half its lines,
  one commit per pair of old and new directories), then the other changes grouped by
  directory, at most `files_per_commit` files each. The last commit of a release gets an
  annotated tag `<package>-<version>`; the merge into `main` gets a lightweight tag
  `merged/<package>-<version>`. When the major version changes, the previous release is
  kept as the branch `maint/<package>-<major>.x`.
- Besides the sdists' own binary files (images, .mo catalogs), every release rewrites a few
  generated binary assets (`<package>/assets/*.bin`, SHAKE-256 output seeded by package,
  version and index): they make every size carry binary diffs, and make `large` big.
- The stream is fed to `git fast-import`. Authors, committers, dates and messages are
  functions of the replay position only, so the same size always gives the same commit ids.
  The result is repacked into one pack (`git repack -a -d -f`), refs are packed, and HEAD is
  `refs/heads/main`.
- `generate()` caches the repository under `<cache>/repos/<key>.git`, where the key covers
  the size's parameters and `GENERATOR_VERSION`; it is built in a temporary directory and
  renamed into place, so a reader never sees a half-built repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from benchmarks.sources import CATALOG, FileEntry, Release, default_cache_dir, load_release

# Bump whenever a change here alters the generated repository (commit ids or packing).
GENERATOR_VERSION = 4

EPOCH = 1420070400  # 2015-01-01T00:00:00Z: the first commit's date
COMMIT_SPACING = 1800  # seconds between two consecutive commits
AUTHORS = (
    ("Ada Lovelace", "ada@example.org"),
    ("Grace Hopper", "grace@example.org"),
    ("Linus Pauling", "linus.p@example.org"),
    ("Barbara Liskov", "barbara@example.org"),
    ("Ken Thompson", "ken@example.org"),
    ("Margaret Hamilton", "margaret@example.org"),
    ("Donald Knuth", "don@example.org"),
)
RELEASER = ("Release Bot", "release-bot@example.org")


@dataclass(frozen=True)
class SizeSpec:
    """What one size replays and how finely; `min_*` are the properties the tests assert."""

    name: str
    packages: tuple[str, ...]
    files_per_commit: int
    asset_files: int
    asset_bytes: int
    min_commits: int
    min_objects: int
    min_pack_bytes: int


_SMALL_PACKAGES = ("click", "itsdangerous", "markupsafe")
_DEFAULT_PACKAGES = (*_SMALL_PACKAGES, "jinja2", "werkzeug", "flask", "attrs")

SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec("small", _SMALL_PACKAGES, 4, 1, 8 * 1024, 250, 1_500, 0),
    "default": SizeSpec("default", _DEFAULT_PACKAGES, 2, 2, 16 * 1024, 2_000, 15_000, 0),
    "large": SizeSpec(
        "large",
        (*_DEFAULT_PACKAGES, "pygments", "sqlalchemy", "django"),
        1,
        4,
        1024 * 1024,
        40_000,
        300_000,
        250 * 1024 * 1024,
    ),
}


@dataclass(frozen=True)
class Stats:
    path: str
    commits: int
    merges: int
    objects: int
    pack_bytes: int
    branches: int
    tags: int
    annotated_tags: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class GenerationError(Exception):
    """git failed while building the repository; carries the command and its stderr."""

    def __init__(self, cmd: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(cmd)} failed: {stderr.strip()[-2000:]}")
        self.cmd = cmd
        self.stderr = stderr


# --- the fast-import stream ----------------------------------------------------------------


def _quote(path: str) -> bytes:
    raw = path.encode("utf-8", "surrogateescape")
    if b"\n" in raw or b"\\" in raw or raw.startswith(b'"'):
        esc = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
        return b'"' + esc + b'"'
    return raw


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


Op = tuple[str, str, int, int]  # ("M", path, mode, blob mark) or ("D", path, 0, 0)
State = dict[str, tuple[int, int]]  # path -> (mode, blob mark)


class _Stream:
    """Writes a fast-import stream; hands out marks and dedupes blobs by content."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.next_mark = 1
        self.blobs: dict[bytes, int] = {}
        self.commit_count = 0

    def _mark(self) -> int:
        mark = self.next_mark
        self.next_mark += 1
        return mark

    def blob(self, data: bytes) -> int:
        key = hashlib.sha1(b"blob %d\0" % len(data) + data).digest()
        mark = self.blobs.get(key)
        if mark is None:
            mark = self._mark()
            self.blobs[key] = mark
            self.out.write(b"blob\nmark :%d\n" % mark + _data(data))
        return mark

    def _when(self) -> bytes:
        return b"%d +0000" % (EPOCH + self.commit_count * COMMIT_SPACING)

    def commit(
        self,
        ref: str,
        author: tuple[str, str],
        message: str,
        parent: int | None,
        ops: list[Op],
        merge: int | None = None,
        committer: tuple[str, str] | None = None,
    ) -> int:
        mark = self._mark()
        when = self._when()
        self.commit_count += 1
        who = committer or author
        out = [b"commit %s\nmark :%d\n" % (ref.encode(), mark)]
        out.append(b"author %s <%s> %s\n" % (author[0].encode(), author[1].encode(), when))
        out.append(b"committer %s <%s> %s\n" % (who[0].encode(), who[1].encode(), when))
        out.append(_data(message.encode()))
        if parent is not None:
            out.append(b"from :%d\n" % parent)
        if merge is not None:
            out.append(b"merge :%d\n" % merge)
        for kind, path, mode, blob in ops:
            if kind == "D":
                out.append(b"D " + _quote(path) + b"\n")
            else:
                out.append(b"M %o :%d " % (mode, blob) + _quote(path) + b"\n")
        out.append(b"\n")
        self.out.write(b"".join(out))
        return mark

    def annotated_tag(self, name: str, target: int, message: str) -> None:
        when = EPOCH + self.commit_count * COMMIT_SPACING
        head = b"tag %s\nfrom :%d\ntagger %s <%s> %d +0000\n" % (
            name.encode(),
            target,
            RELEASER[0].encode(),
            RELEASER[1].encode(),
            when,
        )
        self.out.write(head + _data(message.encode()))

    def ref(self, ref: str, target: int) -> None:
        self.out.write(b"reset %s\nfrom :%d\n\n" % (ref.encode(), target))


# --- planning one release-to-release change ------------------------------------------------


def _similar(old: bytes, new: bytes) -> bool:
    """Whether git would call `new` a rename of `old`: most lines, counted with repeats, survive."""
    if old == new:
        return True
    a, b = Counter(old.splitlines()), Counter(new.splitlines())
    total = a.total() + b.total()
    return total > 0 and 2 * (a & b).total() >= 0.6 * total


def _pair_renames(deleted: list[str], added: list[str], old: Release, new: Release) -> list[tuple[str, str]]:
    by_name: dict[str, list[str]] = {}
    for path in added:
        by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    pairs: list[tuple[str, str]] = []
    taken: set[str] = set()
    for src in deleted:
        for dst in by_name.get(src.rsplit("/", 1)[-1], []):
            if dst not in taken and _similar(old[src].data, new[dst].data):
                pairs.append((src, dst))
                taken.add(dst)
                break
    return pairs


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _assets(package: str, version: str, spec: SizeSpec) -> Release:
    files: Release = {}
    for k in range(spec.asset_files):
        seed = f"gitserver-bench/{package}/{version}/{k}".encode()
        body = hashlib.shake_256(seed).digest(spec.asset_bytes - 16)
        files[f"assets/data-{k}.bin"] = FileEntry(0o100644, b"GSBENCH\0" + b"%08d" % k + body)
    return files


@dataclass
class _Line:
    package: str
    tip: int
    state: State  # paths relative to the repository root
    merged: State  # what main holds of this package
    previous: Release  # the last release replayed, paths relative to the package
    last_version: str | None = None


def _author_for(package: str, group: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{package}:{group}".encode()).digest()
    return AUTHORS[digest[0] % len(AUTHORS)]


def _replay(stream: _Stream, line: _Line, version: str, release: Release, spec: SizeSpec) -> int:
    """Commit the change from the line's previous release to `release`; return the last commit."""
    pkg = line.package
    old = line.previous
    new = {**release, **_assets(pkg, version, spec)}
    added = [p for p in new if p not in old]
    deleted = [p for p in old if p not in new]
    changed = [p for p in new if p in old and new[p] != old[p]]
    renames = _pair_renames(deleted, added, old, new)
    moved = {s for s, _ in renames} | {d for _, d in renames}
    groups: list[tuple[str, str, list[Op]]] = []

    def put(path: str) -> Op:
        entry = new[path]
        return ("M", f"{pkg}/{path}", entry.mode, stream.blob(entry.data))

    by_move: dict[tuple[str, str], list[Op]] = {}
    for src, dst in renames:
        by_move.setdefault((_dirname(src), _dirname(dst)), []).extend([("D", f"{pkg}/{src}", 0, 0), put(dst)])
    for (src_dir, dst_dir), ops in sorted(by_move.items()):
        title = f"{pkg}: move {len(ops) // 2} file(s) from {src_dir or '.'} to {dst_dir or '.'}"
        groups.append((title, src_dir, ops))

    by_dir: dict[str, list[str]] = {}
    for path in sorted({*added, *deleted, *changed} - moved):
        by_dir.setdefault(_dirname(path), []).append(path)
    n = spec.files_per_commit
    for directory, paths in sorted(by_dir.items()):
        for start in range(0, len(paths), n):
            chunk = paths[start : start + n]
            ops = [("D", f"{pkg}/{p}", 0, 0) if p in deleted else put(p) for p in chunk]
            verb = "remove" if all(p in deleted for p in chunk) else "update"
            names = ", ".join(p.rsplit("/", 1)[-1] for p in chunk)
            groups.append((f"{pkg}: {verb} {directory or '.'}: {names}", directory, ops))

    if not groups:  # identical releases still get their release commit
        groups.append((f"{pkg}: no source change", "", []))
    for index, (title, group, ops) in enumerate(groups):
        last = index == len(groups) - 1
        body = f"{title}\n\nPart {index + 1} of {len(groups)} of the move to {pkg} {version}.\n"
        if last:
            body += f"\nRelease {pkg} {version}.\n"
        line.tip = stream.commit(f"refs/heads/line/{pkg}", _author_for(pkg, group), body, line.tip, ops)
        for kind, path, mode, blob in ops:
            if kind == "D":
                line.state.pop(path, None)
            else:
                line.state[path] = (mode, blob)
    line.previous = new
    return line.tip


def _merge_ops(line: _Line) -> list[Op]:
    ops: list[Op] = [("D", p, 0, 0) for p in sorted(line.merged) if p not in line.state]
    ops += [("M", p, *v) for p, v in sorted(line.state.items()) if line.merged.get(p) != v]
    return ops


def _schedule(spec: SizeSpec) -> Iterator[tuple[str, int, str]]:
    """(package, index, version) round-robin over the size's packages, oldest releases first."""
    longest = max(len(CATALOG[p]) for p in spec.packages)
    for index in range(longest):
        for package in spec.packages:
            versions = CATALOG[package]
            if index < len(versions):
                yield package, index, versions[index]


def _major(version: str) -> str:
    return version.split(".", 1)[0]


_README = """# gitserver benchmark history

Generated by gitserver's `benchmarks/history.py` (size: {size}).
Each top-level directory replays the published source releases of one Python package on its
branch `line/<package>`; every release is merged into `main`. The code belongs to its authors
under its own license (see each package's LICENSE file).
"""


def write_stream(out: BinaryIO, spec: SizeSpec, cache_dir: Path) -> int:
    """Write the whole fast-import stream for `spec`; return the number of commits."""
    stream = _Stream(out)
    readme = stream.blob(_README.format(size=spec.name).encode())
    attributes = stream.blob(b"*.bin binary\n*.mo binary\n")
    main = stream.commit(
        "refs/heads/main",
        RELEASER,
        "Start the monorepo\n",
        None,
        [("M", "README.md", 0o100644, readme), ("M", ".gitattributes", 0o100644, attributes)],
    )
    lines: dict[str, _Line] = {}
    for package, _index, version in _schedule(spec):
        release = load_release(package, version, cache_dir)
        line = lines.get(package)
        if line is None:
            line = lines[package] = _Line(package, main, {}, {}, {})
        elif line.last_version and _major(line.last_version) != _major(version):
            stream.ref(f"refs/heads/maint/{package}-{_major(line.last_version)}.x", line.tip)
        tip = _replay(stream, line, version, release, spec)
        stream.annotated_tag(f"{package}-{version}", tip, f"{package} {version}\n")
        main = stream.commit(
            "refs/heads/main",
            RELEASER,
            f"Merge branch 'line/{package}' ({package} {version})\n",
            main,
            _merge_ops(line),
            merge=tip,
            committer=RELEASER,
        )
        line.merged = dict(line.state)
        line.last_version = version
        stream.ref(f"refs/tags/merged/{package}-{version}", main)
    out.write(b"done\n")
    return stream.commit_count


# --- building and caching ------------------------------------------------------------------


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    cmd = ["git", "--git-dir", str(repo), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise GenerationError(cmd, proc.stderr.decode(errors="replace"))
    return proc.stdout.decode(errors="replace")


def cache_key(spec: SizeSpec) -> str:
    """Directory name of the cached repository: size, generator version, parameters digest."""
    params = {"spec": asdict(spec), "releases": {p: CATALOG[p] for p in spec.packages}}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return f"history-{spec.name}-v{GENERATOR_VERSION}-{digest}.git"


def build(spec: SizeSpec, dest: Path, cache_dir: Path) -> None:
    """Build the repository for `spec` as a new bare repository at `dest` (must not exist)."""
    proc = subprocess.run(["git", "init", "--quiet", "--bare", str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise GenerationError(["git", "init"], proc.stderr)
    _git(dest, "symbolic-ref", "HEAD", "refs/heads/main")
    env = {**os.environ, "GIT_DIR": str(dest)}
    cmd = ["git", "fast-import", "--quiet", "--done"]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errors, env=env)
        assert proc.stdin is not None
        try:
            write_stream(proc.stdin, spec, cache_dir)
        finally:
            proc.stdin.close()
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise GenerationError(cmd, errors.read().decode(errors="replace"))
    # -f: recompute deltas as `git gc --aggressive` would; fast-import only deltas against
    # the previous blob it wrote, which leaves the pack about 20% larger than git's own.
    _git(dest, "repack", "-a", "-d", "-f", "-q")
    _git(dest, "pack-refs", "--all")
    _git(dest, "prune-packed")


def generate(size: str = "default", cache_dir: Path | None = None) -> Path:
    """Return the path of the cached bare repository of `size`, building it if missing.

    size: "small", "default" or "large" (see SIZES). cache_dir: where sdists and repositories
    are cached; `$GITSERVER_BENCH_CACHE` or `~/.cache/gitserver-bench` when None.
    Raises KeyError for an unknown size, SourceError when a release cannot be fetched, and
    GenerationError when git fails.
    """
    spec = SIZES[size]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = cache / "repos" / cache_key(spec)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.name}-", dir=final.parent))
    try:
        build(spec, tmp / "repo.git", cache)
        try:
            (tmp / "repo.git").rename(final)
        except OSError:
            if not final.is_dir():  # another builder won the race only if final now exists
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def stats(repo: Path) -> Stats:
    """Count commits, merges, objects, pack bytes and refs of a generated repository."""
    counts = dict(
        line.split(": ", 1) for line in _git(repo, "count-objects", "-v").splitlines() if ": " in line
    )
    refs = _git(repo, "for-each-ref", "--format=%(objecttype) %(refname)").splitlines()
    return Stats(
        path=str(repo),
        commits=int(_git(repo, "rev-list", "--all", "--count").strip()),
        merges=int(_git(repo, "rev-list", "--all", "--merges", "--count").strip()),
        objects=int(counts.get("in-pack", "0")) + int(counts.get("count", "0")),
        pack_bytes=int(counts.get("size-pack", "0")) * 1024,
        branches=sum(1 for r in refs if r.split(" ", 1)[1].startswith("refs/heads/")),
        tags=sum(1 for r in refs if r.split(" ", 1)[1].startswith("refs/tags/")),
        annotated_tags=sum(1 for r in refs if r.startswith("tag ")),
    )


def main(argv: list[str] | None = None) -> None:
    """CLI: build (or find) the repository of a size, print its path and stats."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    args = parser.parse_args(argv)
    started = time.monotonic()
    repo = generate(args.size, args.cache_dir)
    elapsed = time.monotonic() - started
    info = stats(repo)
    if args.json:
        print(json.dumps({**info.as_dict(), "seconds": round(elapsed, 1)}))
        return
    print(repo)
    for key, value in info.as_dict().items():
        if key != "path":
            print(f"  {key}: {value}")
    print(f"  seconds: {elapsed:.1f}")


if __name__ == "__main__":
    main()
