"""Snapshots: ``POST`` and ``GET /namespaces/{ns}/repos/{name}/snapshots``.

Rules:
- Admin token only, as SPEC.md says of every REST route not marked otherwise (snapshots
  are storage operations, like delete).
- ``POST`` takes a snapshot now (gitserver.tiering): ``201 {id, at, size, key}``; ``at``
  is RFC 3339 UTC with microseconds, ``size`` the bytes of its three blob objects,
  ``key`` the blob key of its pack (index ``.idx.zst`` and refs manifest ``.refs.zst``
  sit beside it). A fenced repo (another writer owns its manifest) is ``409 CONFLICT``.
- ``GET`` lists the snapshots kept for the repo, newest first: ``{items: [...]}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitserver.clock import rfc3339
from gitserver.errors import ApiError
from gitserver.tiering import DurabilityError
from gitserver.web import Request, Response, json_response
from storage.manifest import RepoFenced, SnapshotInfo

if TYPE_CHECKING:
    from gitserver.api import Api
    from gitserver.web import Router


def _json(info: SnapshotInfo) -> dict[str, Any]:
    return {"id": info.id, "at": rfc3339(info.at), "size": info.size, "key": info.key}


def register(router: Router, api: Api) -> None:
    """Add the snapshot routes."""

    async def create(req: Request) -> Response:
        record = await api._admin_repo(req)
        try:
            info = await api.s.tiering.snapshot(record)
        except RepoFenced as exc:
            raise ApiError("CONFLICT", str(exc)) from None
        except DurabilityError as exc:  # fenced before the snapshot began: 409 too
            raise exc.api_error() from None
        return json_response(201, _json(info))

    async def listing(req: Request) -> Response:
        record = await api._admin_repo(req)
        items = await api.s.tiering.snapshots(record)
        return json_response(200, {"items": [_json(i) for i in items]})

    router.add("POST", "/namespaces/{ns}/repos/{name}/snapshots", create)
    router.add("GET", "/namespaces/{ns}/repos/{name}/snapshots", listing)


_ERR = {"$ref": "#/components/responses/Error"}
_PARAMS = [{"$ref": "#/components/parameters/ns"}, {"$ref": "#/components/parameters/name"}]

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Snapshot": {
        "type": "object",
        "required": ["id", "at", "size", "key"],
        "properties": {
            "id": {"type": "string", "description": "time-ordered snapshot id"},
            "at": {"type": "string", "format": "date-time"},
            "size": {"type": "integer", "description": "bytes of the pack, index and refs objects"},
            "key": {"type": "string", "description": "blob-store key of the snapshot pack"},
        },
    },
    "SnapshotList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Snapshot"}}},
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/namespaces/{ns}/repos/{name}/snapshots": {
        "post": {
            "operationId": "createSnapshot",
            "summary": "Take a snapshot of the repository in the blob store now (admin)",
            "tags": ["storage"],
            "parameters": _PARAMS,
            "responses": {
                "201": {
                    "description": "the snapshot",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Snapshot"}}},
                },
                "401": _ERR,
                "403": _ERR,
                "404": _ERR,
                "409": _ERR,
                "default": _ERR,
            },
        },
        "get": {
            "operationId": "listSnapshots",
            "summary": "Snapshots kept for the repository, newest first (admin)",
            "tags": ["storage"],
            "parameters": _PARAMS,
            "responses": {
                "200": {
                    "description": "the snapshots",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/SnapshotList"}}
                    },
                },
                "401": _ERR,
                "403": _ERR,
                "404": _ERR,
                "default": _ERR,
            },
        },
    },
}
