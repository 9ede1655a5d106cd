"""Errors raised by the storage layer. One root, ``StorageError``; each carries its facts."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error raised by storage."""


class GitUserError(StorageError):
    """An error whose message is meant for the git user (shown by the client)."""


class PackFormatError(GitUserError):
    """A pushed pack is malformed: truncated, bad header, bad zlib, wrong trailer."""


class ObjectCorrupt(GitUserError):
    """An object failed a check (hash, size, or parse)."""

    def __init__(self, message: str, oid: bytes | None = None) -> None:
        super().__init__(message)
        self.oid = oid


class MissingObject(GitUserError):
    """An object that should be present is not (connectivity failure, bad want)."""

    def __init__(self, oid: bytes, context: str = "") -> None:
        super().__init__(f"missing object {oid.hex()}{' ' + context if context else ''}")
        self.oid = oid


class RefConflict(StorageError):
    """A compare-and-swap ref update found a different old value."""

    def __init__(self, ref: str, expected: bytes | None, actual: bytes | None) -> None:
        super().__init__(
            f"ref {ref} is at {actual.hex() if actual else 'nothing'}, expected {expected.hex() if expected else 'nothing'}"
        )
        self.ref = ref
        self.expected = expected
        self.actual = actual


class MemoryLimitExceeded(StorageError):
    """An operation would exceed the actor's memory budget."""


class LimitExceeded(GitUserError):
    """A configured limit (pack size, object size, ref count) was exceeded."""
