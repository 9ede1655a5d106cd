"""Who is calling, and may they do this: credentials from the request, then a decision.

Rules (SPEC "Auth", with the choices SPEC leaves open):
- Credentials: HTTP Basic with any non-empty user name and the token as password, or
  ``Authorization: Bearer <token>`` (``token <token>`` too, as GitHub accepts). Basic with
  an empty password and a ``gs_`` token as user name is accepted as well (some clients
  put the token there).
- No credentials = anonymous. Credentials that are malformed, unknown, expired or
  revoked = ``401`` with ``WWW-Authenticate: Basic realm="gitserver"``; anonymous calls
  that need a token get the same 401, so git asks its credential helper.
- A valid token without the right scope, or for another repository, gets ``403``.
  SPEC asks for 403 where GitHub would answer 404 for a private repo the token cannot
  see; a repo-scoped token asking for a repo that does not exist also gets 403, so a
  token cannot probe which repos exist. Only admin tokens see 404 for missing repos.
- Public repos allow anonymous read (clone, fetch, read API). Writes to a ``read_only``
  repo are refused with 403 for every token, admin included.
"""

from __future__ import annotations

import base64
import binascii

import trio

from gitserver.catalog import RepoRecord
from gitserver.errors import forbidden, not_found, unauthorized
from gitserver.tokens import ADMIN_REPO, TokenInfo, TokenStore, looks_like_token, scope_allows


def credentials(header: str | None) -> str | None:
    """The token in an ``Authorization`` header; None when there is no header.

    Raises ApiError(UNAUTHORIZED) when the header is there but unusable."""
    if header is None:
        return None
    kind, _, rest = header.strip().partition(" ")
    kind = kind.lower()
    rest = rest.strip()
    if kind in ("bearer", "token") and rest:
        return rest
    if kind == "basic" and rest:
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized("malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if sep and user and password:
            return password
        if user and not password and looks_like_token(user):
            return user
        raise unauthorized("Basic credentials need a user name and the token as password")
    raise unauthorized("unsupported Authorization scheme (use Basic or Bearer)")


async def authenticate(
    header: str | None, tokens: TokenStore, limiter: trio.CapacityLimiter
) -> TokenInfo | None:
    """The caller's live token, or None for anonymous. Raises 401 for bad credentials."""
    secret = credentials(header)
    if secret is None:
        return None
    info = await trio.to_thread.run_sync(tokens.verify, secret, limiter=limiter)
    if info is None:
        raise unauthorized("invalid, expired or revoked token")
    return info


def require_admin(token: TokenInfo | None) -> TokenInfo:
    """Allow only admin tokens: 401 for anonymous, 403 for other tokens."""
    if token is None:
        raise unauthorized("this endpoint needs an admin token")
    if token.scope != "admin":
        raise forbidden("this endpoint needs an admin token")
    return token


def require_repo(token: TokenInfo | None, need: str, repo: RepoRecord | None, what: str) -> RepoRecord:
    """Allow ``need`` (``read`` or ``write``) on ``repo`` (None = no such repo).

    Returns the repo. Raises 401 / 403 / 404 as the module header describes; ``what``
    names the repo in messages (``ns/name``)."""
    if need == "read" and repo is not None and repo.public:
        return repo
    if token is None:
        raise unauthorized(f"authentication required for {what}")
    if token.repo == ADMIN_REPO and token.scope == "admin":
        if repo is None:
            raise not_found(f"repository {what} not found")
    elif repo is None or token.repo != repo.id:
        raise forbidden(f"token is not valid for repository {what}")
    elif not scope_allows(token.scope, need):
        raise forbidden(f"token scope {token.scope!r} does not allow {need}")
    if need == "write" and repo.read_only:
        raise forbidden(f"repository {what} is read-only")
    return repo
