"""Forks and imports: ``POST .../fork`` and ``POST .../import`` (admin token).

Rules:
- Fork: ``{name, namespace?, default_branch_only?, read_only?}``; the fork is made in
  ``namespace`` (default: the source's), copies the source's description, default branch
  and visibility, and answers ``201`` RepoInfo with ``forked_from``. No objects are
  copied and no file is made (``gitserver.forks``); the refs are read from the source's
  current state. No token is minted (mint one with ``POST .../tokens``).
  Errors: ``404`` no source, ``409 ALREADY_EXISTS`` the name is taken, ``409 CONFLICT``
  the fork chain would be deeper than ``forks.MAX_DEPTH``, the source was deleted
  meanwhile, or the source is fenced (another copy of it owns its manifest: this node's
  refs of it may be stale), ``400`` bad body. Under ``--durability remote`` the ``201``
  comes only once the fork's catalog entry and ref set are in the blob store; if they
  cannot be written the fork is undone and the answer is ``500 INTERNAL_ERROR``.
- Import: ``{url, branch?, depth?}`` into an empty repo (``409 CONFLICT`` otherwise);
  runs as the repo's single writer, streamed (``gitserver.importer``); ``200``
  ``{imported: {ref: oid}, shallow: [oid]}`` plus the RepoInfo. With ``depth`` the repo
  becomes shallow (``shallow`` lists its boundary commits; [] for a full import). A remote that fails is ``400
  INVALID_INPUT`` with the reason (the remote is the client's input). A fenced repo is
  ``409 CONFLICT``; a write the blob store could not take (remote durability) is ``500
  INTERNAL_ERROR`` saying it is not acknowledged (``DurabilityError.api_error``).
OPENAPI_PATHS / OPENAPI_SCHEMAS describe these routes for ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitserver import forks, importer
from gitserver.catalog import ParentGone, RepoExists
from gitserver.errors import ApiError, invalid_input
from gitserver.names import check_branch, check_namespace, check_repo_name
from gitserver.tiering import DurabilityError
from gitserver.web import Request, Response, json_response
from storage.model import PushContext

if TYPE_CHECKING:
    from gitserver.api import Api
    from gitserver.web import Router

MAX_DEPTH_PARAM = 1 << 31


def register(router: Router, api: Api) -> None:
    """Add ``POST .../fork`` and ``POST .../import``."""
    router.add("POST", "/namespaces/{ns}/repos/{name}/fork", lambda req: fork_repo(api, req))
    router.add("POST", "/namespaces/{ns}/repos/{name}/import", lambda req: import_repo(api, req))


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise invalid_input(f"{name} must be a boolean")
    return value


async def fork_repo(api: Api, req: Request) -> Response:
    source = await api._admin_repo(req)
    body = await req.json(api.s.settings.max_api_body)
    name = body.get("name")
    if not isinstance(name, str):
        raise invalid_input("name is required (a string)")
    check_repo_name(name)
    namespace = body.get("namespace", source.namespace)
    if not isinstance(namespace, str):
        raise invalid_input("namespace must be a string")
    check_namespace(namespace)
    default_branch_only = _flag(body, "default_branch_only")
    read_only = _flag(body, "read_only")
    s = api.s
    fenced = s.tiering.fenced(source.id)
    if fenced is not None:
        raise fenced.api_error()
    pending = await s.thread(forks.pending_refs, s.catalog, source)
    if pending is None:
        refs = await s.host.actor(source.id, source.path).run_read(lambda store: store.refs())
    else:
        refs = pending
    try:
        record = await s.thread(
            lambda: forks.create_fork(
                s.catalog,
                source,
                refs,
                namespace=namespace,
                name=name,
                read_only=read_only,
                default_branch_only=default_branch_only,
            )
        )
    except RepoExists:
        raise ApiError("ALREADY_EXISTS", f"repository {namespace}/{name} already exists") from None
    except ParentGone:
        raise ApiError("CONFLICT", f"repository {source.full_name} was deleted meanwhile") from None
    except forks.ForkError as exc:
        raise ApiError("CONFLICT", str(exc)) from None
    try:
        await s.thread(s.tiering.ensure_mirrored, record)
    except DurabilityError as exc:  # not acknowledged: undo it
        await s.thread(forks.delete, s.catalog, record.id)
        raise exc.api_error() from None
    req.state["repo"] = record.full_name
    location = f"/api/v1/namespaces/{record.namespace}/repos/{record.name}".encode()
    return json_response(201, api._info(req, record, source), [(b"location", location)])


async def import_repo(api: Api, req: Request) -> Response:
    record = await api._admin_repo(req)
    body = await req.json(api.s.settings.max_api_body)
    url = body.get("url")
    if not isinstance(url, str):
        raise invalid_input("url is required (a string)")
    try:
        importer.check_url(url)
    except ValueError as exc:
        raise invalid_input(str(exc)) from None
    branch = body.get("branch")
    if branch is not None:
        if not isinstance(branch, str):
            raise invalid_input("branch must be a string")
        branch = check_branch(branch)
    depth = body.get("depth")
    if depth is not None and (
        isinstance(depth, bool) or not isinstance(depth, int) or not 0 < depth < MAX_DEPTH_PARAM
    ):
        raise invalid_input("depth must be a positive integer")
    if record.read_only:
        raise ApiError("FORBIDDEN", f"repository {record.full_name} is read-only")
    context = PushContext(token_id=req.state.get("token_id"), via="import")
    actor = api.s.host.actor(record.id, record.path)

    def run(store: Any) -> tuple[importer.ImportResult, int, int]:
        result = importer.import_into(store, url, branch=branch, context=context, depth=depth)
        return result, store.stored_bytes(), store.object_count()

    try:
        result, size, count = await actor.run_write(run)
    except importer.NotEmpty:
        raise ApiError("CONFLICT", f"repository {record.full_name} is not empty") from None
    except importer.ImportFailed as exc:
        raise invalid_input(f"import failed: {exc}") from None
    except DurabilityError as exc:
        raise exc.api_error() from None
    if result.head and result.head.startswith("refs/heads/") and result.head != record.head_ref:
        await api.s.thread(api.s.catalog.set_default_branch, record.id, result.head[len("refs/heads/") :])
        changed = await api.s.thread(api.s.catalog.get_by_id, record.id)
        if changed is not None:
            await api.s.thread(api.s.tiering.remirror, changed)
    fresh = await api.s.thread(api.s.catalog.get_by_id, record.id) or record
    info = api._info(req, fresh, await api._parent(fresh))
    info.update(size_bytes=size, object_count=count)
    imported = {k: v.hex() for k, v in result.refs.items()}
    shallow = [o.hex() for o in result.shallow]
    return json_response(200, {"imported": imported, "shallow": shallow, "repo": info})


_ERRORS = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
    "403": {"$ref": "#/components/responses/Error"},
    "404": {"$ref": "#/components/responses/Error"},
    "409": {"$ref": "#/components/responses/Error"},
    "413": {"$ref": "#/components/responses/Error"},
    "default": {"$ref": "#/components/responses/Error"},
}
_REPO_PARAMS = [{"$ref": "#/components/parameters/ns"}, {"$ref": "#/components/parameters/name"}]

OPENAPI_SCHEMAS: dict[str, Any] = {
    "ForkRequest": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"$ref": "#/components/schemas/Name"},
            "namespace": {"$ref": "#/components/schemas/Name"},
            "default_branch_only": {"type": "boolean", "default": False},
            "read_only": {"type": "boolean", "default": False},
        },
    },
    "ImportRequest": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "http(s) smart-HTTP Git remote"},
            "branch": {"type": "string", "description": "import only refs/heads/<branch>"},
            "depth": {
                "type": "integer",
                "minimum": 1,
                "description": "fetch only this many commits of each imported ref's history, like"
                " `git clone --depth N`; the repository becomes shallow (clones of it are shallow)",
            },
        },
    },
    "ImportResult": {
        "type": "object",
        "required": ["imported", "repo"],
        "properties": {
            "imported": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Oid"}},
            "shallow": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Oid"},
                "description": "the repository's shallow commits after the import (empty without depth)",
            },
            "repo": {"$ref": "#/components/schemas/RepoInfo"},
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/namespaces/{ns}/repos/{name}/fork": {
        "post": {
            "operationId": "forkRepo",
            "summary": "Fork a repository without copying its objects",
            "tags": ["repos"],
            "parameters": _REPO_PARAMS,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ForkRequest"}}},
            },
            "responses": {
                "201": {
                    "description": "the fork",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RepoInfo"}}},
                },
                **_ERRORS,
            },
        }
    },
    "/namespaces/{ns}/repos/{name}/import": {
        "post": {
            "operationId": "importRepo",
            "summary": "Fill an empty repository from a smart-HTTP remote",
            "tags": ["repos"],
            "parameters": _REPO_PARAMS,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportRequest"}}},
            },
            "responses": {
                "200": {
                    "description": "the refs imported",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ImportResult"}}
                    },
                },
                **_ERRORS,
            },
        }
    },
}
