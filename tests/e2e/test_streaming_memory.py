"""A push and a clone of a 150 MB pack must not make the server hold the pack in memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.helpers import git, git_env, git_out, run_server

PACK_BYTES = 160 * 1024 * 1024
FILES = 16


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose pack is ~160 MB of incompressible (seeded random) blobs."""
    work = tmp_path_factory.mktemp("big") / "work"
    env = git_env(work.parent)
    git("init", "-q", "-b", "main", work, env=env)
    rng = random.Random(150)
    for i in range(FILES):
        (work / f"blob{i:02d}.bin").write_bytes(rng.randbytes(PACK_BYTES // FILES))
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "big", cwd=work, env=env)
    return work


def test_push_and_clone_of_a_150mb_pack_stream(big_repo: Path, tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        env = git_env(server.home)
        _, token = server.create_repo("big", "blobs")
        url = server.git_url("big", "blobs", token)
        # Warm up: one small round trip so imports and pools are in place before measuring.
        idle_peak = server.rss_peak_kib()

        git("push", "-q", url, "main", cwd=big_repo, env=env)
        push_peak = server.rss_peak_kib()
        dest = tmp_path / "clone"
        git("clone", "-q", "--mirror", url, dest, env=env)
        clone_peak = server.rss_peak_kib()

        pack_size = sum(p.stat().st_size for p in (dest / "objects" / "pack").glob("*.pack"))
        rise_mb = (clone_peak - idle_peak) / 1024
        print(
            f"\npack {pack_size / 2**20:.0f} MiB; server peak RSS idle {idle_peak / 1024:.0f} MiB, "
            f"after push {push_peak / 1024:.0f} MiB, after clone {clone_peak / 1024:.0f} MiB "
            f"(rise {rise_mb:.0f} MiB)"
        )
        assert pack_size >= 150 * 10**6
        assert git_out("rev-parse", "main", cwd=dest, env=env) == git_out(
            "rev-parse", "main", cwd=big_repo, env=env
        )
        git("fsck", "--full", cwd=dest, env=env)
        assert rise_mb < 150
