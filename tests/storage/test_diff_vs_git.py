"""Patches from storage.diff compared byte for byte with what the real git prints.

Random line edits of code-like text go through ``git diff --no-index`` and our hunks
(context, hunk headers with function names, sliding with the indent heuristic, missing
final newlines); a two-commit repository with renames, binary files, mode and type
changes and quoted names goes through ``git diff A B`` and ``storage.diff.diff_trees``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from storage.diff import diff_trees
from storage.hunks import text_diff
from storage.model import ObjType
from storage.repo_store import RepoStore
from storage.revisions import resolve_treeish
from tests.helpers import git, git_env, git_out

VOCAB = [
    b"",
    b"def f():",
    b"    return 1",
    b"}",
    b"{",
    b"x = 1",
    b"  if a:",
    b"\tfoo",
    b"class A:",
    b"    pass",
    b"# c",
    b"end",
]


def _mutate(rnd: random.Random, lines: list[bytes]) -> list[bytes]:
    out = list(lines)
    for _ in range(rnd.randint(1, 6)):
        i = rnd.randint(0, len(out))
        op = rnd.random()
        if op < 0.4:
            out[i:i] = [rnd.choice(VOCAB) for _ in range(rnd.randint(1, 4))]
        elif op < 0.8 and out:
            del out[i : i + rnd.randint(1, 3)]
        elif out:
            out[min(i, len(out) - 1)] = rnd.choice(VOCAB)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_hunks_equal_git_diff(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    env = git_env(tmp_path)
    for _ in range(60):
        a = [rnd.choice(VOCAB) for _ in range(rnd.randint(0, 80))]
        b = _mutate(rnd, a)
        old = b"\n".join(a) + (b"\n" if a and rnd.random() < 0.8 else b"")
        new = b"\n".join(b) + (b"\n" if b and rnd.random() < 0.8 else b"")
        (tmp_path / "a").write_bytes(old)
        (tmp_path / "b").write_bytes(new)
        out = git("diff", "--no-index", "a", "b", cwd=tmp_path, env=env, check=False).stdout
        expected = b"@@" + out.split(b"\n@@", 1)[1] if b"\n@@" in out else b""
        assert b"".join(text_diff(old, new)[0]) == expected, (old, new)


def _store_from_git(repo: Path, path: Path, env: dict[str, str]) -> RepoStore:
    out = git("cat-file", "--batch-all-objects", "--batch", cwd=repo, env=env).stdout
    objects = []
    pos = 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        _, kind, size = out[pos:nl].split()
        data = out[nl + 1 : nl + 1 + int(size)]
        pos = nl + 2 + int(size)
        objects.append((ObjType.from_name(kind), data))
    objects.sort(key=lambda o: {ObjType.BLOB: 0, ObjType.TREE: 1, ObjType.COMMIT: 2, ObjType.TAG: 3}[o[0]])
    store = RepoStore.create(path)
    store.write_objects(objects)
    return store


def test_tree_diff_equals_git_diff(tmp_path: Path) -> None:
    env = git_env(tmp_path)
    r = tmp_path / "r"
    git("init", "-q", "-b", "main", r, env=env)
    rnd = random.Random(5)
    words = [f"line {i} " + "x" * rnd.randint(0, 30) for i in range(200)]
    files = {
        "keep.txt": "\n".join(words[:50]) + "\n",
        "old name.txt": "\n".join(words[50:120]) + "\n",
        "gone.txt": "bye\nbye\n",
        "dir/a.py": "def f():\n    return 1\n\n\ndef g():\n    return 2\n",
        "exact.txt": "same content\n",
        "tchange": "target\n",
        "mode.sh": "echo hi\n",
        "dir/moved.c": "int main() {\n  return 0;\n}\n" * 5,
        "similar/one.txt": "\n".join(words[120:160]) + "\n",
    }
    for name, text in files.items():
        (r / name).parent.mkdir(parents=True, exist_ok=True)
        (r / name).write_text(text)
    (r / "bin.dat").write_bytes(bytes(range(256)) * 4)
    git("add", "-A", cwd=r, env=env)
    git("commit", "-q", "-m", "one", cwd=r, env=env)
    (r / "keep.txt").write_text("\n".join([*words[:20], "changed", *words[21:50]]))
    os.rename(r / "old name.txt", r / "new näme.txt")
    with open(r / "new näme.txt", "a") as f:
        f.write("extra line\n")
    (r / "bin.dat").write_bytes(bytes(range(256)) * 4 + b"\0more")
    os.remove(r / "gone.txt")
    (r / "dir/a.py").write_text(
        "def f():\n    return 1\n\n\ndef h():\n    return 3\n\n\ndef g():\n    return 2\n"
    )
    (r / "sub").mkdir()
    os.rename(r / "exact.txt", r / "sub/exact.txt")
    os.remove(r / "tchange")
    os.symlink("target", r / "tchange")
    os.chmod(r / "mode.sh", 0o755)
    (r / "other").mkdir()
    os.rename(r / "dir/moved.c", r / "other/moved.c")
    os.rename(r / "similar/one.txt", r / "similar/two.txt")
    (r / "similar/two.txt").write_text("\n".join(words[120:135] + words[140:160]) + "\n")
    (r / "newbin").write_bytes(b"\0\1\2")
    (r / "empty").write_text("")
    git("add", "-A", cwd=r, env=env)
    git("commit", "-q", "-m", "two", cwd=r, env=env)
    store = _store_from_git(r, tmp_path / "s.sqlite", env)
    with store:
        old = resolve_treeish(store, git_out("rev-parse", "HEAD~1", cwd=r, env=env).strip())
        new = resolve_treeish(store, git_out("rev-parse", "HEAD", cwd=r, env=env).strip())
        for prefix in ["", "dir", "similar", "sub/exact.txt"]:
            expected = git(
                "diff", "HEAD~1", "HEAD", *(["--", prefix] if prefix else []), cwd=r, env=env
            ).stdout
            assert b"".join(f.patch for f in diff_trees(store, old, new, prefix)) == expected, prefix
