"""Source material for the real-history generator: released sdists of real Python packages.

Rules:
- Material comes only from PyPI, through pip (`pip download --no-deps --no-binary :all:`),
  pinned to exact versions listed in `CATALOG`. Nothing here is committed to gitserver: the
  archives live in the cache directory (`$GITSERVER_BENCH_CACHE`, else
  `~/.cache/gitserver-bench/`) under `sdists/<name>-<version>/`.
- An archive is read into a `Release`: a map from path (the sdist's top directory stripped)
  to `(mode, bytes)`, with packaging by-products (`PKG-INFO`, `*.egg-info/`) left out, so two
  releases of one package line up path by path the way they would in the project's own repo.
- Reading is deterministic: members are sorted, modes are reduced to git's 100644/100755,
  links and special files are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Per package: the ordered releases the generator replays. Only pure-Python sdists (or sdists
# whose C part is optional) are listed; every one of them downloads and unpacks with pip alone.
# fmt: off
CATALOG: dict[str, tuple[str, ...]] = {
    "click": ("5.1", "6.0", "6.7", "7.0", "7.1.2", "8.0.0", "8.0.4", "8.1.3", "8.1.7"),
    "itsdangerous": ("0.24", "1.1.0", "2.0.1", "2.1.2"),
    "markupsafe": ("1.1.0", "1.1.1", "2.0.1", "2.1.5"),
    "jinja2": ("2.7.3", "2.8.1", "2.9.6", "2.10.3", "2.11.3", "3.0.3", "3.1.4"),
    "werkzeug": (
        "0.11.15", "0.12.2", "0.14.1", "0.15.6", "0.16.1", "1.0.1",
        "2.0.3", "2.1.2", "2.2.3", "2.3.8", "3.0.3",
    ),
    "flask": ("0.10.1", "0.11.1", "0.12.5", "1.0.4", "1.1.4", "2.0.3", "2.1.3", "2.2.5", "2.3.3", "3.0.3"),
    "attrs": ("17.4.0", "18.2.0", "19.3.0", "20.3.0", "21.4.0", "22.2.0", "23.2.0"),
    "django": (
        "1.8.19", "1.9.13", "1.10.8", "1.11.29", "2.0.13", "2.1.15", "2.2.28",
        "3.0.14", "3.1.14", "3.2.25", "4.0.10", "4.1.13", "4.2.16", "5.0.9",
    ),
    "sqlalchemy": ("1.0.19", "1.1.18", "1.2.19", "1.3.24", "1.4.54", "2.0.36"),
    "pygments": ("2.2.0", "2.5.2", "2.8.1", "2.11.2", "2.14.0", "2.17.2", "2.18.0"),
}
# fmt: on

_SKIP_NAMES = {"PKG-INFO"}


class SourceError(Exception):
    """A release could not be downloaded or read; carries the package, version and reason."""

    def __init__(self, package: str, version: str, reason: str) -> None:
        super().__init__(f"{package}=={version}: {reason}")
        self.package = package
        self.version = version
        self.reason = reason


@dataclass(frozen=True)
class FileEntry:
    mode: int  # 0o100644 or 0o100755
    data: bytes


Release = dict[str, FileEntry]


def default_cache_dir() -> Path:
    """`$GITSERVER_BENCH_CACHE`, else `~/.cache/gitserver-bench`."""
    env = os.environ.get("GITSERVER_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gitserver-bench"


def _archive_in(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip", ".tar.bz2")))
    return found[0] if found else None


def fetch_sdist(package: str, version: str, cache_dir: Path) -> Path:
    """Return the cached sdist archive of `package==version`, downloading it with pip if absent.

    Raises SourceError when pip fails or leaves no archive.
    """
    folder = cache_dir / "sdists" / f"{package}-{version}"
    archive = _archive_in(folder)
    if archive is not None:
        return archive
    tmp = cache_dir / "sdists" / f".tmp-{package}-{version}-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    # pip prepares the sdist's metadata before keeping it. Old setup.py files need the
    # setuptools already in the venv (no isolation); newer ones need their own build backend
    # (flit, hatchling), which pip installs in an isolated environment.
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check"]
    attempts = [
        [*base, "--no-binary", ":all:", "--no-build-isolation"],
        [*base, "--no-binary", package],
    ]
    stderr = ""
    archive = None
    for cmd in attempts:
        proc = subprocess.run([*cmd, "-d", str(tmp), f"{package}=={version}"], capture_output=True, text=True)
        stderr = proc.stderr
        archive = _archive_in(tmp)
        if archive is not None:
            break
    if archive is None:
        raise SourceError(package, version, f"pip download failed: {stderr.strip()[-2000:]}")
    # pip may fail after the download while preparing metadata; the archive itself is what we need.
    if folder.exists():
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    else:
        tmp.rename(folder)
    found = _archive_in(folder)
    assert found is not None
    return found


def _keep(path: str) -> bool:
    parts = path.split("/")
    if not path or (parts[-1] in _SKIP_NAMES and len(parts) == 1):
        return False
    # `.git` (a submodule's gitfile in some sdists) is a name git itself refuses in a tree.
    return not any(p.endswith(".egg-info") or p in ("", ".", "..") or p.lower() == ".git" for p in parts)


def _strip_top(name: str) -> str:
    name = name.lstrip("./")
    return name.split("/", 1)[1] if "/" in name else ""


def read_release(archive: Path) -> Release:
    """Read an sdist archive into a Release (top directory stripped, by-products dropped)."""
    files: Release = {}
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                path = _strip_top(info.filename)
                if not _keep(path):
                    continue
                exe = (info.external_attr >> 16) & 0o111
                files[path] = FileEntry(0o100755 if exe else 0o100644, zf.read(info))
        return dict(sorted(files.items()))
    # Stream members in archive order (sorting them first makes gzip seek backwards, which
    # re-decompresses from the start); the dict is sorted afterwards.
    with tarfile.open(archive, mode="r|*") as tf:
        for m in tf:
            if not m.isfile():
                continue
            path = _strip_top(m.name)
            if not _keep(path):
                continue
            fobj = tf.extractfile(m)
            if fobj is None:
                continue
            with fobj:
                data = fobj.read()
            files[path] = FileEntry(0o100755 if m.mode & 0o111 else 0o100644, data)
    return dict(sorted(files.items()))


def load_release(package: str, version: str, cache_dir: Path) -> Release:
    """Download (if needed) and read one release."""
    archive = fetch_sdist(package, version, cache_dir)
    try:
        return read_release(archive)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(package, version, f"cannot read {archive.name}: {exc}") from exc


def _main() -> None:
    """Download every release in CATALOG and print its archive and file count (a cache warm-up)."""
    cache = default_cache_dir()
    for package, versions in CATALOG.items():
        for version in versions:
            try:
                archive = fetch_sdist(package, version, cache)
            except SourceError as exc:
                print(package, version, "FAILED", exc.reason.splitlines()[-1], flush=True)
                continue
            print(package, version, archive.name, len(read_release(archive)), flush=True)


if __name__ == "__main__":
    _main()
