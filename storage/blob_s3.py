"""The S3 backend of the blob store contract (``storage.blobstore.BlobStore``), on boto3.

Rules and how it works:
- URL ``s3://BUCKET/PREFIX?endpoint=URL&region=R``: every key is stored as ``PREFIX/key``.
  Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles); they are never part of the URL.
- Path-style addressing (``endpoint/bucket/key``), SigV4, botocore's "standard" retry mode
  (exponential backoff with jitter on throttling, 5xx and connection errors).
- ``put`` streams: data up to one part (``part_size``, 8 MiB) goes in one PutObject; larger
  data goes in a multipart upload, one part (plus one 1 MiB chunk of lookahead) in memory at
  a time, aborted on any failure so no parts linger. Every request body carries a Content-MD5 the
  server checks.
- Conditions are the server's: ``IfMatch`` / ``IfNoneMatch='*'`` on PutObject, and on
  CompleteMultipartUpload for multipart uploads (supported by AWS S3 since 2024 and by
  SeaweedFS; a server that ignores them would silently break fencing, which is why the
  contract suite runs against a real server). A ``head`` before the upload fails fast on a
  condition that is already lost, so no bytes are sent in vain; the server's check at
  commit time is what decides. 412 and 409 (AWS's "conditional request conflict" between
  racing writers) both raise ``PreconditionFailed``.
- Caveat: if a conditional request succeeds but its response is lost, botocore's retry
  sees 412 and the caller gets ``PreconditionFailed`` for a write that happened. Callers
  fencing with ETags must re-read (``head``) after a ``PreconditionFailed``.
- ``get`` issues the GetObject at call time (so ``NotFound`` is raised there) and streams
  the body in 1 MiB chunks.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.blobstore import (
    BlobData,
    BlobStoreError,
    NotFound,
    PreconditionFailed,
    check_key,
    check_prefix,
    iter_chunks,
)

CHUNK = 1 << 20
DEFAULT_PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20  # S3's minimum for every part but the last

T = TypeVar("T")

_PRECONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_MISSING_CODES = {"NoSuchKey", "NotFound", "404"}


def _code(exc: ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(err.get("Code", "")), int(status or 0)


def _md5(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class _Parts:
    """Cut a chunk stream into parts of exactly ``size`` bytes (the last one shorter).

    Holds the part being built plus at most one chunk of lookahead, and hands each part
    over without copying it."""

    def __init__(self, data: BlobData, size: int) -> None:
        self._chunks = iter_chunks(data, CHUNK)
        self._size = size
        self._rest: bytes | None = None  # the lookahead chunk, or what is left of it

    def _pull(self) -> bytes | None:
        if self._rest is None:
            self._rest = next(self._chunks, None)
        return self._rest

    def next(self) -> bytearray:
        part = bytearray()
        while len(part) < self._size and (chunk := self._pull()) is not None:
            need = self._size - len(part)
            part += chunk[:need]
            self._rest = chunk[need:] if len(chunk) > need else None
        return part

    def exhausted(self) -> bool:
        return self._pull() is None


class S3BlobStore:
    """``BlobStore`` in one bucket (and key prefix) of an S3-compatible service."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_attempts: int = 5,
        precheck: bool = True,
    ) -> None:
        """``precheck=False`` skips the fail-fast ``head`` before a conditional put, leaving
        the decision to the server alone (the contract tests use it to prove the server
        enforces conditions)."""
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.precheck = precheck
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            # S3-compatible servers vary in their support of the newer flexible checksums;
            # Content-MD5 (set on every body below) is understood everywhere.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if endpoint_url is not None and region is None:
            region = "us-east-1"  # S3-compatible servers accept any region; SigV4 needs one
        try:
            self._client: Any = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        except BotoCoreError as exc:
            raise BlobStoreError(f"cannot create S3 client: {exc}") from exc
        self._closed = threading.Event()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3BlobStore:
        """``s3://BUCKET/PREFIX?endpoint=URL&region=R`` (endpoint, region, prefix optional)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3:// blob store URL: {url!r}")
        query = parse_qs(parts.query)
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown parameters in {url!r}: {', '.join(sorted(unknown))}")
        endpoint = query.get("endpoint", [None])[-1]
        region = query.get("region", [None])[-1]
        return cls(parts.netloc, parts.path, endpoint_url=endpoint, region=region, **kwargs)

    # -- plumbing

    def _call(self, op: Callable[..., T], key: str, **params: Any) -> T:
        """Run one client call; translate failures into the contract's errors."""
        if self._closed.is_set():
            raise BlobStoreError("blob store is closed")
        try:
            return op(Bucket=self.bucket, **params)
        except ClientError as exc:
            code, status = _code(exc)
            if code in _PRECONDITION_CODES or status in (409, 412):
                raise PreconditionFailed(key) from exc
            if code in _MISSING_CODES or status == 404:
                raise NotFound(key) from exc
            raise BlobStoreError(f"S3 {op.__name__} {key!r} failed: {code} ({status}): {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 {op.__name__} {key!r} failed: {exc}") from exc

    # -- contract

    def put(
        self, key: str, data: BlobData, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if if_match is not None and if_none_match:
            raise ValueError("if_match and if_none_match are exclusive")
        name = self.prefix + check_key(key)
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        if if_match is not None:
            conditions["IfMatch"] = if_match
        if conditions and self.precheck:
            current = self.head(key)
            if (if_none_match and current is not None) or (
                if_match is not None and (current is None or current[1] != if_match)
            ):
                raise PreconditionFailed(key)
        parts = _Parts(data, self.part_size)
        first = parts.next()
        try:
            if parts.exhausted():
                resp = self._call(
                    self._client.put_object, key, Key=name, Body=first, ContentMD5=_md5(first), **conditions
                )
                return str(resp["ETag"])
            pending = [first]
            del first  # _multipart must be able to drop part 1 once sent
            return self._multipart(key, name, pending, parts, conditions)
        except NotFound:
            raise PreconditionFailed(key) from None  # If-Match on an object deleted meanwhile

    def _multipart(
        self, key: str, name: str, pending: list[bytearray], parts: _Parts, conditions: dict[str, str]
    ) -> str:
        upload_id = self._call(self._client.create_multipart_upload, key, Key=name)["UploadId"]
        try:
            done: list[dict[str, Any]] = []
            body: bytearray | None = pending.pop()
            while body is not None:
                number = len(done) + 1
                resp = self._call(
                    self._client.upload_part,
                    key,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentMD5=_md5(body),
                )
                done.append({"ETag": resp["ETag"], "PartNumber": number})
                body = None  # drop this part before building the next one
                if not parts.exhausted():
                    body = parts.next()
            resp = self._call(
                self._client.complete_multipart_upload,
                key,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                **conditions,
            )
            return str(resp["ETag"])
        except BaseException:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass  # best effort; a bucket lifecycle rule reaps what is left
            raise

    def get(self, key: str) -> Iterator[bytes]:
        resp = self._call(self._client.get_object, key, Key=self.prefix + check_key(key))
        return self._stream(resp["Body"], key)

    @staticmethod
    def _stream(body: Any, key: str) -> Iterator[bytes]:
        try:
            for chunk in body.iter_chunks(CHUNK):
                if chunk:
                    yield chunk
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 read of {key!r} failed: {exc}") from exc
        finally:
            body.close()

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if not 0 <= start <= end:
            raise ValueError(f"bad range [{start}, {end})")
        name = self.prefix + check_key(key)
        if start == end:
            if self.head(key) is None:
                raise NotFound(key)
            return b""
        try:
            resp = self._call(self._client.get_object, key, Key=name, Range=f"bytes={start}-{end - 1}")
        except BlobStoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (
                _code(cause)[0] == "InvalidRange" or _code(cause)[1] == 416
            ):
                return b""  # start at or past the end: the object exists, the range is empty
            raise
        return b"".join(self._stream(resp["Body"], key))

    def head(self, key: str) -> tuple[int, str] | None:
        try:
            resp = self._call(self._client.head_object, key, Key=self.prefix + check_key(key))
        except NotFound:
            return None
        return int(resp["ContentLength"]), str(resp["ETag"])

    def list(self, prefix: str = "") -> Iterator[tuple[str, int, str]]:
        check_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(paginator.paginate, prefix, Prefix=self.prefix + prefix)
        strip = len(self.prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield str(obj["Key"])[strip:], int(obj["Size"]), str(obj["ETag"])
        except ClientError as exc:
            code, status = _code(exc)
            raise BlobStoreError(f"S3 list {prefix!r} failed: {code} ({status}): {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 list {prefix!r} failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._call(self._client.delete_object, key, Key=self.prefix + check_key(key))
        except NotFound:
            pass

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._client.close()
