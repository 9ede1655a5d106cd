"""Forks and imports: POST .../fork and POST .../import.

Placeholder route group: register adds this group's routes to the API router, and
OPENAPI_PATHS / OPENAPI_SCHEMAS describe them for /api/v1/openapi.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitserver.api import Api
    from gitserver.web import Router

OPENAPI_PATHS: dict[str, Any] = {}
OPENAPI_SCHEMAS: dict[str, Any] = {}


def register(router: Router, api: Api) -> None:
    """Add this group's routes (none yet)."""
