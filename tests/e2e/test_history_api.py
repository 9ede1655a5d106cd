"""The read, time-travel and write API against a real server, checked with the real git CLI.

The agent-session test pushes every few hundred milliseconds (git pushes and API
commits mixed), then reads the past back through ``main@{T}`` and compares the server's
patches with what ``git diff`` prints for the same commits. The other tests check each
route's answers against git (log, ls-tree, ls-remote) and every error case's status and
SPEC error shape.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, git, git_env, git_out

PREFIX = "/api/v1/namespaces/hist/repos"
WORDS = [f"line {i}: {'lorem ipsum dolor sit amet ' * (1 + i % 3)}" for i in range(120)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _client(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def _api_commit(c: httpx.Client, name: str, parent: str | None, message: str, files: list[dict]) -> dict:
    resp = c.post(
        f"{PREFIX}/{name}/commits",
        json={
            "branch": "main",
            "parent": parent,
            "message": message,
            "author": {"name": "Agent", "email": "agent@example.com"},
            "files": files,
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _git_commit_push(work: Path, env: dict[str, str], message: str) -> str:
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", message, cwd=work, env=env)
    git("push", "-q", "origin", "HEAD:main", cwd=work, env=env)
    return git_out("rev-parse", "HEAD", cwd=work, env=env).strip()


def _sync(work: Path, env: dict[str, str]) -> None:
    git("fetch", "-q", "origin", cwd=work, env=env)
    git("reset", "-q", "--hard", "origin/main", cwd=work, env=env)


def test_agent_session_time_travel(server: Server, tmp_path: Path) -> None:
    name = "session"
    _, token = server.create_repo("hist", name)
    env = git_env(server.home)
    work = tmp_path / "work"
    c = _client(server, token)
    with c:
        # 1: API commit creates the branch.
        first = _api_commit(
            c,
            name,
            None,
            "start",
            [
                {"path": "src/story.txt", "content_base64": _b64("\n".join(WORDS[:60]).encode() + b"\n")},
                {"path": "notes.md", "content_base64": _b64(b"# notes\n\nfirst\n")},
                {"path": "doomed.txt", "content_base64": _b64(b"to be deleted\n")},
            ],
        )
        git("clone", "-q", server.git_url("hist", name, token), work, env=env)
        steps: list[tuple[str, str]] = [(first["id"], _now())]
        time.sleep(0.2)
        # 2: git push: edit, rename with edit, binary file, file without final newline.
        (work / "src/story.txt").write_text("\n".join([*WORDS[:30], "a new line", *WORDS[31:60]]) + "\n")
        (work / "lib").mkdir()
        git("mv", "notes.md", "lib/notes.md", cwd=work, env=env)
        (work / "lib/notes.md").write_text("# notes\n\nfirst\nsecond\n")
        (work / "logo.bin").write_bytes(bytes(range(256)) * 8)
        (work / "tail.txt").write_text("no newline at the end")
        steps.append((_git_commit_push(work, env, "agent edit via git"), _now()))
        time.sleep(0.2)
        # 3: API commit: delete, change the binary, append to the no-newline file.
        third = _api_commit(
            c,
            name,
            steps[-1][0],
            "agent edit via api",
            [
                {"path": "doomed.txt", "delete": True},
                {"path": "logo.bin", "content_base64": _b64(bytes(range(256)) * 8 + b"\0tail")},
                {"path": "tail.txt", "content_base64": _b64(b"no newline at the end\nnow there is one\n")},
                {
                    "path": "src/story.txt",
                    "content_base64": _b64("\n".join(WORDS[:60] + WORDS[70:80]).encode()),
                },
            ],
        )
        steps.append((third["id"], _now()))
        time.sleep(0.2)
        # 4: git push again after syncing with the API commit; a second rename.
        _sync(work, env)
        git("mv", "src/story.txt", "src/saga.txt", cwd=work, env=env)
        with open(work / "src/saga.txt", "a") as f:
            f.write("\nthe end\n")
        steps.append((_git_commit_push(work, env, "rename story"), _now()))

        # raw at each instant returns what was there then
        expected_notes = [b"# notes\n\nfirst\n", None, None, None]
        for (commit, at), notes in zip(steps, expected_notes, strict=True):
            resp = c.get(f"{PREFIX}/{name}/raw", params={"rev": f"main@{{{at}}}", "path": "notes.md"})
            if notes is None:
                _error(resp, 404, "NOT_FOUND")
            else:
                assert resp.content == notes
            shown = git("show", f"{commit}:tail.txt", cwd=work, env=env, check=False)
            resp = c.get(f"{PREFIX}/{name}/raw", params={"rev": f"main@{{{at}}}", "path": "tail.txt"})
            if shown.returncode == 0:
                assert resp.status_code == 200 and resp.content == shown.stdout
                assert resp.headers["content-length"] == str(len(shown.stdout))
            else:
                _error(resp, 404, "NOT_FOUND")
        resp = c.get(f"{PREFIX}/{name}/raw", params={"rev": f"main@{{{steps[1][1]}}}", "path": "logo.bin"})
        assert resp.content == bytes(range(256)) * 8
        assert resp.headers["content-type"] == "application/octet-stream"

        # the patch between two instants is what git diff prints for those commits
        for i, j in [(0, 1), (1, 2), (0, 2), (2, 3), (0, 3)]:
            resp = c.get(
                f"{PREFIX}/{name}/diff",
                params={
                    "from": f"main@{{{steps[i][1]}}}",
                    "to": f"main@{{{steps[j][1]}}}",
                    "format": "patch",
                },
            )
            assert resp.status_code == 200, resp.text
            expected = git("diff", steps[i][0], steps[j][0], cwd=work, env=env).stdout
            assert resp.content == expected, (i, j)

        data = c.get(
            f"{PREFIX}/{name}/diff",
            params={"from": f"main@{{{steps[0][1]}}}", "to": f"main@{{{steps[2][1]}}}"},
        ).json()
        files = {f["path"]: f for f in data["files"]}
        assert files["lib/notes.md"]["status"] == "R" and files["lib/notes.md"]["old_path"] == "notes.md"
        assert files["doomed.txt"]["status"] == "D" and files["doomed.txt"]["deletions"] == 1
        assert files["logo.bin"]["status"] == "A" and files["logo.bin"]["binary"] is True
        assert files["src/story.txt"]["status"] == "M"
        numstat = git_out("diff", "--numstat", steps[0][0], steps[2][0], cwd=work, env=env)
        story = next(line for line in numstat.splitlines() if line.endswith("src/story.txt")).split("\t")
        assert (files["src/story.txt"]["additions"], files["src/story.txt"]["deletions"]) == (
            int(story[0]),
            int(story[1]),
        )
        assert (
            "".join(f["patch"] for f in data["files"]).encode()
            == git("diff", steps[0][0], steps[2][0], cwd=work, env=env).stdout
        )

        # path prefix limits the diff
        resp = c.get(
            f"{PREFIX}/{name}/diff",
            params={"from": steps[0][0], "to": "main", "path": "src", "format": "patch"},
        )
        assert resp.content == git("diff", steps[0][0], steps[3][0], "--", "src", cwd=work, env=env).stdout

        # the reflog tells who moved main, how and when, newest first
        log = c.get(f"{PREFIX}/{name}/reflog", params={"ref": "main"}).json()["items"]
        assert [e["new"] for e in log] == [s[0] for s in reversed(steps)]
        assert [e["via"] for e in log] == ["git", "api", "git", "api"]
        assert log[-1]["old"] == "0" * 40 and all(e["at"].endswith("Z") for e in log)


def _collision(count: int) -> tuple[list[bytes], str]:
    """Contents of ``count`` or more blobs two of which share a 4-digit id prefix."""
    seen: dict[str, int] = {}
    contents: list[bytes] = []
    i = 0
    while True:
        data = b"blob number %d\n" % i
        contents.append(data)
        oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if oid[:4] in seen and i >= count:
            return contents, oid[:4]
        seen.setdefault(oid[:4], i)
        i += 1


def test_log_tree_refs_and_restore(server: Server, tmp_path: Path) -> None:
    name = "logtree"
    _, token = server.create_repo("hist", name)
    env = git_env(server.home)
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work, env=env)
    for i in range(5):
        (work / "dir").mkdir(exist_ok=True)
        (work / f"dir/f{i % 2}.txt").write_text(f"version {i}\n")
        (work / "top.txt").write_text(f"top {i // 2}\n")
        git("add", "-A", cwd=work, env=env)
        git("commit", "-q", "-m", f"c{i}", f"--date=2026-01-0{i + 1}T00:00:00Z", cwd=work, env=env)
    git("tag", "-a", "v1.0", "-m", "release", "HEAD~2", cwd=work, env=env)
    git("push", "-q", server.git_url("hist", name, token), "main", "v1.0", cwd=work, env=env)
    with _client(server, token) as c:
        refs = c.get(f"{PREFIX}/{name}/refs").json()
        assert refs["head"] == "refs/heads/main"
        remote = git_out("ls-remote", server.git_url("hist", name, token), env=env)
        want = {
            n: o for o, n in (ln.split("\t") for ln in remote.splitlines()) if n != "HEAD" and "^{}" not in n
        }
        assert {r["name"]: r["target"] for r in refs["items"]} == want
        tag = next(r for r in refs["items"] if r["name"] == "refs/tags/v1.0")
        assert tag["peeled"] == git_out("rev-parse", "v1.0^{commit}", cwd=work, env=env).strip()

        # log: full, by path, paginated, from a tag with ~ and ^
        for rev, path in [
            ("main", ""),
            ("main", "top.txt"),
            ("main", "dir/f1.txt"),
            ("v1.0", "dir"),
            ("main~1^", ""),
        ]:
            got = c.get(f"{PREFIX}/{name}/commits", params={"rev": rev, "path": path}).json()["items"]
            args = ["log", "--format=%H", rev] + (["--", path] if path else [])
            assert [x["id"] for x in got] == git_out(*args, cwd=work, env=env).split(), (rev, path)
        ids: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = c.get(f"{PREFIX}/{name}/commits", params=params).json()
            ids += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert ids == git_out("log", "--format=%H", "main", cwd=work, env=env).split()
        head = c.get(f"{PREFIX}/{name}/commits", params={"rev": "main", "limit": "1"}).json()["items"][0]
        assert head["message"] == "c4\n" and head["author"]["date"] == "2026-01-05T00:00:00+00:00"

        # tree: like git ls-tree -r -t (with sizes), a subdirectory, a file
        entries = c.get(f"{PREFIX}/{name}/tree", params={"rev": "main", "recursive": "true"}).json()[
            "entries"
        ]
        lstree = git_out("ls-tree", "-r", "-t", "-l", "main", cwd=work, env=env).splitlines()
        expected = []
        for line in lstree:
            meta, path = line.split("\t")
            mode, kind, oid, size = meta.split()
            expected.append(
                {
                    "path": path,
                    "type": kind,
                    "mode": mode,
                    "oid": oid,
                    "size": None if size == "-" else int(size),
                }
            )
        assert entries == expected
        sub = c.get(f"{PREFIX}/{name}/tree", params={"rev": "v1.0", "path": "dir"}).json()["entries"]
        assert [e["path"] for e in sub] == ["dir/f0.txt", "dir/f1.txt"]

        # restore main to where it was before the last push's last two commits
        old_tip = want["refs/heads/main"]
        resp = c.post(f"{PREFIX}/{name}/restore", json={"ref": "main", "to": "main~2"})
        assert resp.status_code == 200, resp.text
        target = git_out("rev-parse", "main~2", cwd=work, env=env).strip()
        assert resp.json()["new"] == target and resp.json()["old"] == old_tip
        log = c.get(f"{PREFIX}/{name}/reflog", params={"ref": "refs/heads/main", "limit": "1"}).json()
        assert log["items"][0]["via"] == "restore" and log["next_cursor"] is not None
        clone = tmp_path / "clone"
        git("clone", "-q", server.git_url("hist", name, token), clone, env=env)
        assert git_out("rev-parse", "HEAD", cwd=clone, env=env).strip() == target
        # history is not rewritten: the old tip is still readable by id
        assert c.get(f"{PREFIX}/{name}/raw", params={"rev": old_tip, "path": "top.txt"}).content == b"top 2\n"


def test_error_cases(server: Server, tmp_path: Path) -> None:
    name = "errors"
    _, token = server.create_repo("hist", name)
    _, other_token = server.create_repo("hist", "errors-other")
    contents, prefix = _collision(40)
    status, mint = server.api("POST", f"/namespaces/hist/repos/{name}/tokens", {"scope": "read"})
    assert status == 201
    read_token = mint["token"]
    base = f"{PREFIX}/{name}"
    with _client(server, token) as c:
        before = _now()
        time.sleep(0.01)
        files = [{"path": f"many/{i}.txt", "content_base64": _b64(d)} for i, d in enumerate(contents)]
        first = _api_commit(c, name, None, "many blobs", files)
        # CONFLICT: stale parent, and "create" of an existing branch
        _error(
            c.post(
                f"{base}/commits",
                json={
                    "branch": "main",
                    "parent": None,
                    "message": "m",
                    "author": {"name": "a", "email": "e"},
                    "files": [],
                },
            ),
            409,
            "CONFLICT",
        )
        second = _api_commit(c, name, first["id"], "two", [{"path": "x.txt", "content_base64": _b64(b"x\n")}])
        _error(
            c.post(
                f"{base}/commits",
                json={
                    "branch": "main",
                    "parent": first["id"],
                    "message": "m",
                    "author": {"name": "a", "email": "e"},
                    "files": [],
                },
            ),
            409,
            "CONFLICT",
        )
        # INVALID_INPUT bodies
        for body in [
            {
                "branch": "main",
                "parent": second["id"],
                "message": "",
                "author": {"name": "a", "email": "e"},
                "files": [],
            },
            {"branch": "main", "parent": second["id"], "message": "m", "files": []},
            {
                "branch": "bad..name",
                "parent": None,
                "message": "m",
                "author": {"name": "a", "email": "e"},
                "files": [],
            },
            {
                "branch": "main",
                "parent": second["id"],
                "message": "m",
                "author": {"name": "a", "email": "e"},
                "files": [{"path": "../up", "content_base64": ""}],
            },
            {
                "branch": "main",
                "parent": second["id"],
                "message": "m",
                "author": {"name": "a", "email": "e"},
                "files": [{"path": "nope.txt", "delete": True}],
            },
            {
                "branch": "main",
                "parent": second["id"],
                "message": "m",
                "author": {"name": "a", "email": "e"},
                "files": [{"path": "y", "content_base64": "***"}],
            },
        ]:
            _error(c.post(f"{base}/commits", json=body), 400, "INVALID_INPUT")
        # revisions
        for rev in ["main~x", "main@{yesterday}", "ma..in", "~1", "main@{2026-13-45T00:00:00Z}"]:
            _error(c.get(f"{base}/raw", params={"rev": rev, "path": "x.txt"}), 400, "INVALID_INPUT")
        assert "ambiguous" in _error(c.get(f"{base}/tree", params={"rev": prefix}), 400, "INVALID_INPUT")
        _error(c.get(f"{base}/commits", params={"rev": "nosuchbranch"}), 404, "NOT_FOUND")
        _error(c.get(f"{base}/commits", params={"rev": "main~5"}), 404, "NOT_FOUND")
        msg = _error(c.get(f"{base}/tree", params={"rev": f"main@{{{before}}}"}), 404, "NOT_FOUND")
        assert "did not exist" in msg
        _error(c.get(f"{base}/raw", params={"rev": "main", "path": "missing.txt"}), 404, "NOT_FOUND")
        _error(c.get(f"{base}/raw", params={"rev": "main", "path": "many"}), 404, "NOT_FOUND")
        _error(c.get(f"{base}/tree", params={"rev": "main", "path": "many/none"}), 404, "NOT_FOUND")
        _error(c.get(f"{base}/diff", params={"from": "main", "to": "nosuch"}), 404, "NOT_FOUND")
        _error(c.get(f"{base}/diff", params={"from": "main"}), 400, "INVALID_INPUT")
        _error(
            c.get(f"{base}/diff", params={"from": "main", "to": "main", "format": "html"}),
            400,
            "INVALID_INPUT",
        )
        _error(c.get(f"{base}/commits", params={"limit": "0"}), 400, "INVALID_INPUT")
        _error(c.get(f"{base}/commits", params={"cursor": "!!"}), 400, "INVALID_INPUT")
        _error(c.get(f"{base}/reflog", params={"since": "noon"}), 400, "INVALID_INPUT")
        _error(c.get(f"{base}/reflog", params={"ref": "nosuch"}), 404, "NOT_FOUND")
        _error(c.post(f"{base}/restore", json={"ref": "main", "to": "nosuch"}), 404, "NOT_FOUND")
        _error(c.post(f"{base}/restore", json={"ref": "main"}), 400, "INVALID_INPUT")
        # a deleted branch: its past is readable, the instant after deletion is not
        _api_commit_branch = c.post(
            f"{base}/commits",
            json={"branch": "tmp", "message": "t", "author": {"name": "a", "email": "e"}, "files": []},
        )
        assert _api_commit_branch.status_code == 201
        alive = _now()
        time.sleep(0.01)
        work = tmp_path / "w"
        env = git_env(server.home)
        git("init", "-q", work, env=env)
        git("push", "-q", server.git_url("hist", name, token), ":refs/heads/tmp", cwd=work, env=env)
        assert c.get(f"{base}/tree", params={"rev": f"tmp@{{{alive}}}"}).status_code == 200
        assert "deleted" in _error(
            c.get(f"{base}/tree", params={"rev": f"tmp@{{{_now()}}}"}), 404, "NOT_FOUND"
        )
    # auth: no token 401, read token cannot write, another repo's token is refused
    with _client(server, None) as anon:
        resp = anon.get(f"{base}/refs")
        _error(resp, 401, "UNAUTHORIZED")
        assert resp.headers["www-authenticate"].startswith("Basic")
    with _client(server, read_token) as reader:
        assert reader.get(f"{base}/diff", params={"from": "main~1", "to": "main"}).status_code == 200
        _error(reader.post(f"{base}/commits", json={"branch": "main"}), 403, "FORBIDDEN")
        _error(reader.post(f"{base}/restore", json={"ref": "main", "to": "main~1"}), 403, "FORBIDDEN")
    with _client(server, other_token) as stranger:
        _error(stranger.get(f"{base}/raw", params={"path": "x.txt"}), 403, "FORBIDDEN")


@pytest.mark.parametrize("visibility", [True])
def test_public_repo_is_readable_anonymously(server: Server, visibility: bool) -> None:
    _, token = server.create_repo("hist", "public1", public=visibility)
    with _client(server, token) as c:
        _api_commit(c, "public1", None, "hello", [{"path": "README", "content_base64": _b64(b"hi\n")}])
    with _client(server, None) as anon:
        assert anon.get(f"{PREFIX}/public1/raw", params={"path": "README"}).content == b"hi\n"
        _error(
            anon.post(f"{PREFIX}/public1/restore", json={"ref": "main", "to": "main"}), 401, "UNAUTHORIZED"
        )
