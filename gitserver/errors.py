"""API errors: one exception type that knows its SPEC code, HTTP status and JSON body.

Rules:
- Every error a client sees has the body ``{"error": {"code": CODE, "message": TEXT}}``
  and one of the SPEC codes below, each with its usual HTTP status (a route that exists
  for another method answers 405 with code INVALID_INPUT: the SPEC list is closed).
- Handlers raise ``ApiError``; the application turns it into a response. Anything else
  that escapes a handler becomes ``500 INTERNAL_ERROR`` with a generic message (the
  details go to the log, not to the client).
- 401 responses carry ``WWW-Authenticate: Basic realm="gitserver"`` so git asks its
  credential helper.
"""

from __future__ import annotations

import json

STATUS: dict[str, int] = {
    "INVALID_INPUT": 400,
    "INVALID_REPO_NAME": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "CONFLICT": 409,
    "TOO_LARGE": 413,
    "MEMORY_LIMIT": 507,
    "INTERNAL_ERROR": 500,
}

WWW_AUTHENTICATE = (b"www-authenticate", b'Basic realm="gitserver"')


class ApiError(Exception):
    """An error answered to the client; ``status`` defaults to the code's status."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS[code]
        extra = list(headers)
        if self.status == 401 and WWW_AUTHENTICATE not in extra:
            extra.append(WWW_AUTHENTICATE)
        self.headers = tuple(extra)

    def body(self) -> bytes:
        return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()


def invalid_input(message: str) -> ApiError:
    return ApiError("INVALID_INPUT", message)


def not_found(message: str = "not found") -> ApiError:
    return ApiError("NOT_FOUND", message)


def unauthorized(message: str = "authentication required") -> ApiError:
    return ApiError("UNAUTHORIZED", message)


def forbidden(message: str) -> ApiError:
    return ApiError("FORBIDDEN", message)
