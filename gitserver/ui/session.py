"""Browser sessions for the web UI: a random session id in a cookie, the token server-side.

Rules (why a session id and not the token in the cookie):
- The cookie holds only ``gs_session=<session id>`` (32 random bytes, urlsafe base64):
  ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no cross-site request carries it),
  ``Path=/ui`` (never sent to ``/git`` or ``/api``), ``Secure`` when the server speaks TLS.
  A leaked cookie is therefore a UI session, not a Git/API credential, and it dies at
  logout: the server forgets the session.
- The KV store holds ``ui/sessions/<sha256(session id)>`` -> JSON with the token *sealed*
  by a keystream derived from the session id (HMAC-SHA256 in counter mode) and its
  SHA-256 to check the unsealing. Someone who reads the KV store (a backup, Redis) finds
  neither a usable session id nor a token; someone with only the cookie finds no token.
- Every request unseals the token and verifies it through ``TokenStore.verify``, so a
  revoked or expired token ends its sessions on the next request, as for the API.
- A session lives at most ``SESSION_TTL`` and never past its token's expiry (KV TTL).
- CSRF: each session has a random ``csrf`` value that every form carries as a hidden
  field; POSTs compare it in constant time. The login form (no session yet) uses a
  double-submit cookie ``gs_login`` instead. SameSite=Strict and an Origin check in
  ``routes`` are extra layers, not the only one.

Synchronous (the KV is); call through a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from gitserver.clock import now_us
from gitserver.tokens import TokenInfo, TokenStore, token_hash
from storage.kv import KV

COOKIE = "gs_session"
LOGIN_COOKIE = "gs_login"
COOKIE_PATH = "/ui"
SESSION_TTL = 12 * 3600  # seconds
_KEY_PREFIX = "ui/sessions/"


@dataclass(frozen=True, slots=True)
class Session:
    """A live UI session: the caller's token (verified just now), the form CSRF value, and
    the token secret itself (memory only, for server-side calls into the REST API)."""

    token: TokenInfo
    csrf: str
    secret: str = field(repr=False)


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _key(session_id: str) -> str:
    return _KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _keystream(session_id: str, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hmac.new(session_id.encode(), b"gitserver-ui-seal:%d" % counter, hashlib.sha256).digest()
        counter += 1
    return bytes(out[:length])


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def create(kv: KV, tokens: TokenStore, secret: str) -> tuple[str, Session] | None:
    """Start a session for the token ``secret``; None when the token is not live.

    Returns the new session id (for the cookie) and the session."""
    info = tokens.verify(secret)
    if info is None:
        return None
    session_id = new_secret()
    ttl = SESSION_TTL
    if info.expires_at is not None:
        ttl = min(ttl, max(1, (info.expires_at - now_us()) // 1_000_000))
    raw = secret.encode()
    csrf = new_secret()
    record = {
        "sealed": _xor(raw, _keystream(session_id, len(raw))).hex(),
        "token_hash": token_hash(secret),
        "csrf": csrf,
        "created_at": now_us(),
    }
    kv.set(_key(session_id), json.dumps(record).encode(), ttl=ttl)
    return session_id, Session(info, csrf, secret)


def load(kv: KV, tokens: TokenStore, session_id: str) -> Session | None:
    """The live session for a cookie value; None when unknown, expired, or its token is
    no longer valid (then the session is dropped too)."""
    if not session_id or len(session_id) > 100:
        return None
    raw = kv.get(_key(session_id))
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        sealed = bytes.fromhex(record["sealed"])
        secret_bytes = _xor(sealed, _keystream(session_id, len(sealed)))
        secret = secret_bytes.decode()
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(token_hash(secret), str(record.get("token_hash", ""))):
        return None
    info = tokens.verify(secret)
    if info is None:
        kv.delete(_key(session_id))
        return None
    return Session(info, str(record["csrf"]), secret)


def destroy(kv: KV, session_id: str) -> None:
    """Forget a session (logout). Unknown ids are fine."""
    if session_id and len(session_id) <= 100:
        kv.delete(_key(session_id))


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two CSRF values; missing or empty never matches."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` header for the UI (``max_age=0`` clears the cookie)."""
    parts = [f"{name}={value}", f"Path={COOKIE_PATH}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode()


def parse_cookies(header: str | None) -> dict[str, str]:
    """Cookie header -> {name: value}; the first occurrence of a name wins."""
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip()
    return out
