"""The blob store contract: named byte objects (snapshots, shipped packs, repo manifests).

Rules:
- Keys are '/'-separated relative names: no empty segment (so no leading, trailing or
  doubled '/'), no '.' or '..' segment, no NUL, at most 1024 UTF-8 bytes. Anything else
  raises ``InvalidKey`` before any I/O. ``list`` prefixes follow the same rules, except that
  a prefix may be empty or end with '/'.
- Every object has an opaque ETag string; a write that changes the content changes it.
  ETags are compared as exact strings: pass back what ``put``/``head``/``list`` returned.
- ``put`` replaces an object atomically: readers see the old bytes or the new bytes, never
  a mix. Conditions: ``if_match=ETAG`` writes only if the object exists with that ETag;
  ``if_none_match=True`` writes only if no object exists (create-only). A lost condition
  raises ``PreconditionFailed(key)`` and changes nothing. Of several writers racing on the
  same condition, at most one wins, also across processes and (for S3) across machines.
- ``get`` raises ``NotFound`` at call time when the key is missing, then streams chunks of
  bounded size; ``get_range`` returns bytes ``[start, end)`` clamped to the object's size.
- ``list`` yields ``(key, size, etag)`` sorted by key (code point order, which is UTF-8 byte
  order, as S3 lists).
- ``delete`` is idempotent: deleting a missing key is not an error.
- Methods are synchronous, blocking and thread-safe (async code calls them through
  ``trio.to_thread.run_sync``). Backend failures raise ``BlobStoreError``.

Backends: ``storage.blob_file`` (``file:///PATH``) and ``storage.blob_s3``
(``s3://BUCKET/PREFIX?endpoint=URL&region=R``, credentials from boto3's standard chain).
``open_blobstore`` picks one from a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from storage.errors import StorageError

MAX_KEY_BYTES = 1024

# What ``put`` accepts: bytes-like, a binary file object (anything with ``read(n)``), or an
# iterable of bytes chunks (e.g. a generator streaming a pack).
BlobData = bytes | bytearray | memoryview | Iterable[bytes]


class BlobStoreError(StorageError):
    """The blob store failed (network, permissions, disk), or refused the request."""


class InvalidKey(BlobStoreError, ValueError):
    """A key (or list prefix) breaks the key rules."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid blob key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class NotFound(BlobStoreError):
    """No object under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob {key!r}")
        self.key = key


class PreconditionFailed(BlobStoreError):
    """A conditional ``put`` lost: the object's state did not match ``if_match``/``if_none_match``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"precondition failed for blob {key!r}")
        self.key = key


def _check_segments(original: str, segments: list[str]) -> None:
    for seg in segments:
        if seg == "":
            raise InvalidKey(original, "empty segment")
        if seg in (".", ".."):
            raise InvalidKey(original, f"{seg!r} segment")


def _check_text(key: str) -> None:
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "not a str")
    if "\x00" in key:
        raise InvalidKey(key, "NUL character")
    if key.startswith("/"):
        raise InvalidKey(key, "absolute")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(key, "not encodable as UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(key, f"longer than {MAX_KEY_BYTES} bytes")


def check_key(key: str) -> str:
    """Return ``key`` if it follows the key rules; raise ``InvalidKey`` otherwise."""
    _check_text(key)
    if key == "":
        raise InvalidKey(key, "empty")
    _check_segments(key, key.split("/"))
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid list prefix (a key, a key plus '/', a partial last
    segment, or ''); raise ``InvalidKey`` otherwise."""
    _check_text(prefix)
    if prefix == "":
        return prefix
    segments = prefix.split("/")
    # the last segment may be partial ('' after a trailing '/', or '.' of a name like '.x')
    _check_segments(prefix, segments[:-1])
    return prefix


def iter_chunks(data: BlobData, size: int) -> Iterator[bytes]:
    """The bytes of ``data`` as non-empty chunks of at most ``size`` bytes."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    read: Callable[[int], bytes] | None = getattr(data, "read", None)
    if read is not None:
        while True:
            chunk = read(size)
            if not chunk:
                return
            yield from iter_chunks(chunk, size) if len(chunk) > size else (bytes(chunk),)
        return
    for piece in data:
        if piece:
            yield from iter_chunks(piece, size) if len(piece) > size else (bytes(piece),)


@runtime_checkable
class BlobStore(Protocol):
    def put(
        self, key: str, data: BlobData, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Store ``data`` under ``key`` atomically and return the new ETag.

        ``data`` is streamed (memory stays bounded whatever its size). ``if_match`` and
        ``if_none_match`` are exclusive (ValueError if both). Raises ``PreconditionFailed``
        when the condition does not hold, ``InvalidKey``, ``BlobStoreError``."""
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """The object's bytes as chunks. Raises ``NotFound`` (at call time) when missing.

        Close the iterator (or exhaust it) to release the underlying file or connection."""
        ...

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object, clamped to its size (so possibly shorter or
        empty). Requires ``0 <= start <= end`` (ValueError). Raises ``NotFound``."""
        ...

    def head(self, key: str) -> tuple[int, str] | None:
        """``(size, etag)`` of the object, or None when missing."""
        ...

    def list(self, prefix: str = "") -> Iterator[tuple[str, int, str]]:
        """Every ``(key, size, etag)`` whose key starts with ``prefix`` (plain string prefix,
        not only at '/' boundaries), sorted by key."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present. Idempotent."""
        ...

    def close(self) -> None:
        """Release resources. Idempotent; the store is unusable afterwards."""
        ...


def _open_file(url: str) -> BlobStore:
    from storage.blob_file import FileBlobStore

    return FileBlobStore.from_url(url)


def _open_s3(url: str) -> BlobStore:
    from storage.blob_s3 import S3BlobStore

    return S3BlobStore.from_url(url)


# scheme -> opener(whole URL)
_BACKENDS: dict[str, Callable[[str], BlobStore]] = {
    "file": _open_file,
    "s3": _open_s3,
}


def open_blobstore(url: str) -> BlobStore:
    """Open the store named by ``url``: ``file:///abs/path`` (or ``file://relative/path``),
    or ``s3://BUCKET/PREFIX?endpoint=URL&region=R`` (endpoint and region optional).
    Raises ValueError for an unknown scheme or a malformed URL."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _BACKENDS:
        raise ValueError(f"unsupported blob store URL {url!r} (known: {', '.join(sorted(_BACKENDS))})")
    return _BACKENDS[scheme](url)
