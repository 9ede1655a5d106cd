"""Capabilities we advertise and the parsing of what a client asks for.

Rules:
- A server must not advertise what it does not understand, and a client may only ask for
  what was advertised (gitprotocol-capabilities). So asking for an unknown capability, or
  for both side-band and side-band-64k, raises RemoteProtocolError.
- ``agent``, ``session-id`` and ``object-format`` carry values; ``object-format`` must be
  ``sha1``, the only hash this server speaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from smart_http.errors import RemoteProtocolError

AGENT: Final = "gitserver/0.1"

UPLOAD_PACK_V0: Final = (
    "multi_ack",
    "thin-pack",
    "side-band",
    "side-band-64k",
    "ofs-delta",
    "shallow",
    "deepen-since",
    "deepen-not",
    "deepen-relative",
    "no-progress",
    "include-tag",
    "multi_ack_detailed",
    "allow-tip-sha1-in-want",
    "allow-reachable-sha1-in-want",
    "no-done",
    "filter",
)

RECEIVE_PACK_V0: Final = (
    "report-status",
    "report-status-v2",
    "delete-refs",
    "side-band-64k",
    "quiet",
    "atomic",
    "ofs-delta",
    "push-options",
)

_VALUED: Final = frozenset({"agent", "session-id", "object-format"})


@dataclass(slots=True)
class ClientCaps:
    """Capabilities a client asked for on its first want or command line."""

    names: frozenset[str] = field(default_factory=frozenset)
    agent: str | None = None
    session_id: str | None = None

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def sideband_max(self) -> int | None:
        """Largest side-band data packet the client accepts, None without side-band."""
        if "side-band-64k" in self.names:
            return 65515
        if "side-band" in self.names:
            return 995
        return None


def parse_client_caps(text: bytes, allowed: tuple[str, ...]) -> ClientCaps:
    """Parse a space separated capability list. Raises RemoteProtocolError."""
    try:
        words = text.decode("ascii").split()
    except UnicodeDecodeError:
        raise RemoteProtocolError("capability list is not ASCII") from None
    names: set[str] = set()
    agent = session_id = None
    for word in words:
        key, eq, value = word.partition("=")
        if key in _VALUED:
            if not eq or not value:
                raise RemoteProtocolError(f"capability {key} needs a value")
            if key == "agent":
                agent = value
            elif key == "session-id":
                session_id = value
            elif value != "sha1":
                raise RemoteProtocolError(f"unsupported object-format {value}")
            continue
        if eq or key not in allowed:
            raise RemoteProtocolError(f"unknown capability {word!r}")
        names.add(key)
    if "side-band" in names and "side-band-64k" in names:
        raise RemoteProtocolError("client requested both side-band and side-band-64k")
    return ClientCaps(frozenset(names), agent, session_id)


def v0_capability_line(service: str, *, head_target: str | None, session_id: str | None = None) -> bytes:
    """The capability list sent after NUL on the first advertised ref."""
    caps = list(UPLOAD_PACK_V0 if service == "git-upload-pack" else RECEIVE_PACK_V0)
    if head_target is not None and service == "git-upload-pack":
        caps.append(f"symref=HEAD:{head_target}")
    caps.append("object-format=sha1")
    if session_id:
        caps.append(f"session-id={session_id}")
    caps.append(f"agent={AGENT}")
    return " ".join(caps).encode()


def v2_capabilities(*, object_info: bool, session_id: str | None = None) -> list[str]:
    """Lines of the v2 capability advertisement after ``version 2``."""
    caps = [
        f"agent={AGENT}",
        "ls-refs=unborn",
        "fetch=shallow wait-for-done filter ref-in-want sideband-all",
        "server-option",
        "object-format=sha1",
    ]
    if object_info:
        caps.append("object-info")
    if session_id:
        caps.append(f"session-id={session_id}")
    return caps
