"""Errors of the wire protocol layer.

Rules:
- One root, ``ProtocolError``. ``RemoteProtocolError`` means the peer (the git client)
  sent something illegal; ``LocalProtocolError`` means we were asked to produce something
  illegal (a bug on our side, or a value that cannot be framed).
- Every error carries ``git_message``: a one-line text safe to show to the git user in an
  ``ERR`` pkt-line or on side-band channel 3, and ``http_status``: the status to use when
  no response has been started yet.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error raised by the smart_http core."""

    http_status: int = 400

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status

    @property
    def git_message(self) -> str:
        # One line, printable: git shows it after "remote error: ".
        text = str(self).replace("\r", " ").replace("\n", " ")
        return "".join(ch if ch.isprintable() else "?" for ch in text)[:1000]


class RemoteProtocolError(ProtocolError):
    """The client sent bytes that violate the protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry."""

    http_status = 500


class NotOurRef(RemoteProtocolError):
    """A want names an object the client may not ask for."""

    def __init__(self, oid_hex: str) -> None:
        super().__init__(f"upload-pack: not our ref {oid_hex}")
        self.oid_hex = oid_hex


class UnsupportedRequest(RemoteProtocolError):
    """A well-formed request for something this server does not do."""
