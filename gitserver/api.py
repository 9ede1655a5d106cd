"""The REST API under ``/api/v1``: repositories and tokens (the control plane).

Rules:
- Every handler authenticates first (``gitserver.auth``), then looks the repo up, then
  acts; errors are ``ApiError`` in the SPEC shape. JSON bodies are capped at
  ``--max-api-body``.
- Control-plane calls (create, list, delete repos; mint, list, revoke tokens) need an
  admin token. ``GET`` of one repo also accepts a read token of that repo, and anonymous
  callers when the repo is public (GitHub shows public repo metadata to everyone).
- Repo ids, token ids and file paths are the catalog's; names in URLs are matched
  case-insensitively (see ``gitserver.names``).
- Deleting a repo drops its catalog row first (new requests see 404), then its actor,
  its tokens and finally its files, unless forks still use them (``gitserver.forks``:
  the file stays as a nameless object pool until the last fork is gone).
- ``GET /openapi.json`` needs no token.

Routes are registered in ``Api.router``; a later handler set (read API, commits, forks,
snapshots) adds its own ``register`` function beside this one.
"""

from __future__ import annotations

from typing import Any

from gitserver import fork_api, forks, history_api, openapi, repo_files, snapshot_api
from gitserver.auth import authenticate, require_admin, require_repo
from gitserver.catalog import SORTS, BadCursor, RepoExists, RepoRecord
from gitserver.clock import rfc3339
from gitserver.errors import ApiError, invalid_input, not_found
from gitserver.names import check_branch, check_namespace, check_repo_name
from gitserver.services import Services
from gitserver.tokens import ADMIN_REPO, DEFAULT_TTL, TokenError, TokenInfo
from gitserver.web import Request, Response, Router, json_response

PREFIX = "/api/v1"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_DESCRIPTION = 1000


def base_url(request: Request, services: Services) -> str:
    """The externally visible base URL: ``--public-url``, else scheme and Host header."""
    if services.settings.public_url:
        return services.settings.public_url.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    host = request.headers.get("host")
    if not host:
        server = request.scope.get("server") or ("127.0.0.1", services.settings.port)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


_KIND_NAMES = {str: "a string", int: "an integer", bool: "a boolean (true or false)"}


def _field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if kind is int and isinstance(value, bool):
        raise invalid_input(f"{name} must be an integer")
    if not isinstance(value, kind):
        raise invalid_input(f"{name} must be {_KIND_NAMES.get(kind, 'a ' + kind.__name__)}")
    return value


