"""The client matrix over HTTPS: every real client x every operation it supports.

One TLS server (trustme certificates) serves the whole module; one tiny deterministic
source repository (tests/e2e/clients/source.py) is the reference. Each cell runs one
operation with one client and then inspects what the client left with the git CLI:
refs, the commit set, the shallow boundary, which objects a partial clone lacks, and
``git fsck``; pushes are checked by reading the server back (``ls-remote`` compared with
the source's, a mirror clone's objects, fsck). Exit codes alone prove nothing here.

Which client supports which operation is ``SUPPORT`` below; docs/clients.md is the same
table with the reason for every empty cell (a test keeps the two in step). The cells of
one client run in a few threads: they are independent, each with its own directories and,
when it pushes, its own server repository.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.clients.drivers import (
    ClientFailed,
    CloneOptions,
    DulwichClient,
    GitCli,
    IsoGitClient,
    Pygit2Client,
    Remote,
)
from tests.e2e.clients.source import Source, build_source
from tests.helpers import ROOT, Server, git, git_env, git_out, run_server

ISOGIT_VERSION = "1.44.19"

OPS = (
    "full clone",
    "shallow by depth",
    "shallow by date",
    "shallow-exclude",
    "deepen",
    "unshallow",
    "partial blob:none + lazy checkout",
    "partial blob:limit",
    "partial tree:0",
    "incremental fetch",
    "push",
    "force push",
    "delete",
    "tags",
)
_ALL = frozenset(OPS)
_WRITES = frozenset({"push", "force push", "delete", "tags"})
SUPPORT: dict[str, frozenset[str]] = {
    "git-v0": _ALL,
    "git-v1": _ALL,
    "git-v2": _ALL,
    "git-v2-h2": _ALL,
    "pygit2": frozenset(
        {"full clone", "shallow by depth", "deepen", "unshallow", "incremental fetch"} | _WRITES
    ),
    "isomorphic-git": frozenset(
        {
            "full clone",
            "shallow by depth",
            "shallow by date",
            "shallow-exclude",
            "deepen",
            "unshallow",
            "incremental fetch",
        }
        | _WRITES
    ),
    "dulwich": _ALL,
}
# Clients whose partial clone can fetch missing objects later (a promisor remote)
LAZY = frozenset({"git-v0", "git-v1", "git-v2", "git-v2-h2"})


# -- fixtures -----------------------------------------------------------------------------


@dataclass
class Matrix:
    server: Server
    source: Source
    ca: Path
    env: dict[str, str]  # git CLI for checks: trusts the test CA
    src: Remote  # the source, pushed once, read by every fetch cell
    node_modules: Path | None
    _names: Iterator[int]

    def api(self, method: str, path: str, body: object) -> dict:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        req = urllib.request.Request(
            self.server.base_url + "/api/v1" + path, data=json.dumps(body).encode(), method=method
        )
        req.add_header("Authorization", f"Bearer {self.server.admin_token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60, context=ctx) as resp:
            result: dict = json.loads(resp.read())
            return result

    def new_remote(self) -> Remote:
        name = f"r{next(self._names)}"
        token = self.api("POST", "/namespaces/matrix/repos", {"name": name})["token"]
        return Remote(f"{self.server.base_url}/git/matrix/{name}.git", token)

    def seed(self, remote: Remote, *refspecs: str) -> None:
        git("push", "-q", remote.url_with_token, *refspecs, cwd=self.source.bare, env=self.env)

    def client(self, name: str) -> object:
        home = self.server.home
        if name.startswith("git-"):
            return GitCli(int(name[5]), home, self.ca, http2=name.endswith("-h2"))
        if name == "pygit2":
            return Pygit2Client(self.ca)
        if name == "dulwich":
            return DulwichClient(self.ca)
        assert self.node_modules is not None
        return IsoGitClient(self.node_modules, self.ca)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitserver-tests"


def _isogit_modules() -> Path:
    """isomorphic-git installed with npm into a cache dir (once; later runs reuse it)."""
    prefix = _cache_dir() / f"isomorphic-git-{ISOGIT_VERSION}"
    modules = prefix / "node_modules"
    if not (modules / "isomorphic-git" / "package.json").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"isomorphic-git@{ISOGIT_VERSION}",
            ],
            cwd=prefix,
            capture_output=True,
            timeout=300,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm install isomorphic-git failed: {proc.stderr.decode(errors='replace')}")
    return modules


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    import trustme

    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(tmp / "cert.pem"), append=True)
    return tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path, Path]) -> Iterator[Matrix]:
    ca, cert, key = tls_files
    source = build_source(tmp_path_factory.mktemp("source"))
    tmp = tmp_path_factory.mktemp("tls-server")
    with run_server(tmp, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        assert server.base_url.startswith("https://")
        env = git_env(server.home, GIT_SSL_CAINFO=str(ca))
        m = Matrix(server, source, ca, env, Remote("", ""), None, itertools.count())
        m.src = m.new_remote()
        git("push", "-q", "--mirror", m.src.url_with_token, cwd=source.bare, env=env)
        yield m


# -- inspection (git CLI on what a client left) --------------------------------------------


def _git(m: Matrix, dest: Path, *args: str, input: bytes | None = None) -> str:
    return git(*args, cwd=dest, env=m.env, input=input).stdout.decode()


def _refs(m: Matrix, dest: Path) -> dict[str, str]:
    """Branches as the client tracks them (``refs/remotes/origin/X`` or, in a mirror,
    ``refs/heads/X``) under ``refs/heads/X``, plus ``refs/tags/*``."""
    out = _git(m, dest, "for-each-ref", "--format=%(objectname) %(refname)")
    refs = {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}
    remote = {f"refs/heads/{n[20:]}": o for n, o in refs.items() if n.startswith("refs/remotes/origin/")}
    remote.pop("refs/heads/HEAD", None)
    heads = remote or {n: o for n, o in refs.items() if n.startswith("refs/heads/")}
    return heads | {n: o for n, o in refs.items() if n.startswith("refs/tags/")}


def _tip(m: Matrix, dest: Path, branch: str = "main") -> str:
    return _refs(m, dest)[f"refs/heads/{branch}"]


def _commits(m: Matrix, dest: Path, rev: str) -> set[str]:
    return set(_git(m, dest, "rev-list", rev).split())


def _shallow(m: Matrix, dest: Path) -> set[str]:
    path = Path(_git(m, dest, "rev-parse", "--git-path", "shallow").strip())
    path = path if path.is_absolute() else dest / path
    return set(path.read_text().split()) if path.exists() else set()


def _objects(m: Matrix, dest: Path) -> set[str]:
    out = _git(m, dest, "rev-list", "--objects", "--all")
    return {line.split(" ", 1)[0] for line in out.splitlines()}


def _missing(m: Matrix, dest: Path) -> tuple[set[str], set[str]]:
    """(present, missing) objects reachable from every ref, without lazy fetches."""
    out = _git(m, dest, "rev-list", "--objects", "--all", "--missing=print")
    lines = out.splitlines()
    return {ln.split(" ", 1)[0] for ln in lines if not ln.startswith("?")}, {
        ln[1:] for ln in lines if ln.startswith("?")
    }


def _fsck(m: Matrix, dest: Path) -> None:
    _git(m, dest, "fsck", "--no-dangling")


def _server_view(m: Matrix, remote: Remote, tmp: Path) -> tuple[str, Path]:
    """What the server now holds: ``ls-remote`` output and a fresh mirror clone."""
    listing = git_out("ls-remote", remote.url_with_token, env=m.env)
    mirror = tmp / "server-view.git"
    shutil.rmtree(mirror, ignore_errors=True)
    git("clone", "-q", "--mirror", remote.url_with_token, mirror, env=m.env)
    _fsck(m, mirror)
    return listing, mirror


def _local_work(m: Matrix, tmp: Path) -> Path:
    """A plain local clone of the source with branches main and topic, for pushing."""
    local = tmp / "local"
    git("clone", "-q", m.source.bare, local, env=m.env)
    git("branch", "topic", "origin/topic", cwd=local, env=m.env)
    return local


def _check_shallow(m: Matrix, dest: Path, expected: set[str]) -> None:
    """main's history in ``dest`` is exactly ``expected``; its bottom is the shallow boundary."""
    src = m.source
    assert _tip(m, dest) == src.rev("main")
    assert _commits(m, dest, _tip(m, dest)) == expected
    bottom = {c for c in expected if set(_git_parents(m, c)) - expected}
    assert _shallow(m, dest) & expected == bottom
    _fsck(m, dest)


def _git_parents(m: Matrix, commit: str) -> list[str]:
    out = git_out("rev-list", "--parents", "-n1", commit, cwd=m.source.bare, env=m.env).split()
    return out[1:]


# -- cells ---------------------------------------------------------------------------------

Cell = Callable[[Matrix, object, str, Path], None]


def full_clone(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(mirror=name.startswith("git-")))  # type: ignore[attr-defined]
    expected = {n: o for n, o in m.source.refs().items()}
    assert _refs(m, dest) == expected
    assert _objects(m, dest) == set(m.source.objects())
    _fsck(m, dest)


def shallow_depth(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(depth=2, branch="main"))  # type: ignore[attr-defined]
    _check_shallow(m, dest, m.source.rev_list("--max-count=2", "main"))


def shallow_since(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    since = m.source.time_of("main~2")
    c.clone(m.src, dest, CloneOptions(since=since, branch="main"))  # type: ignore[attr-defined]
    _check_shallow(m, dest, m.source.rev_list(f"--max-age={since}", "main"))


def shallow_exclude(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(exclude=("topic",), branch="main"))  # type: ignore[attr-defined]
    _check_shallow(m, dest, m.source.rev_list("main", "^topic"))


def deepen(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(depth=1, branch="main"))  # type: ignore[attr-defined]
    _check_shallow(m, dest, {m.source.rev("main")})
    c.fetch(dest, deepen=2, depth=3)  # type: ignore[attr-defined]
    _check_shallow(m, dest, m.source.rev_list("--max-count=3", "main"))


def unshallow(m: Matrix, c: object, name: str, tmp: Path) -> None:
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(depth=1, branch="main"))  # type: ignore[attr-defined]
    c.fetch(dest, unshallow=True)  # type: ignore[attr-defined]
    assert _commits(m, dest, _tip(m, dest)) == m.source.rev_list("main")
    assert not _shallow(m, dest) & m.source.rev_list("main")
    assert set(m.source.objects("main")) <= _objects(m, dest)
    _fsck(m, dest)


def _partial(
    m: Matrix, c: object, name: str, tmp: Path, spec: str, lacks: Callable[[str, int], bool]
) -> None:
    """Clone with filter ``spec``: exactly the objects ``lacks(type, size)`` are left out
    (``--missing=print`` shows those the client can name: under ``tree:0`` only the root
    trees, since what they hold is unknown); then a checkout fetches what it needs."""
    dest = tmp / "clone"
    c.clone(m.src, dest, CloneOptions(filter=spec, no_checkout=True))  # type: ignore[attr-defined]
    src_objects = m.source.objects()
    sizes = m.source.blob_sizes()
    left_out = {o for o, kind in src_objects.items() if lacks(kind, sizes.get(o, 0))}
    assert left_out, "the source must give the filter something to omit"
    assert _refs(m, dest) == m.source.refs()
    present, missing = _missing(m, dest)
    assert missing <= left_out
    if spec == "tree:0":
        commits = m.source.rev_list("--all")
        assert missing == {m.source.rev(f"{c}^{{tree}}") for c in commits}
    else:
        assert missing == left_out
    assert present == set(src_objects) - left_out
    if name not in LAZY:
        return
    _fsck(m, dest)
    c.checkout(dest, "main")  # type: ignore[attr-defined]
    for path in ("big.bin", "src/a.txt", "README"):
        want = git("cat-file", "blob", f"main:{path}", cwd=m.source.bare, env=m.env).stdout
        assert (dest / path).read_bytes() == want, path
    assert _git(m, dest, "status", "--porcelain") == ""
    assert _missing(m, dest)[1] < missing  # the checkout fetched what it needed, no more
    _fsck(m, dest)


def partial_blob_none(m: Matrix, c: object, name: str, tmp: Path) -> None:
    _partial(m, c, name, tmp, "blob:none", lambda kind, size: kind == "blob")


def partial_blob_limit(m: Matrix, c: object, name: str, tmp: Path) -> None:
    _partial(m, c, name, tmp, "blob:limit=1k", lambda kind, size: kind == "blob" and size > 1024)


def partial_tree_0(m: Matrix, c: object, name: str, tmp: Path) -> None:
    _partial(m, c, name, tmp, "tree:0", lambda kind, size: kind in ("tree", "blob"))


def incremental_fetch(m: Matrix, c: object, name: str, tmp: Path) -> None:
    remote = m.new_remote()
    m.seed(remote, "main~3:refs/heads/main")
    dest = tmp / "clone"
    c.clone(remote, dest, CloneOptions())  # type: ignore[attr-defined]
    assert _tip(m, dest) == m.source.rev("main~3")
    m.seed(remote, "main:refs/heads/main", "topic:refs/heads/topic", "refs/tags/*:refs/tags/*")
    c.fetch(dest)  # type: ignore[attr-defined]
    got = _refs(m, dest)
    src = m.source.refs()
    assert {n: o for n, o in got.items() if n.startswith("refs/heads/")} == {
        n: o for n, o in src.items() if n.startswith("refs/heads/")
    }
    assert {n: o for n, o in got.items() if n.startswith("refs/tags/")}.items() <= src.items()
    assert set(m.source.objects("main", "topic")) <= _objects(m, dest)
    _fsck(m, dest)


def _ls_remote_source(m: Matrix, *names: str) -> str:
    """The ``ls-remote`` the server must show after ``names`` were pushed."""
    listing = git_out("ls-remote", m.source.bare, env=m.env)
    keep = [
        line
        for line in listing.splitlines()
        if line.split("\t")[1] == "HEAD" or line.split("\t")[1].removesuffix("^{}") in names
    ]
    return "".join(line + "\n" for line in keep)


def push(m: Matrix, c: object, name: str, tmp: Path) -> None:
    remote = m.new_remote()
    local = _local_work(m, tmp)
    c.push(local, remote, ["refs/heads/main:refs/heads/main", "refs/heads/topic:refs/heads/topic"])  # type: ignore[attr-defined]
    listing, mirror = _server_view(m, remote, tmp)
    assert listing == _ls_remote_source(m, "refs/heads/main", "refs/heads/topic")
    assert _objects(m, mirror) == set(m.source.objects("main", "topic"))


def force_push(m: Matrix, c: object, name: str, tmp: Path) -> None:
    remote = m.new_remote()
    local = _local_work(m, tmp)
    c.push(local, remote, ["refs/heads/main:refs/heads/main"])  # type: ignore[attr-defined]
    git("reset", "-q", "--hard", "HEAD~2", cwd=local, env=m.env)
    (local / "rewritten.txt").write_text(f"rewritten by {name}\n")
    git("add", "rewritten.txt", cwd=local, env=m.env)
    git("commit", "-q", "-m", "rewrite", cwd=local, env=m.env)
    new = git_out("rev-parse", "HEAD", cwd=local, env=m.env).strip()
    c.push(local, remote, ["+refs/heads/main:refs/heads/main"])  # type: ignore[attr-defined]
    listing, mirror = _server_view(m, remote, tmp)
    assert listing == f"{new}\tHEAD\n{new}\trefs/heads/main\n"
    assert _objects(m, mirror) == _objects(m, local) - set(m.source.objects()) | set(
        m.source.objects("main~2")
    )


def delete(m: Matrix, c: object, name: str, tmp: Path) -> None:
    remote = m.new_remote()
    local = _local_work(m, tmp)
    c.push(local, remote, ["refs/heads/main:refs/heads/main", "refs/heads/topic:refs/heads/topic"])  # type: ignore[attr-defined]
    c.push(local, remote, [":refs/heads/topic"])  # type: ignore[attr-defined]
    listing, mirror = _server_view(m, remote, tmp)
    assert listing == _ls_remote_source(m, "refs/heads/main")
    assert _objects(m, mirror) == set(m.source.objects("main"))


def tags(m: Matrix, c: object, name: str, tmp: Path) -> None:
    remote = m.new_remote()
    local = _local_work(m, tmp)
    names = ["refs/heads/main", "refs/heads/topic", "refs/tags/v0.1", "refs/tags/v1.0", "refs/tags/topic-1"]
    c.push(local, remote, [f"{n}:{n}" for n in names])  # type: ignore[attr-defined]
    listing, _ = _server_view(m, remote, tmp)
    assert listing == _ls_remote_source(m, *names)  # annotated tags peeled (^{})
    # and the client reads them back
    dest = tmp / "clone"
    c.clone(remote, dest, CloneOptions())  # type: ignore[attr-defined]
    assert _refs(m, dest) == m.source.refs()
    if name.startswith("git-"):
        # include-tag (v0/v1) / tag following (v2): only tags whose target comes along
        single = tmp / "single"
        c.clone(remote, single, CloneOptions(branch="main"))  # type: ignore[attr-defined]
        main_tags = {n: o for n, o in m.source.refs().items() if n in ("refs/tags/v0.1", "refs/tags/v1.0")}
        assert {n: o for n, o in _refs(m, single).items() if n.startswith("refs/tags/")} == main_tags
        _fsck(m, single)


CELLS: dict[str, Cell] = {
    "full clone": full_clone,
    "shallow by depth": shallow_depth,
    "shallow by date": shallow_since,
    "shallow-exclude": shallow_exclude,
    "deepen": deepen,
    "unshallow": unshallow,
    "partial blob:none + lazy checkout": partial_blob_none,
    "partial blob:limit": partial_blob_limit,
    "partial tree:0": partial_tree_0,
    "incremental fetch": incremental_fetch,
    "push": push,
    "force push": force_push,
    "delete": delete,
    "tags": tags,
}


def _run_cell(m: Matrix, client: object, name: str, op: str, tmp: Path) -> str | None:
    cell_tmp = tmp / op.replace(" ", "_").replace(":", "_").replace("+", "")
    cell_tmp.mkdir()
    start = time.monotonic()
    try:
        CELLS[op](m, client, name, cell_tmp)
    except (AssertionError, ClientFailed) as exc:
        return f"[{name} x {op}] {type(exc).__name__}: {str(exc)[:2000]}"
    except Exception as exc:
        return f"[{name} x {op}] unexpected {type(exc).__name__}: {exc!r}"[:2000]
    finally:
        elapsed = time.monotonic() - start
        if elapsed > 10:
            print(f"slow cell {name} x {op}: {elapsed:.1f}s")
    return None


@pytest.mark.parametrize("client_name", list(SUPPORT))
def test_client_matrix(matrix: Matrix, client_name: str, tmp_path: Path) -> None:
    if client_name == "isomorphic-git" and matrix.node_modules is None:
        matrix.node_modules = _isogit_modules()
    client = matrix.client(client_name)
    ops = [op for op in OPS if op in SUPPORT[client_name]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        failures = [
            f for f in pool.map(lambda op: _run_cell(matrix, client, client_name, op, tmp_path), ops) if f
        ]
    assert not failures, "\n\n".join(failures)


def test_docs_table_matches_the_matrix() -> None:
    """docs/clients.md shows the same support table the matrix runs."""
    text = (ROOT / "docs" / "clients.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(SUPPORT) + 1 and cells[0] in OPS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(OPS)
    for op, marks in rows.items():
        for client_name, mark in zip(SUPPORT, marks, strict=True):
            supported = op in SUPPORT[client_name]
            assert mark.startswith("yes") == supported, (op, client_name, mark)


# -- what a git user sees on the terminal ---------------------------------------------------


def test_clone_progress_lines_and_quiet(matrix: Matrix, tmp_path: Path) -> None:
    """``git clone --progress`` shows the server's progress; ``--quiet`` sends no-progress."""
    loud = git("clone", "--progress", matrix.src.url_with_token, tmp_path / "loud", env=matrix.env)
    lines = loud.stderr.decode().replace("\r", "\n").splitlines()
    n = len(matrix.source.objects())
    assert f"remote: Enumerating objects: {n}, done." in [ln.strip() for ln in lines]
    assert any(ln.strip() == f"remote: Counting objects: 100% ({n}/{n}), done." for ln in lines)
    assert any(ln.startswith(f"remote: Total {n} (delta ") and "reused" in ln for ln in lines)
    quiet = git("clone", "--quiet", matrix.src.url_with_token, tmp_path / "quiet", env=matrix.env)
    assert b"remote:" not in quiet.stderr
    assert _refs(matrix, tmp_path / "quiet") == _refs(matrix, tmp_path / "loud") == matrix.source.refs()


def test_push_shows_server_side_progress(matrix: Matrix, history_repo: Path, tmp_path: Path) -> None:
    """A push with deltas, streamed chunked, shows the server resolving them, as git's own
    receive-pack does; ``--quiet`` silences it."""
    remote = matrix.new_remote()
    # a small post buffer makes git stream the pack with HTTP/1.1 chunked encoding
    env = {**matrix.env, "GIT_TRACE_CURL": str(tmp_path / "curl.trace"), "GIT_TRACE_CURL_NO_DATA": "1"}
    cfg = ["-c", "http.postBuffer=65536", "-c", "http.version=HTTP/1.1"]
    proc = git(*cfg, "push", "--progress", remote.url_with_token, "main", cwd=history_repo, env=env)
    assert "Transfer-Encoding: chunked" in (tmp_path / "curl.trace").read_text(errors="replace")
    lines = [ln.strip() for ln in proc.stderr.decode().replace("\r", "\n").splitlines()]
    done = [ln for ln in lines if ln.startswith("remote: Resolving deltas: 100% (") and ln.endswith("done.")]
    assert done, lines[-20:]
    assert (
        git_out("ls-remote", remote.url_with_token, "refs/heads/main", env=matrix.env).split()[0]
        == git_out("rev-parse", "main", cwd=history_repo, env=matrix.env).strip()
    )
    quiet = git("push", "--quiet", remote.url_with_token, "main:other", cwd=history_repo, env=matrix.env)
    assert b"remote:" not in quiet.stderr


def test_http2_clone_over_tls(matrix: Matrix, tmp_path: Path) -> None:
    """``git -c http.version=HTTP/2 clone https://...`` negotiates h2 by ALPN and works."""
    env = {**matrix.env, "GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"}
    proc = git("-c", "http.version=HTTP/2", "clone", matrix.src.url_with_token, tmp_path / "h2", env=env)
    trace = proc.stderr.decode(errors="replace")
    assert "ALPN: server accepted h2" in trace or "ALPN, server accepted to use h2" in trace
    assert "POST /git/matrix/r0.git/git-upload-pack HTTP/2" in trace
    assert _refs(matrix, tmp_path / "h2") == matrix.source.refs()
    _fsck(matrix, tmp_path / "h2")


@pytest.mark.parametrize("version", ["0", "2"])
def test_unreachable_objects_are_never_served(matrix: Matrix, tmp_path: Path, version: str) -> None:
    """After a force push the old tip is unreachable: fetching it by id is refused, while
    a reachable non-tip object may be fetched by id (allow-reachable-sha1-in-want)."""
    remote = matrix.new_remote()
    matrix.seed(remote, "main:refs/heads/main")
    matrix.seed(remote, "+main~2:refs/heads/main")
    cfg = ["-c", f"protocol.version={version}"]
    work = tmp_path / "work"
    git(*cfg, "clone", "-q", "--bare", remote.url_with_token, work, env=matrix.env)
    gone = matrix.source.rev("main")
    proc = git(*cfg, "fetch", "origin", gone, cwd=work, env=matrix.env, check=False)
    assert proc.returncode != 0
    assert b"not our ref" in proc.stderr
    assert git(*cfg, "cat-file", "-e", gone, cwd=work, env=matrix.env, check=False).returncode != 0
    reachable = matrix.source.rev("main~3")
    git(*cfg, "fetch", "-q", remote.url_with_token, reachable, cwd=work, env=matrix.env)
    assert git_out("rev-parse", "FETCH_HEAD", cwd=work, env=matrix.env).strip() == reachable


def test_server_and_push_options_are_accepted(matrix: Matrix, tmp_path: Path) -> None:
    """``fetch --server-option`` (v2) and ``push -o`` (push-options) are taken and ignored."""
    remote = matrix.new_remote()
    local = _local_work(matrix, tmp_path)
    git(
        "push",
        "-q",
        "-o",
        "ci.skip",
        "-o",
        "note=x y",
        remote.url_with_token,
        "main",
        cwd=local,
        env=matrix.env,
    )
    clone = tmp_path / "clone"
    git(
        "-c",
        "protocol.version=2",
        "clone",
        "-q",
        "--server-option=trace",
        remote.url_with_token,
        clone,
        env=matrix.env,
    )
    git("-c", "protocol.version=2", "fetch", "-q", "-o", "a=b", "origin", cwd=clone, env=matrix.env)
    assert _tip(matrix, clone) == matrix.source.rev("main")


@pytest.mark.parametrize("version", ["0", "2"])
def test_tree_depth_filter_and_unsupported_filter(matrix: Matrix, tmp_path: Path, version: str) -> None:
    """``tree:1`` keeps only root trees (what they name is left out, then fetched on
    checkout); a filter the server does not know is refused with a message git shows."""
    cfg = ["-c", f"protocol.version={version}"]
    dest = tmp_path / "tree1"
    git(
        *cfg,
        "clone",
        "-q",
        "--filter=tree:1",
        "--no-checkout",
        matrix.src.url_with_token,
        dest,
        env=matrix.env,
    )
    src = matrix.source
    roots = {src.rev(f"{c}^{{tree}}") for c in src.rev_list("--all")}
    named = set()
    for root in roots:
        named |= {ln.split()[2] for ln in git_out("ls-tree", root, cwd=src.bare, env=matrix.env).splitlines()}
    present, missing = _missing(matrix, dest)
    assert missing == named
    assert roots <= present
    git(*cfg, "checkout", "-q", "main", cwd=dest, env=matrix.env)
    assert _git(matrix, dest, "status", "--porcelain") == ""
    _fsck(matrix, dest)

    bad = git(
        *cfg,
        "clone",
        "--filter=sparse:oid=HEAD:x",
        matrix.src.url_with_token,
        tmp_path / "bad",
        env=matrix.env,
        check=False,
    )
    assert bad.returncode != 0
    assert b"unsupported filter" in bad.stderr
