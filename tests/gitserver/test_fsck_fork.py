"""``gitserver fsck`` on a fork that was never used (no file of its own yet): it checks
the fork's refs against its parent's file instead of failing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import VENV_BIN, Server, git, git_env


def _fsck(server: Server, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "gitserver"), "fsck", target, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fsck_of_an_unused_fork_checks_it_through_its_parent(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("fsckns", "parent")
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work, env=env)
    (work / "f.txt").write_text("one\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "one", cwd=work, env=env)
    git("push", "-q", server.git_url("fsckns", "parent", token), "main", cwd=work, env=env)
    status, fork = server.api("POST", "/namespaces/fsckns/repos/parent/fork", {"name": "child"})
    assert status == 201, fork
    assert not any(server.data_dir.rglob(f"{fork['id']}.sqlite")), "an unused fork has no file yet"

    checked = _fsck(server, "fsckns/child")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok" in checked.stdout.splitlines()[-1]
    assert _fsck(server, "fsckns/parent").returncode == 0
    assert _fsck(server, "fsckns/no-such-fork").returncode == 1
