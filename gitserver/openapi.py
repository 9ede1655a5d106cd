"""The OpenAPI 3.1 description served at ``GET /api/v1/openapi.json`` (no auth).

Rules:
- The control-plane routes of ``gitserver.api`` are described here (``CONTROL_PATHS``,
  ``CONTROL_SCHEMAS``); every route group (``history_api``, ``fork_api``, ``snapshot_api``)
  keeps its own ``OPENAPI_PATHS`` / ``OPENAPI_SCHEMAS`` beside its handlers, and
  ``document`` merges whatever they hold at request time. A group may use the shared
  components below (``Error``, ``Oid``, ``Name``, ``RepoInfo``, parameters ``ns`` and
  ``name``, response ``Error``).
- Every operation lists its success responses and answers every other status with the
  SPEC error shape (``default``), so a client can rely on ``{"error": {code, message}}``.
- Paths are relative to the server URL ``{base}/api/v1``.
"""

from __future__ import annotations

import copy
from typing import Any

from gitserver import errors

_REPO_PARAMS = [{"$ref": "#/components/parameters/ns"}, {"$ref": "#/components/parameters/name"}]
_ERR = {"$ref": "#/components/responses/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {**{str(s): _ERR for s in statuses}, "default": _ERR}


_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

CONTROL_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": sorted(errors.STATUS)},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", "maxLength": 63},
    "Oid": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
    "RepoInfo": {
        "type": "object",
        "required": [
            "id",
            "namespace",
            "name",
            "description",
            "default_branch",
            "remote",
            "created_at",
            "updated_at",
            "last_push_at",
            "read_only",
            "public",
            "forked_from",
            "size_bytes",
            "object_count",
        ],
        "properties": {
            "id": {"type": "string"},
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "default_branch": {"type": "string"},
            "remote": {"type": "string", "description": "the Git remote URL"},
            "created_at": _TIME,
            "updated_at": _TIME,
            "last_push_at": _NULLABLE_TIME,
            "read_only": {"type": "boolean"},
            "public": {"type": "boolean"},
            "forked_from": {"type": ["string", "null"], "description": "NAMESPACE/NAME of the parent"},
            "size_bytes": {
                "type": "integer",
                "minimum": 0,
                "description": "pack bytes stored by this repo itself",
            },
            "object_count": {
                "type": "integer",
                "minimum": 0,
                "description": "objects stored by this repo itself",
            },
        },
    },
    "RepoCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _ref("Name"),
            "description": {"type": "string", "maxLength": 1000},
            "default_branch": {"type": "string", "default": "main"},
            "read_only": {"type": "boolean", "default": False},
            "public": {"type": "boolean", "default": False},
        },
    },
    "RepoCreated": {
        "allOf": [
            _ref("RepoInfo"),
            {
                "type": "object",
                "required": ["token", "token_id", "token_expires_at"],
                "properties": {
                    "token": {"type": "string", "description": "a write token, shown only here"},
                    "token_id": {"type": "string"},
                    "token_expires_at": _TIME,
                },
            },
        ]
    },
    "RepoList": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("RepoInfo")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["scope"],
        "properties": {
            "scope": {"type": "string", "enum": ["read", "write"]},
            "ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 31536000, "default": 86400},
        },
    },
    "TokenInfo": {
        "type": "object",
        "required": ["id", "scope", "repo", "created_at", "expires_at", "revoked"],
        "properties": {
            "id": {"type": "string"},
            "scope": {"type": "string", "enum": ["read", "write", "admin"]},
            "repo": {"type": "string", "description": "NAMESPACE/NAME"},
            "created_at": _TIME,
            "expires_at": _NULLABLE_TIME,
            "revoked": {"type": "boolean"},
        },
    },
    "TokenMinted": {
        "allOf": [
            _ref("TokenInfo"),
            {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
        ]
    },
    "TokenList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("TokenInfo")}},
    },
}

