"""The real-history generator keeps its promises: sizes, history shapes, determinism, fsck.

`small` is built twice, in two cache directories (sharing only the downloaded sdists), and
must give the same refs, equal to ids pinned here so a change of output across machines or
generator edits is noticed. `default` is checked once (cached between runs); `large` only
under `-m slow`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks.history import SIZES, cache_key, generate, stats
from benchmarks.sources import default_cache_dir

# The main commit of `small` for GENERATOR_VERSION 4: bump together with the generator.
SMALL_MAIN = "b796e70a778213102fbed6549564767e28d6c06b"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")


@pytest.fixture(scope="module")
def small() -> Path:
    return generate("small")


@pytest.fixture(scope="module")
def default() -> Path:
    return generate("default")


def fresh_cache(tmp_path: Path) -> Path:
    """An empty cache directory that reuses the downloaded sdists (they are immutable)."""
    shared = default_cache_dir() / "sdists"
    shared.mkdir(parents=True, exist_ok=True)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "sdists").symlink_to(shared, target_is_directory=True)
    return tmp_path


def test_small_is_deterministic_across_cache_dirs(small: Path, tmp_path: Path) -> None:
    first = generate("small", fresh_cache(tmp_path / "a"))
    second = generate("small", fresh_cache(tmp_path / "b"))
    assert first != second and first.name == second.name == cache_key(SIZES["small"])
    assert refs(first) == refs(second) == refs(small)
    assert git(first, "rev-parse", "main").strip() == SMALL_MAIN
    # the build leaves nothing half-made next to the finished repository
    assert [p.name for p in first.parent.iterdir()] == [first.name]


def test_generate_returns_the_cached_repo(small: Path) -> None:
    assert generate("small") == small
    assert git(small, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


@pytest.mark.parametrize("size", ["small", "default"])
def test_advertised_counts(size: str, request: pytest.FixtureRequest) -> None:
    repo: Path = request.getfixturevalue(size)
    spec = SIZES[size]
    info = stats(repo)
    assert info.commits >= spec.min_commits
    assert info.objects >= spec.min_objects
    assert info.merges > 0
    assert info.annotated_tags > 0 and info.tags > info.annotated_tags  # both tag kinds
    assert info.branches > len(spec.packages)  # main, one line per package, maintenance ones
    assert len(list((repo / "objects" / "pack").glob("*.pack"))) == 1


def test_branches_and_tags_look_like_releases(small: Path) -> None:
    lines = {line.split()[2]: line.split()[1] for line in refs(small).splitlines()}
    assert lines["refs/heads/main"] == "commit"
    assert lines["refs/heads/line/click"] == "commit"
    assert lines["refs/heads/maint/click-7.x"] == "commit"
    assert lines["refs/tags/click-8.1.7"] == "tag"  # annotated
    assert lines["refs/tags/merged/click-8.1.7"] == "commit"  # lightweight
    assert git(small, "cat-file", "-p", "click-8.1.7").startswith(
        f"object {git(small, 'rev-parse', 'line/click').strip()}\ntype commit\ntag click-8.1.7\n"
    )
    # every merge on main has the release's last commit as its second parent
    merged = git(small, "rev-parse", "merged/click-7.0^2").strip()
    assert merged == git(small, "rev-parse", "click-7.0^{commit}").strip()
    # the released tree is the sdist's own: the version string is there
    assert "7.0" in git(small, "show", "click-7.0:click/click/__init__.py")


def test_rename_follows_with_git_log(small: Path) -> None:
    # click 7.1 moved its package into src/: git's own rename detection sees the move.
    out = git(
        small, "log", "--follow", "-M", "--name-status", "--format=", "main", "--", "click/src/click/core.py"
    )
    assert any(
        line.startswith("R") and line.split("\t")[1:] == ["click/click/core.py", "click/src/click/core.py"]
        for line in out.splitlines()
    ), out
    assert git(small, "cat-file", "-e", "click-6.7:click/click/core.py") == ""


def test_binary_files_are_present(small: Path) -> None:
    numstat = git(small, "log", "--numstat", "--format=", "line/click")
    binary = [line.split("\t")[2] for line in numstat.splitlines() if line.startswith("-\t-\t")]
    assert "click/assets/data-0.bin" in binary
    blob = subprocess.run(
        ["git", "--git-dir", str(small), "cat-file", "blob", "main:click/assets/data-0.bin"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"\0" in blob and len(blob) == SIZES["small"].asset_bytes


@pytest.mark.parametrize("size", ["small", "default"])
def test_fsck_strict_is_clean(size: str, request: pytest.FixtureRequest) -> None:
    repo: Path = request.getfixturevalue(size)
    proc = subprocess.run(
        ["git", "--git-dir", str(repo), "fsck", "--strict", "--no-dangling"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_large_is_large(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("builds the large repository (minutes): run with -m slow")
    repo = generate("large")
    spec = SIZES["large"]
    info = stats(repo)
    assert info.objects >= spec.min_objects
    assert info.pack_bytes >= spec.min_pack_bytes
    assert info.commits >= spec.min_commits and info.merges > 0