class Api:
    def __init__(self, services: Services) -> None:
        self.s = services

    def router(self) -> Router:
        r = Router()
        r.add("POST", "/namespaces/{ns}/repos", self.create_repo)
        r.add("GET", "/namespaces/{ns}/repos", self.list_repos)
        r.add("GET", "/namespaces/{ns}/repos/{name}", self.get_repo)
        r.add("DELETE", "/namespaces/{ns}/repos/{name}", self.delete_repo)
        r.add("POST", "/namespaces/{ns}/repos/{name}/tokens", self.mint_token)
        r.add("GET", "/namespaces/{ns}/repos/{name}/tokens", self.list_tokens)
        r.add("DELETE", "/tokens/{id}", self.revoke_token)
        r.add("GET", "/openapi.json", self.openapi)
        for group in (history_api, fork_api, snapshot_api):
            group.register(r, self)
        return r

    # -- helpers ----------------------------------------------------------------------

    async def _token(self, req: Request) -> TokenInfo | None:
        token = await authenticate(req.headers.get("authorization"), self.s.tokens, self.s.limiter)
        req.state["token_id"] = token.id if token else None
        return token

    async def _lookup(self, req: Request) -> tuple[RepoRecord | None, str]:
        ns, name = req.params["ns"], req.params["name"]
        what = f"{ns}/{name}"
        req.state["repo"] = what
        return await self.s.thread(self.s.catalog.get, ns, name), what

    async def _admin_repo(self, req: Request) -> RepoRecord:
        require_admin(await self._token(req))
        record, what = await self._lookup(req)
        if record is None:
            raise not_found(f"repository {what} not found")
        return record

    def _info(self, req: Request, record: RepoRecord, parent: RepoRecord | None = None) -> dict[str, Any]:
        return {
            "id": record.id,
            "namespace": record.namespace,
            "name": record.name,
            "description": record.description,
            "default_branch": record.default_branch,
            "remote": f"{base_url(req, self.s)}/git/{record.namespace}/{record.name}.git",
            "created_at": rfc3339(record.created_at),
            "updated_at": rfc3339(record.updated_at),
            "last_push_at": rfc3339(record.last_push_at),
            "read_only": record.read_only,
            "public": record.public,
            # the parent's name; null once the parent repo is deleted (its objects live on
            # as a nameless pool, an internal id no client can use)
            "forked_from": parent.full_name if parent else None,
            "size_bytes": record.size_bytes,
            "object_count": record.object_count,
        }

    async def _parent(self, record: RepoRecord) -> RepoRecord | None:
        if record.forked_from is None:
            return None
        return await self.s.thread(self.s.catalog.get_by_id, record.forked_from)

    # -- repositories -----------------------------------------------------------------

    async def create_repo(self, req: Request) -> Response:
        require_admin(await self._token(req))
        ns = check_namespace(req.params["ns"])
        body = await req.json(self.s.settings.max_api_body)
        name = body.get("name")
        if not isinstance(name, str):
            raise invalid_input("name is required (a string)")
        check_repo_name(name)
        description = _field(body, "description", str, "")
        if len(description) > MAX_DESCRIPTION:
            raise invalid_input(f"description is longer than {MAX_DESCRIPTION} characters")
        branch = check_branch(_field(body, "default_branch", str, "main"))
        read_only = _field(body, "read_only", bool, False)
        public = _field(body, "public", bool, False)
        req.state["repo"] = f"{ns}/{name}"
        try:
            record = await self.s.thread(
                lambda: repo_files.create_repo(
                    self.s.catalog,
                    ns,
                    name,
                    description=description,
                    default_branch=branch,
                    read_only=read_only,
                    public=public,
                )
            )
        except RepoExists:
            raise ApiError("ALREADY_EXISTS", f"repository {ns}/{name} already exists") from None
        token, secret = await self.s.thread(self.s.tokens.mint, "write", record.id, DEFAULT_TTL)
        info = self._info(req, record)
        info.update(token=secret, token_id=token.id, token_expires_at=rfc3339(token.expires_at))
        location = f"{PREFIX}/namespaces/{record.namespace}/repos/{record.name}".encode()
        return json_response(201, info, [(b"location", location)])

    async def list_repos(self, req: Request) -> Response:
        require_admin(await self._token(req))
        ns = check_namespace(req.params["ns"])
        q = req.query
        try:
            limit = int(q.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise invalid_input("limit must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid_input(f"limit must be in 1..{MAX_LIMIT}")
        sort = q.get("sort") or "created_at"
        if sort not in SORTS:
            raise invalid_input(f"sort must be one of {', '.join(SORTS)}")
        direction = q.get("direction") or ("asc" if sort == "name" else "desc")
        if direction not in ("asc", "desc"):
            raise invalid_input("direction must be asc or desc")
        try:
            records, next_cursor = await self.s.thread(
                lambda: self.s.catalog.list_page(
                    ns,
                    limit=limit,
                    cursor=q.get("cursor") or None,
                    search=q.get("search") or None,
                    sort=sort,
                    descending=direction == "desc",
                )
            )
        except BadCursor as exc:
            raise invalid_input(f"bad cursor: {exc}") from None
        items = [self._info(req, r, await self._parent(r)) for r in records]
        return json_response(200, {"items": items, "next_cursor": next_cursor})

    async def get_repo(self, req: Request) -> Response:
        token = await self._token(req)
        record, what = await self._lookup(req)
        record = require_repo(token, "read", record, what)
        if record.ref_set is not None and not record.path.exists():
            size, count = 0, 0  # a fork not used yet: it has no file, hence no own objects
        else:
            actor = self.s.host.actor(record.id, record.path)
            size, count = await actor.run_read(repo_files.size_figures)
        info = self._info(req, record, await self._parent(record))
        info.update(size_bytes=size, object_count=count)
        return json_response(200, info)

    async def delete_repo(self, req: Request) -> Response:
        record = await self._admin_repo(req)
        chain = await self.s.thread(forks.lineage, self.s.catalog, record.id)  # freed pools are in it
        doomed = await self.s.thread(forks.delete, self.s.catalog, record.id)
        if doomed is None:
            raise not_found(f"repository {record.full_name} not found")
        await self.s.host.forget(record.id)
        await self.s.thread(self.s.tokens.revoke_repo, record.id)
        for path in doomed:  # this repo's file unless forks still use it, and freed pools
            await self.s.thread(repo_files.remove_files, path)
        removed = [path.stem for path in doomed]
        ref_sets = [node.ref_set for node in chain if node.ref_set is not None]
        await self.s.thread(self.s.tiering.repo_deleted, record.id, removed, ref_sets)
        return Response(204)

    async def openapi(self, req: Request) -> Response:
        """The OpenAPI 3.1 description, built from every route group at request time."""
        return json_response(200, openapi.document(base_url(req, self.s) + PREFIX))

    # -- tokens -----------------------------------------------------------------------

    async def mint_token(self, req: Request) -> Response:
        record = await self._admin_repo(req)
        body = await req.json(self.s.settings.max_api_body)
        scope = body.get("scope")
        if scope not in ("read", "write"):
            raise invalid_input("scope must be read or write (admin tokens come from the CLI)")
        ttl = _field(body, "ttl_seconds", int, DEFAULT_TTL)
        try:
            token, secret = await self.s.thread(self.s.tokens.mint, scope, record.id, ttl)
        except TokenError as exc:
            raise invalid_input(str(exc)) from None
        out = token.public_json(record.full_name)
        out["token"] = secret
        return json_response(201, out)

    async def list_tokens(self, req: Request) -> Response:
        record = await self._admin_repo(req)
        tokens = await self.s.thread(self.s.tokens.list_for_repo, record.id)
        return json_response(200, {"items": [t.public_json(record.full_name) for t in tokens]})

    async def revoke_token(self, req: Request) -> Response:
        require_admin(await self._token(req))
        revoked = await self.s.thread(self.s.tokens.revoke, req.params["id"])
        if revoked is None:
            raise not_found(f"token {req.params['id']} not found")
        if revoked.repo != ADMIN_REPO:
            repo = await self.s.thread(self.s.catalog.get_by_id, revoked.repo)
            req.state["repo"] = repo.full_name if repo else None
        return Response(204)
