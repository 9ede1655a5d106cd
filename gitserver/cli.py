"""The ``gitserver`` command: ``serve``, and offline ``token`` / ``repo`` administration.

Rules:
- ``serve`` runs hypercorn (trio worker) and the ``ActorHost`` sweeper in one nursery;
  SIGINT/SIGTERM trigger a graceful shutdown, after which every actor hibernates.
- Offline commands work on the data dir directly (catalog and KV files), without a
  running server; ``repo delete`` should not be used while a server serves that repo.
- Output for scripts goes to stdout (``token create`` prints only the token); logs and
  errors go to stderr. Exit status 0 on success, 1 on a user error, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import trio

from gitserver import forks, repo_files
from gitserver.catalog import Catalog, ParentGone, RepoExists
from gitserver.clock import rfc3339
from gitserver.config import ConfigError, Settings, add_data_dir_flag, add_serve_flags, load_settings
from gitserver.errors import ApiError
from gitserver.names import check_branch, check_namespace, check_repo_name
from gitserver.tokens import ADMIN_REPO, DEFAULT_TTL, MAX_TTL, MIN_TTL, TokenError, TokenStore
from storage.kv import open_kv

log = logging.getLogger("gitserver")


class UserError(Exception):
    """A problem to report in one line and exit 1."""


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("gitserver")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    access = logging.getLogger("gitserver.access")
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(plain)
    access.propagate = False


# -- serve ------------------------------------------------------------------------------


async def _serve(settings: Settings) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from gitserver.app import App
    from gitserver.services import Services

    services = Services.open(settings)
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None  # we write our own, one JSON line per request
    config.errorlog = logging.getLogger("hypercorn.error")
    if settings.tls_cert and settings.tls_key:
        config.certfile = str(settings.tls_cert)
        config.keyfile = str(settings.tls_key)
    stop = trio.Event()
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def watch_signals() -> None:
                    async for _ in signals:
                        stop.set()
                        return

                nursery.start_soon(watch_signals)
                await nursery.start(services.host.run)
                await nursery.start(services.tiering.run)
                async with trio.open_nursery() as web:
                    binds = await web.start(
                        partial(serve, cast(Any, App(services)), config, shutdown_trigger=stop.wait)
                    )
                    log.info("gitserver serving on %s (data in %s)", ", ".join(binds), settings.data_dir)
                # hypercorn has drained its connections: stop the sweeper, which
                # hibernates every actor on its way out
                nursery.cancel_scope.cancel()
            log.info("gitserver stopped")
    finally:
        services.close()


# -- offline commands ---------------------------------------------------------------------


def _split_repo(text: str) -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    if not sep or not ns or not name:
        raise UserError(f"expected NAMESPACE/NAME, got {text!r}")
    return ns, name


def _token_create(settings: Settings, args: argparse.Namespace) -> None:
    if args.admin == bool(args.repo):
        raise UserError("give either --admin or --repo NS/NAME")
    if not MIN_TTL <= args.ttl <= MAX_TTL:
        raise UserError(f"--ttl must be {MIN_TTL}..{MAX_TTL} seconds (default {DEFAULT_TTL})")
    kv = open_kv(settings.kv_url)
    try:
        tokens = TokenStore(kv)
        if args.admin:
            if args.scope not in (None, "admin"):
                raise UserError("--admin tokens have scope admin")
            _, secret = tokens.mint("admin", ADMIN_REPO, args.ttl)
        else:
            if args.scope not in ("read", "write"):
                raise UserError("--repo needs --scope read or write")
            ns, name = _split_repo(args.repo)
            catalog = Catalog(settings.data_dir)
            try:
                record = catalog.get(ns, name)
            finally:
                catalog.close()
            if record is None:
                raise UserError(f"repository {ns}/{name} not found")
            _, secret = tokens.mint(args.scope, record.id, args.ttl)
    finally:
        kv.close()
    print(secret)


def _repo_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "namespace": record.namespace,
        "name": record.name,
        "description": record.description,
        "default_branch": record.default_branch,
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "last_push_at": rfc3339(record.last_push_at),
        "read_only": record.read_only,
        "public": record.public,
        "forked_from": record.forked_from,
        "size_bytes": record.size_bytes,
        "object_count": record.object_count,
        "path": str(record.path),
    }


def _repo_command(settings: Settings, args: argparse.Namespace) -> None:
    catalog = Catalog(settings.data_dir)
    try:
        if args.action == "list":
            ns = check_namespace(args.target)
            cursor: str | None = None
            while True:
                records, cursor = catalog.list_page(ns, limit=200, cursor=cursor, sort="name")
                for record in records:
                    out = _repo_json(record)
                    parent = catalog.get_by_id(record.forked_from) if record.forked_from else None
                    out["forked_from"] = parent.full_name if parent else None  # as the API shows it
                    print(json.dumps(out))
                if cursor is None:
                    return
        ns, name = _split_repo(args.target)
        if args.action == "create":
            check_namespace(ns)
            check_repo_name(name)
            try:
                record = repo_files.create_repo(
                    catalog,
                    ns,
                    name,
                    description=args.description,
                    default_branch=check_branch(args.default_branch),
                    read_only=args.read_only,
                    public=args.public,
                )
            except RepoExists as exc:
                raise UserError(str(exc)) from None
            print(json.dumps(_repo_json(record)))
            return
        if args.action == "fork":
            fork = _repo_json(_fork(catalog, ns, name, args))
            print(json.dumps({**fork, "forked_from": f"{ns}/{name}"}))
            return
        # delete
        doomed = catalog.get(ns, name)
        if doomed is None:
            raise UserError(f"repository {ns}/{name} not found")
        paths = forks.delete(catalog, doomed.id) or []
        kv = open_kv(settings.kv_url)
        try:
            TokenStore(kv).revoke_repo(doomed.id)
        finally:
            kv.close()
        for path in paths:  # none while forks still use this repo's objects
            repo_files.remove_files(path)
    finally:
        catalog.close()


def _fork(catalog: Catalog, ns: str, name: str, args: argparse.Namespace) -> Any:
    from storage.repo_store import RepoStore

    source = catalog.get(ns, name)
    if source is None:
        raise UserError(f"repository {ns}/{name} not found")
    target_ns = check_namespace(args.namespace or source.namespace)
    check_repo_name(args.name)
    refs = forks.pending_refs(catalog, source)
    if refs is None:
        with RepoStore.open(source.path, readonly=True) as store:
            refs = store.refs()
    try:
        return forks.create_fork(
            catalog,
            source,
            refs,
            namespace=target_ns,
            name=args.name,
            read_only=args.read_only,
            default_branch_only=args.default_branch_only,
        )
    except (RepoExists, ParentGone, forks.ForkError) as exc:
        raise UserError(str(exc)) from None


def _token_list(settings: Settings, args: argparse.Namespace) -> None:
    ns, name = _split_repo(args.repo)
    catalog = Catalog(settings.data_dir)
    try:
        record = catalog.get(ns, name)
    finally:
        catalog.close()
    if record is None:
        raise UserError(f"repository {ns}/{name} not found")
    kv = open_kv(settings.kv_url)
    try:
        for info in TokenStore(kv).list_for_repo(record.id):
            print(json.dumps(info.public_json(record.full_name)))
    finally:
        kv.close()


def _token_revoke(settings: Settings, args: argparse.Namespace) -> None:
    kv = open_kv(settings.kv_url)
    try:
        if TokenStore(kv).revoke(args.id) is None:
            raise UserError(f"token {args.id} not found")
    finally:
        kv.close()


# -- argument parsing ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitserver", description="A Git host: every repository is an actor."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the Git remote and the REST API")
    add_serve_flags(serve)

    token = sub.add_parser("token", help="mint tokens offline")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="mint a token and print it")
    add_data_dir_flag(create)
    create.add_argument("--kv", dest="kv", default=None, metavar="URL")
    create.add_argument("--admin", action="store_true", help="an admin token (every repo)")
    create.add_argument("--repo", metavar="NS/NAME", help="a token for one repository")
    create.add_argument("--scope", choices=("read", "write", "admin"))
    create.add_argument("--ttl", type=int, default=DEFAULT_TTL, metavar="SECONDS")
    listing = token_sub.add_parser("list", help="list a repository's tokens (JSON lines, no secrets)")
    add_data_dir_flag(listing)
    listing.add_argument("--kv", dest="kv", default=None, metavar="URL")
    listing.add_argument("--repo", metavar="NS/NAME", required=True)
    revoke = token_sub.add_parser("revoke", help="revoke a token by id")
    add_data_dir_flag(revoke)
    revoke.add_argument("--kv", dest="kv", default=None, metavar="URL")
    revoke.add_argument("id")

    fsck = sub.add_parser("fsck", help="verify one repository and its latest snapshot (exit 1 on problems)")
    fsck.add_argument("target", metavar="NS/NAME")
    add_data_dir_flag(fsck)
    fsck.add_argument("--blob-store", dest="blob_store", default=None, metavar="URL")

    repo = sub.add_parser("repo", help="manage repositories offline")
    repo_sub = repo.add_subparsers(dest="action", required=True)
    for action, helptext, target in (
        ("create", "create a repository", "NS/NAME"),
        ("list", "list a namespace's repositories (JSON lines)", "NS"),
        ("delete", "delete a repository and its tokens", "NS/NAME"),
        ("fork", "fork a repository without copying objects", "NS/NAME"),
    ):
        p = repo_sub.add_parser(action, help=helptext)
        p.add_argument("target", metavar=target)
        add_data_dir_flag(p)
        p.add_argument("--kv", dest="kv", default=None, metavar="URL")
        if action == "create":
            p.add_argument("--description", default="")
            p.add_argument("--default-branch", default="main")
            p.add_argument("--read-only", action="store_true")
            p.add_argument("--public", action="store_true")
        if action == "fork":
            p.add_argument("--name", required=True, help="the fork's name")
            p.add_argument("--namespace", default=None, help="the fork's namespace (default: the source's)")
            p.add_argument("--default-branch-only", action="store_true")
            p.add_argument("--read-only", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging()
    flags = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    try:
        settings = load_settings(flags)
        if args.command == "serve":
            trio.run(_serve, settings)
        elif args.command == "fsck":
            from gitserver import fsck_cmd

            return fsck_cmd.run(settings, *_split_repo(args.target))
        elif args.command == "token":
            {"create": _token_create, "list": _token_list, "revoke": _token_revoke}[args.action](
                settings, args
            )
        else:
            _repo_command(settings, args)
    except (ConfigError, UserError, TokenError) as exc:
        print(f"gitserver: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"gitserver: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
