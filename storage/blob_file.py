"""The file backend of the blob store contract (``storage.blobstore.BlobStore``).

Layout under the root directory:
- Key ``a/b/c`` is the file ``a.d/b.d/c.b``: directory segments get the suffix ``.d`` and the
  last segment ``.b``, so a key and a longer key under it (``a`` and ``a/b``) never fight
  over one name. Names ending in anything else (temp files) are ignored by ``list``.
- Each object file starts with a 40-byte header, ``MAGIC`` + the SHA-256 of the content;
  the ETag is that digest in hex, quoted. Header and content live in one file, so a rename
  swaps both at once.
- ``.locks/NN``: 256 lock files (keys hash onto them), taken with ``flock``.

How a put works: stream the data into a temp file next to the target (hashing as it goes),
write the header, fsync; then, holding the key's lock, check the condition against the
current file, ``rename`` over the target and fsync the directory. Every put and delete takes
the lock for its check-and-swap, so a condition checked is still true at the rename, also
against other processes on this machine (flock; not meant for NFS). Readers take no lock:
a file they opened keeps its bytes whatever renames follow. Deletes prune empty directories;
a put re-creates its directory if a delete removed it under its feet.

Crashes: a put holds an flock on its temp file until the rename; opening the store removes
temp files nobody holds (``sweep_temp_files``), so a killed put leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from storage.blobstore import (
    BlobData,
    BlobStoreError,
    NotFound,
    PreconditionFailed,
    check_key,
    check_prefix,
    iter_chunks,
)

MAGIC = b"GSBLOB1\n"
HEADER_SIZE = len(MAGIC) + 32
CHUNK = 1 << 20
_FILE_SUFFIX = ".b"
_DIR_SUFFIX = ".d"
_LOCK_STRIPES = 256


def _etag(digest: bytes) -> str:
    return f'"{digest.hex()}"'


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """``BlobStore`` in a local directory (created if missing)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._locks_dir = self.root / ".locks"
        # flock is per open file description: threads of this process need their own guard
        self._thread_locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        try:
            self._locks_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"cannot create blob store at {self.root}: {exc}") from exc
        self.sweep_temp_files()

    def sweep_temp_files(self) -> int:
        """Remove temp files of puts whose process died (SIGKILL, power loss) before
        the rename; returns how many. A put creates and flocks its temp file while holding
        its key's stripe lock, and keeps that flock until the rename; so a temp file that
        can be flocked under the same stripe lock has no live writer."""
        removed = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                key = self._temp_key(Path(dirpath) / name)
                if key is None:
                    continue
                with self._locked(key):
                    try:
                        fd = os.open(Path(dirpath) / name, os.O_RDONLY)
                    except OSError:
                        continue  # renamed or removed meanwhile
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        os.unlink(Path(dirpath) / name)
                        removed += 1
                    except OSError:
                        continue  # locked: a put in progress
                    finally:
                        os.close(fd)
        return removed

    def _temp_key(self, path: Path) -> str | None:
        """The key whose put made temp file ``path`` (``.NAME.b.HEX.tmp``), else None."""
        name = path.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            return None
        target = name[1:-4].rpartition(".")[0]
        dirs = path.parent.relative_to(self.root).parts
        if not target.endswith(_FILE_SUFFIX) or not all(d.endswith(_DIR_SUFFIX) for d in dirs):
            return None
        key = "/".join([*(d[: -len(_DIR_SUFFIX)] for d in dirs), target[: -len(_FILE_SUFFIX)]])
        try:
            return check_key(key)
        except ValueError:
            return None

    @classmethod
    def from_url(cls, url: str) -> FileBlobStore:
        """``file:///abs/path`` or ``file://relative/path``."""
        scheme, _, rest = url.partition("://")
        if scheme != "file" or not rest:
            raise ValueError(f"not a file:// blob store URL: {url!r}")
        return cls(rest)

    # -- layout

    def _path(self, key: str) -> Path:
        *dirs, name = check_key(key).split("/")
        return self.root.joinpath(*(d + _DIR_SUFFIX for d in dirs), name + _FILE_SUFFIX)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = hashlib.sha256(key.encode()).digest()[0]
        with self._thread_locks[stripe]:
            fd = os.open(self._locks_dir / f"{stripe:02x}", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def _read_header(self, f: BinaryIO, key: str) -> bytes:
        header = f.read(HEADER_SIZE)
        if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
            raise BlobStoreError(f"blob {key!r} is corrupt (bad header)")
        return header[len(MAGIC) :]

    def _current_etag(self, path: Path, key: str) -> str | None:
        try:
            with open(path, "rb") as f:
                return _etag(self._read_header(f, key))
        except FileNotFoundError:
            return None

    # -- contract

    def put(
        self, key: str, data: BlobData, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if if_match is not None and if_none_match:
            raise ValueError("if_match and if_none_match are exclusive")
        path = self._path(key)
        if if_none_match and path.exists():
            raise PreconditionFailed(key)  # fail fast; re-checked under the lock
        tmp = None
        f = None
        try:
            with self._locked(key):  # created and flocked under the stripe lock: see sweep_temp_files
                tmp, f = self._create_temp(path)
            f.write(b"\0" * HEADER_SIZE)
            sha = hashlib.sha256()
            for chunk in iter_chunks(data, CHUNK):
                sha.update(chunk)
                f.write(chunk)
            digest = sha.digest()
            f.seek(0)
            f.write(MAGIC + digest)
            f.flush()
            os.fsync(f.fileno())
            with self._locked(key):
                current = self._current_etag(path, key)
                if (if_none_match and current is not None) or (if_match is not None and current != if_match):
                    raise PreconditionFailed(key)
                os.rename(tmp, path)
                tmp = None
            _fsync_dir(path.parent)
            return _etag(digest)
        except OSError as exc:
            raise BlobStoreError(f"cannot write blob {key!r}: {exc}") from exc
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            if f is not None:
                f.close()  # releases the temp file's flock, after the rename or unlink

    def _create_temp(self, path: Path) -> tuple[Path, BinaryIO]:
        """Create a temp file beside ``path``, making its directory; retried because a
        concurrent delete may prune the directory between the mkdir and the create."""
        for _ in range(10):
            tmp = path.parent / f".{path.name}.{os.urandom(8).hex()}.tmp"
            try:
                self._make_dirs(path.parent)
                f = open(tmp, "xb")
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # a live writer's mark for the sweeper
                return tmp, f
            except FileNotFoundError:
                continue
        raise BlobStoreError(f"cannot create a temp file in {path.parent}")

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and missing parents, fsyncing each parent so the new
        directory entries survive a crash as well as the file renamed into them."""
        missing = []
        while not directory.is_dir() and directory != self.root:
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir(exist_ok=True)
            _fsync_dir(d.parent)

    def _open(self, key: str) -> BinaryIO:
        try:
            f = open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound(key) from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read blob {key!r}: {exc}") from exc
        try:
            self._read_header(f, key)
        except BaseException:
            f.close()
            raise
        return f

    def get(self, key: str) -> Iterator[bytes]:
        return self._stream(self._open(key))

    @staticmethod
    def _stream(f: BinaryIO) -> Iterator[bytes]:
        with f:
            while chunk := f.read(CHUNK):
                yield chunk

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if not 0 <= start <= end:
            raise ValueError(f"bad range [{start}, {end})")
        with self._open(key) as f:
            f.seek(HEADER_SIZE + start)
            return f.read(end - start)

    def head(self, key: str) -> tuple[int, str] | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                digest = self._read_header(f, key)
                size = os.fstat(f.fileno()).st_size - HEADER_SIZE
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BlobStoreError(f"cannot stat blob {key!r}: {exc}") from exc
        return size, _etag(digest)

    def list(self, prefix: str = "") -> Iterator[tuple[str, int, str]]:
        check_prefix(prefix)
        *dirs, _ = prefix.split("/")
        start = self.root.joinpath(*(d + _DIR_SUFFIX for d in dirs))
        keys = sorted(k for k in self._walk(start, "/".join(dirs)) if k.startswith(prefix))
        for key in keys:
            found = self.head(key)
            if found is not None:  # deleted since the walk
                yield key, found[0], found[1]

    def _walk(self, directory: Path, key_dir: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BlobStoreError(f"cannot list {directory}: {exc}") from exc
        base = key_dir + "/" if key_dir else ""
        for entry in entries:
            name = entry.name  # temp files end in .tmp and the lock dir is .locks: both skipped
            if name.endswith(_FILE_SUFFIX) and entry.is_file(follow_symlinks=False):
                yield base + name[: -len(_FILE_SUFFIX)]
            elif name.endswith(_DIR_SUFFIX) and entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), base + name[: -len(_DIR_SUFFIX)])

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            with self._locked(key):
                try:
                    path.unlink()
                except FileNotFoundError:
                    return
            _fsync_dir(path.parent)
        except OSError as exc:
            raise BlobStoreError(f"cannot delete blob {key!r}: {exc}") from exc
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise BlobStoreError(f"cannot prune {directory}: {exc}") from exc
            directory = directory.parent

    def close(self) -> None:
        pass
