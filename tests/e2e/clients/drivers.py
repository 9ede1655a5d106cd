"""One small driver per Git client of the matrix, all with the same three operations.

Each driver turns ``clone`` / ``fetch`` / ``push`` with the matrix's options into that
client's own API or command line, and raises ``ClientFailed`` (with the client's own
message) when the client reports an error. A driver never checks results: the matrix
inspects every repository a client leaves with the git CLI.

Trust and credentials go the way each client expects: ``GIT_SSL_CAINFO`` and a token in
the URL for git; ``http.sslCAInfo`` in the config for dulwich; ``NODE_EXTRA_CA_CERTS`` and
``onAuth`` for isomorphic-git; ``set_ssl_cert_locations`` and credential callbacks for
pygit2 (process-wide, so every pygit2 cell trusts the same CA).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from tests.helpers import git, git_env

INFINITE_DEPTH = 0x7FFFFFFF  # what git --unshallow sends as "deepen"


class ClientFailed(AssertionError):
    """The client reported an error."""


@dataclass(frozen=True)
class Remote:
    """A repository on the server: its plain https URL and a token for it."""

    url: str
    token: str

    @property
    def url_with_token(self) -> str:
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://x:{self.token}@{rest}"


@dataclass(frozen=True)
class CloneOptions:
    depth: int | None = None
    since: int | None = None  # epoch seconds
    exclude: tuple[str, ...] = ()
    filter: str | None = None
    branch: str | None = None  # single branch
    no_checkout: bool = False
    mirror: bool = False


class GitCli:
    def __init__(self, version: int, home: Path, ca: Path, *, http2: bool = False) -> None:
        self.version = version
        self.http2 = http2
        self.name = f"git-v{version}" + ("-h2" if http2 else "")
        self.env = git_env(home, GIT_SSL_CAINFO=str(ca))

    def _cfg(self) -> list[str]:
        cfg = ["-c", f"protocol.version={self.version}"]
        if self.http2:
            cfg += ["-c", "http.version=HTTP/2"]
        return cfg

    def run(self, *args: str | Path, cwd: Path | None = None) -> str:
        proc = git(*self._cfg(), *args, cwd=cwd, env=self.env, check=False)
        if proc.returncode != 0:
            raise ClientFailed(proc.stderr.decode(errors="replace"))
        return proc.stdout.decode()

    def clone(self, remote: Remote, dest: Path, opts: CloneOptions) -> None:
        args: list[str] = ["clone", "-q"]
        if opts.mirror:
            args.append("--mirror")
        if opts.depth is not None:
            args.append(f"--depth={opts.depth}")
        if opts.since is not None:
            args.append(f"--shallow-since={datetime.fromtimestamp(opts.since, UTC).isoformat()}")
        args += [f"--shallow-exclude={name}" for name in opts.exclude]
        if opts.filter:
            args.append(f"--filter={opts.filter}")
        if opts.branch:
            args += ["--single-branch", f"--branch={opts.branch}"]
        if opts.no_checkout:
            args.append("--no-checkout")
        self.run(*args, remote.url_with_token, dest)

    def fetch(
        self, dest: Path, *, deepen: int | None = None, depth: int | None = None, unshallow: bool = False
    ) -> None:
        args = ["fetch", "-q", "origin"]
        if deepen is not None:
            args.append(f"--deepen={deepen}")
        if unshallow:
            args.append("--unshallow")
        self.run(*args, cwd=dest)

    def push(self, local: Path, remote: Remote, refspecs: list[str]) -> None:
        self.run("push", "-q", remote.url_with_token, *refspecs, cwd=local)

    def checkout(self, dest: Path, branch: str) -> None:
        self.run("checkout", "-q", branch, cwd=dest)


class Pygit2Client:
    name = "pygit2"
    _lock = threading.Lock()
    _trusted: str | None = None

    def __init__(self, ca: Path) -> None:
        import pygit2

        self.pygit2 = pygit2
        with self._lock:
            if Pygit2Client._trusted != str(ca):
                pygit2.settings.set_ssl_cert_locations(str(ca), None)
                Pygit2Client._trusted = str(ca)

    def _callbacks(self, token: str) -> Any:
        pygit2 = self.pygit2
        base: Any = pygit2.RemoteCallbacks

        class Callbacks(base):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.rejected: list[str] = []

            def credentials(self, url: str, username: str | None, allowed: Any) -> Any:
                return pygit2.UserPass("x", token)

            def push_update_reference(self, refname: str, message: str | None) -> None:
                if message:
                    self.rejected.append(f"{refname}: {message}")

        return Callbacks()

    def clone(self, remote: Remote, dest: Path, opts: CloneOptions) -> None:
        try:
            self.pygit2.clone_repository(
                remote.url,
                str(dest),
                checkout_branch=opts.branch,
                callbacks=self._callbacks(remote.token),
                depth=opts.depth or 0,
            )
        except self.pygit2.GitError as exc:
            raise ClientFailed(str(exc)) from None
        (dest / ".git" / "token").write_text(remote.token)

    def fetch(
        self, dest: Path, *, deepen: int | None = None, depth: int | None = None, unshallow: bool = False
    ) -> None:
        repo = self.pygit2.Repository(str(dest))
        token = (dest / ".git" / "token").read_text()
        try:
            repo.remotes["origin"].fetch(
                callbacks=self._callbacks(token), depth=INFINITE_DEPTH if unshallow else depth or 0
            )
        except self.pygit2.GitError as exc:
            raise ClientFailed(str(exc)) from None

    def push(self, local: Path, remote: Remote, refspecs: list[str]) -> None:
        repo = self.pygit2.Repository(str(local))
        callbacks = self._callbacks(remote.token)
        try:
            repo.remotes.create_anonymous(remote.url).push(refspecs, callbacks=callbacks)
        except self.pygit2.GitError as exc:
            raise ClientFailed(str(exc)) from None
        if callbacks.rejected:
            raise ClientFailed("; ".join(callbacks.rejected))


class DulwichClient:
    """dulwich's HttpGitClient, used the way its porcelain clone does, but with the
    wants limited to the branches the clone tracks (like ``git clone --single-branch``,
    whose later fetches stay on that branch)."""

    name = "dulwich"

    def __init__(self, ca: Path) -> None:
        self.ca = ca

    def _fetch(
        self,
        dest: Path,
        url: str,
        branch: str | None,
        *,
        depth: int | None = None,
        since: int | None = None,
        exclude: tuple[str, ...] = (),
        filter: str | None = None,
    ) -> None:
        from dulwich.client import get_transport_and_path
        from dulwich.config import ConfigDict
        from dulwich.errors import GitProtocolError, HangupException
        from dulwich.repo import Repo

        cfg = ConfigDict()
        cfg.set((b"http",), b"sslCAInfo", str(self.ca).encode())
        client, path = get_transport_and_path(url, config=cfg)
        repo = Repo(str(dest))
        refs: Any = repo.refs

        def tracked(name: bytes) -> bool:
            if name.startswith(b"refs/tags/"):
                return branch is None
            return name.startswith(b"refs/heads/") and (branch is None or name[11:] == branch.encode())

        def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            return list(dict.fromkeys(oid for name, oid in refs.items() if tracked(name)))

        try:
            result = client.fetch(
                path,
                repo,
                determine_wants=cast(Any, wants),
                depth=depth,
                shallow_since=None if since is None else str(since),
                shallow_exclude=list(exclude) or None,
                filter_spec=filter.encode() if filter else None,
                protocol_version=2 if filter else None,
            )
            for name, oid in result.refs.items():
                if oid is None or not tracked(name) or oid not in repo.object_store:
                    continue
                if name.startswith(b"refs/heads/"):
                    refs[b"refs/remotes/origin/" + name[11:]] = oid
                else:
                    refs[name] = oid
        except (GitProtocolError, HangupException) as exc:
            raise ClientFailed(str(exc)) from None
        finally:
            repo.close()

    def clone(self, remote: Remote, dest: Path, opts: CloneOptions) -> None:
        from dulwich.repo import Repo

        repo = Repo.init(str(dest), mkdir=True)
        cfg = repo.get_config()
        cfg.set((b"remote", b"origin"), b"url", remote.url_with_token.encode())
        cfg.set(
            (b"remote", b"origin"),
            b"fetch",
            f"+refs/heads/{opts.branch or '*'}:refs/remotes/origin/{opts.branch or '*'}".encode(),
        )
        cfg.write_to_path()
        repo.close()
        self._fetch(
            dest,
            remote.url_with_token,
            opts.branch,
            depth=opts.depth,
            since=opts.since,
            exclude=opts.exclude,
            filter=opts.filter,
        )

    def fetch(
        self, dest: Path, *, deepen: int | None = None, depth: int | None = None, unshallow: bool = False
    ) -> None:
        from dulwich.repo import Repo

        repo = Repo(str(dest))
        cfg = repo.get_config()
        url = cfg.get((b"remote", b"origin"), b"url").decode()
        spec = cfg.get((b"remote", b"origin"), b"fetch").decode()
        repo.close()
        branch = spec.split(":")[0].removeprefix("+refs/heads/")
        self._fetch(
            dest, url, None if branch == "*" else branch, depth=INFINITE_DEPTH if unshallow else depth
        )

    def push(self, local: Path, remote: Remote, refspecs: list[str]) -> None:
        from dulwich import porcelain
        from dulwich.errors import GitProtocolError, HangupException

        git("config", "http.sslCAInfo", str(self.ca), cwd=local)
        with open(os.devnull, "wb") as sink:
            try:
                result = porcelain.push(
                    str(local), remote.url_with_token, refspecs, outstream=sink, errstream=sink
                )
            except (GitProtocolError, HangupException, porcelain.Error) as exc:
                raise ClientFailed(str(exc)) from None
        bad = {k: v for k, v in (result.ref_status or {}).items() if v is not None}
        if bad:
            raise ClientFailed(f"rejected: {bad}")


class IsoGitClient:
    name = "isomorphic-git"

    def __init__(self, node_modules: Path, ca: Path) -> None:
        self.script = Path(__file__).with_name("isogit_client.mjs")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "NODE_PATH": str(node_modules),
            "NODE_EXTRA_CA_CERTS": str(ca),
        }

    def _run(self, token: str, **args: object) -> dict[str, Any]:
        proc = subprocess.run(
            ["node", str(self.script), json.dumps(args)],
            env={**self.env, "ISOGIT_TOKEN": token},
            capture_output=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise ClientFailed(proc.stderr.decode(errors="replace"))
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def clone(self, remote: Remote, dest: Path, opts: CloneOptions) -> None:
        args: dict[str, object] = {"op": "clone", "dir": str(dest), "url": remote.url}
        if opts.branch:
            args.update(ref=opts.branch, singleBranch=True)
        if opts.depth is not None:
            args["depth"] = opts.depth
        if opts.since is not None:
            args["since"] = opts.since
        if opts.exclude:
            args["exclude"] = list(opts.exclude)
        if opts.no_checkout:
            args["noCheckout"] = True
        self._run(remote.token, **args)
        (dest / ".git" / "token").write_text(remote.token)

    def fetch(
        self, dest: Path, *, deepen: int | None = None, depth: int | None = None, unshallow: bool = False
    ) -> None:
        args: dict[str, object] = {"op": "fetch", "dir": str(dest), "tags": True}
        if deepen is not None:
            args.update(depth=deepen, relative=True)
        if unshallow:
            args["depth"] = INFINITE_DEPTH
        self._run((dest / ".git" / "token").read_text(), **args)

    def push(self, local: Path, remote: Remote, refspecs: list[str]) -> None:
        for spec in refspecs:
            force = spec.startswith("+")
            src, _, dst = spec.lstrip("+").partition(":")
            args: dict[str, object] = {"op": "push", "dir": str(local), "url": remote.url, "force": force}
            if src:
                args.update(ref=src, remoteRef=dst or src)
            else:
                args.update(ref=dst, delete=True)
            self._run(remote.token, **args)
