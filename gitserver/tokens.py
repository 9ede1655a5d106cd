"""Access tokens: minting, verification and revocation, kept in the KV store as hashes.

Rules:
- A token is ``gs_`` + 40 base62 characters from ``secrets``. The secret is shown once,
  at minting; the KV store holds only its SHA-256, with id, scope, repo (a catalog repo
  id, or ``*`` for admin), created_at, expires_at and revoked.
- Scopes nest: ``admin`` > ``write`` > ``read``. An admin token's repo is ``*``.
- TTL: default 86400 s, allowed 60 .. 31,536,000 s. KV entries carry the same TTL, so an
  expired token disappears by itself.
- Verification reads the KV store on every call (no cache), so a revocation is effective
  on the next request. Hashes are compared with ``hmac.compare_digest``.
- Bootstrap admin tokens (``GITSERVER_ADMIN_TOKEN`` or the ``admin-token`` file) are held
  in memory as hashes, never in the KV store; they do not expire and cannot be revoked
  through the API (change the variable, or delete the file and restart).

KV layout: ``tokens/hash/<sha256 hex>`` -> JSON record; ``tokens/id/<id>`` -> hash;
``tokens/repo/<repo id>/<id>`` -> hash (for listing a repo's tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from gitserver.clock import now_us, rfc3339
from storage.kv import KV

PREFIX = "gs_"
SECRET_LEN = 40
_ALPHABET = string.digits + string.ascii_letters
SCOPES = ("read", "write", "admin")
_RANK = {scope: i for i, scope in enumerate(SCOPES)}
ADMIN_REPO = "*"
DEFAULT_TTL = 86_400
MIN_TTL = 60
MAX_TTL = 31_536_000
BOOTSTRAP_ID = "bootstrap-admin"


class TokenError(ValueError):
    """A mint request is invalid (bad scope, TTL out of range)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    scope: str
    repo: str  # catalog repo id, or "*" for admin
    created_at: int  # UTC microseconds
    expires_at: int | None  # None only for bootstrap admin tokens
    revoked: bool = False

    def public_json(self, repo_name: str | None = None) -> dict[str, object]:
        """The API view (no hash, no secret); ``repo_name`` replaces the internal repo id."""
        return {
            "id": self.id,
            "scope": self.scope,
            "repo": repo_name if repo_name is not None else self.repo,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "revoked": self.revoked,
        }


def scope_allows(have: str, need: str) -> bool:
    """True when a token of scope ``have`` may do what needs scope ``need``."""
    return _RANK[have] >= _RANK[need]


def generate_secret() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LEN))


def looks_like_token(secret: str) -> bool:
    body = secret[len(PREFIX) :]
    return secret.startswith(PREFIX) and len(body) == SECRET_LEN and all(c in _ALPHABET for c in body)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_ttl(ttl: int) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        raise TokenError(f"ttl_seconds must be an integer in {MIN_TTL}..{MAX_TTL}")
    return ttl


class TokenStore:
    """Tokens on a ``storage.kv.KV``. Synchronous (the KV is); call through a thread."""

    def __init__(self, kv: KV, bootstrap_admin: Iterable[str] = ()) -> None:
        self.kv = kv
        self._bootstrap = [token_hash(s) for s in bootstrap_admin if s]

    def mint(self, scope: str, repo: str, ttl: int = DEFAULT_TTL) -> tuple[TokenInfo, str]:
        """Create a token; returns its record and the secret (shown once).

        ``repo`` is a catalog repo id, or ``*`` with scope ``admin``. Raises TokenError."""
        if scope not in SCOPES:
            raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
        if (scope == "admin") != (repo == ADMIN_REPO):
            raise TokenError("admin tokens, and only they, are for every repository")
        check_ttl(ttl)
        secret = generate_secret()
        digest = token_hash(secret)
        now = now_us()
        info = TokenInfo(
            id=secrets.token_hex(8), scope=scope, repo=repo, created_at=now, expires_at=now + ttl * 1_000_000
        )
        record = json.dumps({**asdict(info), "hash": digest}).encode()
        # the record first: an index entry never points at nothing for long
        self.kv.set(f"tokens/hash/{digest}", record, ttl=ttl)
        self.kv.set(f"tokens/id/{info.id}", digest.encode(), ttl=ttl)
        self.kv.set(f"tokens/repo/{repo}/{info.id}", digest.encode(), ttl=ttl)
        return info, secret

    def verify(self, secret: str) -> TokenInfo | None:
        """The live token for ``secret``; None when unknown, malformed, expired or revoked."""
        digest = token_hash(secret)
        for known in self._bootstrap:
            if hmac.compare_digest(known, digest):
                return TokenInfo(
                    id=BOOTSTRAP_ID, scope="admin", repo=ADMIN_REPO, created_at=0, expires_at=None
                )
        if not looks_like_token(secret):
            return None
        raw = self.kv.get(f"tokens/hash/{digest}")
        if raw is None:
            return None
        stored_hash, info = _decode(raw)
        if not hmac.compare_digest(stored_hash, digest):
            return None
        if info.revoked or (info.expires_at is not None and info.expires_at <= now_us()):
            return None
        return info

    def get(self, token_id: str) -> TokenInfo | None:
        digest = self.kv.get(f"tokens/id/{token_id}")
        if digest is None:
            return None
        raw = self.kv.get(f"tokens/hash/{digest.decode()}")
        return None if raw is None else _decode(raw)[1]

    def list_for_repo(self, repo: str) -> list[TokenInfo]:
        """Every unexpired token of ``repo`` (revoked ones included), oldest first."""
        out: list[TokenInfo] = []
        for _key, digest in self.kv.scan(f"tokens/repo/{repo}/"):
            raw = self.kv.get(f"tokens/hash/{digest.decode()}")
            if raw is not None:
                out.append(_decode(raw)[1])
        out.sort(key=lambda t: (t.created_at, t.id))
        return out

    def revoke(self, token_id: str) -> TokenInfo | None:
        """Mark a token revoked (kept, shown as revoked, until it expires).

        Returns the revoked token, or None when there is no such live token. Idempotent."""
        digest = self.kv.get(f"tokens/id/{token_id}")
        if digest is None:
            return None
        key = f"tokens/hash/{digest.decode()}"
        while True:
            raw = self.kv.get(key)
            if raw is None:
                return None
            stored_hash, info = _decode(raw)
            if info.revoked:
                return info
            revoked = TokenInfo(**{**asdict(info), "revoked": True})
            remaining = max(1.0, ((info.expires_at or 0) - now_us()) / 1_000_000)
            new = json.dumps({**asdict(revoked), "hash": stored_hash}).encode()
            if self.kv.compare_and_set(key, raw, new, ttl=remaining):
                return revoked

    def revoke_repo(self, repo: str) -> int:
        """Delete every token of ``repo`` (the repo is being deleted); returns how many."""
        count = 0
        for key, digest in self.kv.scan(f"tokens/repo/{repo}/"):
            token_id = key.rsplit("/", 1)[1]
            self.kv.delete(f"tokens/hash/{digest.decode()}")
            self.kv.delete(f"tokens/id/{token_id}")
            self.kv.delete(key)
            count += 1
        return count


def _decode(raw: bytes) -> tuple[str, TokenInfo]:
    data = json.loads(raw)
    digest = data.pop("hash")
    return digest, TokenInfo(**data)
