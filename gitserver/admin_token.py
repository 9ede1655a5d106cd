"""The bootstrap admin token (SPEC "Admin token").

Rules:
- ``GITSERVER_ADMIN_TOKEN`` set: that value is the admin token; no file is written.
- Otherwise ``<data-dir>/admin-token`` holds it. On first start it is created with a fresh
  token, mode 0600 from the moment it exists (written to a 0600 temp file, fsynced,
  renamed). Later starts read it back. Only its path is logged, never the token.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gitserver.config import Settings
from gitserver.tokens import generate_secret

log = logging.getLogger("gitserver")


def load_or_create(settings: Settings) -> str:
    """The bootstrap admin token for ``settings``; creates the file when needed."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.admin_token_path
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    secret = generate_secret()
    _write_private(path, secret + "\n")
    log.warning("created the admin token; it is in %s (mode 0600)", path)
    return secret


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask could only have narrowed it; make it exact
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