CONTROL_PATHS: dict[str, Any] = {
    "/namespaces/{ns}/repos": {
        "parameters": [{"$ref": "#/components/parameters/ns"}],
        "post": {
            "operationId": "createRepo",
            "summary": "Create a repository; answers a write token too",
            "tags": ["repos"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("RepoCreate")}},
            },
            "responses": {
                "201": _json(_ref("RepoCreated"), "the new repository"),
                **_errors(400, 401, 403, 409),
            },
        },
        "get": {
            "operationId": "listRepos",
            "summary": "List a namespace's repositories (keyset pagination)",
            "tags": ["repos"],
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {"name": "search", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "sort",
                    "in": "query",
                    "schema": {
                        "type": "string",
                        "enum": ["created_at", "updated_at", "last_push_at", "name"],
                    },
                },
                {"name": "direction", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
            ],
            "responses": {"200": _json(_ref("RepoList"), "one page"), **_errors(400, 401, 403)},
        },
    },
    "/namespaces/{ns}/repos/{name}": {
        "parameters": _REPO_PARAMS,
        "get": {
            "operationId": "getRepo",
            "summary": "One repository (read token of the repo, or anonymous when public)",
            "tags": ["repos"],
            "security": [{"bearer": []}, {"basic": []}, {}],
            "responses": {"200": _json(_ref("RepoInfo"), "the repository"), **_errors(401, 403, 404)},
        },
        "delete": {
            "operationId": "deleteRepo",
            "summary": "Delete a repository (its forks keep working)",
            "tags": ["repos"],
            "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404)},
        },
    },
    "/namespaces/{ns}/repos/{name}/tokens": {
        "parameters": _REPO_PARAMS,
        "post": {
            "operationId": "mintToken",
            "summary": "Mint a repository token (the secret is shown only here)",
            "tags": ["tokens"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("TokenRequest")}},
            },
            "responses": {"201": _json(_ref("TokenMinted"), "the token"), **_errors(400, 401, 403, 404)},
        },
        "get": {
            "operationId": "listTokens",
            "summary": "A repository's unexpired tokens, without secrets",
            "tags": ["tokens"],
            "responses": {"200": _json(_ref("TokenList"), "the tokens"), **_errors(401, 403, 404)},
        },
    },
    "/tokens/{id}": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "delete": {
            "operationId": "revokeToken",
            "summary": "Revoke a token (effective on the next request)",
            "tags": ["tokens"],
            "responses": {"204": {"description": "revoked"}, **_errors(401, 403, 404)},
        },
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This description",
            "tags": ["meta"],
            "security": [{}],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
        }
    },
}

_COMPONENTS_BASE: dict[str, Any] = {
    "parameters": {
        "ns": {"name": "ns", "in": "path", "required": True, "schema": _ref("Name")},
        "name": {"name": "name", "in": "path", "required": True, "schema": _ref("Name")},
    },
    "responses": {"Error": _json(_ref("Error"), "an error in the SPEC shape")},
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "description": "a gs_ token"},
        "basic": {"type": "http", "scheme": "basic", "description": "any user name, the token as password"},
    },
}


def document(server_url: str) -> dict[str, Any]:
    """The whole description, with every route group's fragment merged in."""
    from gitserver import fork_api, history_api, snapshot_api

    paths: dict[str, Any] = copy.deepcopy(CONTROL_PATHS)
    schemas: dict[str, Any] = copy.deepcopy(CONTROL_SCHEMAS)
    for group in (history_api, fork_api, snapshot_api):
        for path, item in getattr(group, "OPENAPI_PATHS", {}).items():
            paths.setdefault(path, {}).update(copy.deepcopy(item))
        schemas.update(copy.deepcopy(getattr(group, "OPENAPI_SCHEMAS", {})))
    components = copy.deepcopy(_COMPONENTS_BASE)
    components["schemas"] = schemas
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitserver",
            "version": "1",
            "description": "Control plane, read/time-travel and write API of a Git host where every "
            'repository is an actor. Errors are {"error": {"code", "message"}}.',
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": components,
    }
