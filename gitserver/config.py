"""Server settings: one frozen dataclass built from CLI flags, ``GITSERVER_*`` variables
and embedded defaults, in that order of precedence.

Rules:
- Every setting has a flag and an environment variable (``--idle-timeout`` reads
  ``GITSERVER_IDLE_TIMEOUT``), except the admin token, which is read from
  ``GITSERVER_ADMIN_TOKEN`` only: a secret on the command line leaks through ``ps``.
- Defaults are embedded so a bare ``gitserver serve`` works: data in ``./data``, the KV
  store at ``sqlite:///<data>/kv.sqlite``, blobs at ``file://<data>/blobs`` (the data dir
  made absolute, so both URLs carry an absolute path).
- Bad values raise ``ConfigError`` with the flag's name; nothing is validated later.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has an unusable value."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    blob_store: str = ""  # "" = file://<data_dir>/blobs
    kv: str = ""  # "" = sqlite:///<data_dir>/kv.sqlite
    tls_cert: Path | None = None
    tls_key: Path | None = None
    durability: str = "local"  # local | remote
    idle_timeout: float = 60.0  # seconds an actor stays awake without traffic
    cold_after: float = (
        30 * 86400.0
    )  # seconds unused before a repo's local file is dropped (gitserver.tiering)
    snapshot_after_bytes: int = 64 << 20  # new pack bytes since the last snapshot that trigger one
    snapshot_after_segments: int = 200  # shipped segments since the last snapshot that trigger one
    metrics_token: str | None = None
    admin_token: str | None = None  # GITSERVER_ADMIN_TOKEN only
    max_resident: int = 1000  # live actors before the least recently used is evicted
    worker_threads: int = 8  # concurrent blocking jobs (SQLite, zlib, hashing)
    max_api_body: int = 1 << 20  # bytes of a JSON request body
    public_url: str | None = None  # base of "remote" in RepoInfo; else from the Host header
    # Limits on hostile or broken clients (docs/security.md "Limits").
    max_pack_size: int = 2 << 30  # bytes of one pushed pack
    max_object_size: int = 512 << 20  # bytes of one object (inflated) in a pushed pack
    max_refs_per_push: int = 100_000  # ref updates in one receive-pack request
    max_pkt_lines: int = 500_000  # pkt-lines in one git request (wants, haves, commands)
    body_timeout: float = 60.0  # seconds a request body may send nothing before it is cut off
    max_client_requests: int = 64  # requests in flight per client IP; more get 429
    access_log: bool = True

    @property
    def kv_url(self) -> str:
        return self.kv or f"sqlite://{self.data_dir / 'kv.sqlite'}"

    @property
    def blob_store_url(self) -> str:
        return self.blob_store or f"file://{self.data_dir / 'blobs'}"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be 0..65535")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


def _durability(text: str) -> str:
    if text not in ("local", "remote"):
        raise ValueError("must be local or remote")
    return text


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        scheme, sep, _ = text.partition("://")
        if not sep or scheme not in schemes:
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        return text

    return parse


# setting name -> parser of its text form (flags and env vars share it)
_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "port": _port,
    "data_dir": Path,
    "blob_store": _url(("file", "s3")),
    "kv": _url(("sqlite", "redis")),
    "tls_cert": Path,
    "tls_key": Path,
    "durability": _durability,
    "idle_timeout": _positive_float,
    "cold_after": _positive_float,
    "snapshot_after_bytes": _positive_int,
    "snapshot_after_segments": _positive_int,
    "metrics_token": str,
    "admin_token": str,
    "max_resident": _positive_int,
    "worker_threads": _positive_int,
    "max_api_body": _positive_int,
    "public_url": str,
    "max_pack_size": _positive_int,
    "max_object_size": _positive_int,
    "max_refs_per_push": _positive_int,
    "max_pkt_lines": _positive_int,
    "body_timeout": _positive_float,
    "max_client_requests": _positive_int,
    "access_log": _bool,
}
_ENV_ONLY = {"admin_token"}

# --help text of settings that have one (the env var and the default are appended)
_HELP: dict[str, str] = {
    "max_pack_size": "bytes of one pushed pack; a bigger push is refused, nothing stored",
    "max_object_size": "bytes of one object in a pushed pack (inflated)",
    "max_refs_per_push": "ref updates in one push",
    "max_pkt_lines": "pkt-lines in one git request (wants, haves, ref updates)",
    "body_timeout": "seconds a request body may send nothing before the request is cut off",
    "max_client_requests": "requests in flight per client IP; more get 429 with Retry-After",
}


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per setting (default None, so unset flags fall back to env)."""
    for name in _PARSERS:
        if name in _ENV_ONLY:
            continue
        text = _HELP.get(name)
        if text is not None:
            text = f"{text} (env GITSERVER_{name.upper()}, default {getattr(Settings(), name)})"
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, default=None, metavar="VALUE", help=text)


def add_data_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", dest="data_dir", default=None, metavar="DIR")


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting: flag (if not None), else ``GITSERVER_<NAME>``, else default.

    ``flags`` maps setting names to raw strings (an ``argparse`` namespace's ``vars``);
    unknown keys are ignored. Raises ConfigError naming the bad flag/variable."""
    flags = flags or {}
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.name
        raw = flags.get(name)
        source = "--" + name.replace("_", "-")
        if raw is None:
            source = "GITSERVER_" + name.upper()
            raw = env.get(source)
            if raw == "":
                raw = None
        if raw is None:
            continue
        try:
            values[name] = _PARSERS[name](raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from None
    settings = Settings(**values)
    data_dir = settings.data_dir.expanduser().resolve()
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    return replace(settings, data_dir=data_dir)
