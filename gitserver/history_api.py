"""The read, time-travel and write API of one repo: refs, reflog, commits, tree, raw, diff, commits (write), restore.

Rules:
- A thin HTTP layer: every route authenticates (``read``; ``write`` for POST), parses
  its query or body, then runs one synchronous storage function (``storage.revisions``,
  ``storage.history``, ``storage.treeview``, ``storage.diff``, ``storage.commit_builder``)
  on the repo's actor: reads on a read connection, writes on the single writer.
- Storage errors map to SPEC codes here and nowhere else: a malformed REV, an ambiguous
  abbreviation or a bad parameter is 400 INVALID_INPUT; an unknown ref, object, path or
  an instant before a ref existed is 404 NOT_FOUND; a commit whose ``parent`` is not the
  tip is 409 CONFLICT.
- Big answers stream: ``raw`` in 64 KiB pieces, ``diff`` one file at a time (JSON or
  patch), ``tree`` in batches of entries; everything that can fail (revisions, paths,
  the change list) is settled before the first byte is sent.
- Lists are paginated with ``limit`` and an opaque ``cursor`` (``next_cursor`` is null on
  the last page).
- Times are RFC 3339: reflog ``at`` in UTC with microseconds; commit dates with the
  commit's own offset. Object ids are 40 hex digits; a missing side of a reflog entry
  is 40 zeros, as in git.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import trio

from gitserver.auth import require_repo
from gitserver.catalog import RepoRecord
from gitserver.clock import rfc3339
from gitserver.errors import ApiError, invalid_input, not_found
from gitserver.tiering import DurabilityError
from gitserver.web import Request, Response, Send, json_response
from storage import commit_builder, history, revisions, treeview
from storage.diff import Abbrev, FileDiff, diff_trees, file_diff
from storage.model import ObjType, Oid, PushContext
from storage.treediff import detect_renames, tree_changes

if TYPE_CHECKING:
    from gitserver.actors import RepoActor
    from gitserver.api import Api
    from gitserver.web import Router
    from storage.repo_store import RepoStore

REPO = "/namespaces/{ns}/repos/{name}"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_REFLOG_LIMIT = 1000
RAW_PIECE = 64 << 10
TREE_BATCH = 500


# -- responses -------------------------------------------------------------------------


class StreamResponse(Response):
    """A response whose body comes from an async iterator (chunked, no Content-Length
    unless given in ``headers``)."""

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], body: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        super().__init__(status, b"", headers)
        self._make_body = body

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        async for piece in self._make_body():
            if piece:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stream_from_store(
    actor: RepoActor, limiter: trio.CapacityLimiter, make: Callable[[RepoStore], Iterator[bytes]]
) -> Callable[[], AsyncIterator[bytes]]:
    """An async body that runs the sync iterator ``make(store)`` on a read connection,
    one piece per worker-thread hop."""

    async def body() -> AsyncIterator[bytes]:
        async with actor.reading() as repo:
            it = make(repo.store)
            while True:
                piece = await trio.to_thread.run_sync(next, it, None, limiter=limiter)
                if piece is None:
                    return
                yield piece

    return body


# -- value formatting ------------------------------------------------------------------


def _hex(oid: Oid | None) -> str:
    return oid.hex() if oid else "0" * 40


def _git_date(secs: int, tz: str) -> str:
    try:
        sign = -1 if tz.startswith("-") else 1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        zone = timezone(offset)
    except (ValueError, IndexError):
        zone = UTC
    return datetime.fromtimestamp(secs, zone).isoformat()


def _ident(who: history.Identity) -> dict[str, str]:
    return {"name": who.name, "email": who.email, "date": _git_date(who.time, who.tz)}


def commit_json(c: history.Commit) -> dict[str, Any]:
    return {
        "id": c.oid.hex(),
        "tree": c.tree.hex(),
        "parents": [p.hex() for p in c.parents],
        "author": _ident(c.author),
        "committer": _ident(c.committer),
        "message": c.message,
    }


def _file_json(f: FileDiff) -> dict[str, Any]:
    ch = f.change
    return {
        "path": ch.path,
        "old_path": ch.old.path if ch.old else None,
        "status": ch.status,
        "old_mode": f"{ch.old.mode:06o}" if ch.old else None,
        "new_mode": f"{ch.new.mode:06o}" if ch.new else None,
        "old_id": ch.old.oid.hex() if ch.old else None,
        "new_id": ch.new.oid.hex() if ch.new else None,
        "similarity": ch.score * 100 // 60000 if ch.status == "R" else None,
        "additions": f.additions,
        "deletions": f.deletions,
        "binary": f.binary,
        "patch": f.patch.decode("utf-8", "replace"),
    }


# -- parameters ------------------------------------------------------------------------


def _limit(req: Request, default: int, maximum: int) -> int:
    raw = req.query.get("limit") or ""
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= maximum:
        raise invalid_input(f"limit must be an integer in 1..{maximum}")
    return int(raw)


MAX_PATH = 4096  # git's PATH_MAX; a longer path names nothing in any tree


def _path(value: str | None) -> str:
    # NUL cannot occur in a git path; refusing it (and overlong paths) keeps both out of
    # every later layer (docs/security.md, "Names and paths")
    if value and ("\0" in value or len(value) > MAX_PATH):
        raise invalid_input(f"bad path: contains NUL or is longer than {MAX_PATH} characters")
    try:
        return treeview.normalize_path(value)
    except ValueError as exc:
        raise invalid_input(str(exc)) from None


def _instant(name: str, value: str | None) -> int | None:
    if not value:
        return None
    try:
        return revisions.parse_instant(value)
    except ValueError:
        raise invalid_input(f"{name} must be an RFC 3339 instant (e.g. 2026-11-27T15:04:05.123Z)") from None


def _bool(name: str, value: str | None) -> bool:
    if value in (None, "", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise invalid_input(f"{name} must be true or false")


def _storage_error(exc: Exception) -> ApiError:
    """The SPEC error for a storage-level failure the caller caused."""
    if isinstance(exc, revisions.BadRevision | revisions.AmbiguousRevision):
        return invalid_input(str(exc))
    if isinstance(exc, revisions.UnknownRevision | treeview.PathNotFound | treeview.NotAFile):
        return not_found(str(exc))
    if isinstance(exc, commit_builder.CommitConflict):
        return ApiError("CONFLICT", str(exc))
    if isinstance(exc, commit_builder.InvalidEdit):
        return invalid_input(str(exc))
    if isinstance(exc, DurabilityError):  # fenced: 409 CONFLICT; not acknowledged: 500
        return exc.api_error()
    raise exc


_CAUGHT = (
    revisions.RevisionError,
    treeview.PathError,
    commit_builder.CommitConflict,
    commit_builder.InvalidEdit,
    DurabilityError,
)


# -- storage-side functions (run in worker threads) --------------------------------------


def _refs(store: RepoStore) -> dict[str, Any]:
    items = []
    for name, oid in store.refs().items():
        peeled, obj_type = revisions.peel(store, oid)
        # type is the target's own type: "tag" for an annotated tag, whose "peeled" is the
        # object it finally names (of type "peeled_type")
        item: dict[str, Any] = {"name": name, "target": oid.hex(), "type": obj_type.name.lower()}
        if peeled != oid:
            item.update(type="tag", peeled=peeled.hex(), peeled_type=obj_type.name.lower())
        items.append(item)
    return {"head": store.head(), "items": items}


def _reflog(
    store: RepoStore, ref: str | None, since: int | None, until: int | None, limit: int, before: int | None
) -> dict[str, Any]:
    full = None
    if ref == "HEAD":
        full = store.head()
    elif ref:
        for cand in revisions.ref_candidates(ref):
            if cand in store.refs() or store.reflog(cand, limit=1):
                full = cand
                break
        if full is None:
            raise revisions.UnknownRevision(ref, f"no ref named {ref!r} and no reflog for it")
    rows, cursor = history.reflog_page(store, full, since, until, limit, before)
    items = [
        {
            "ref": r.ref,
            "old": _hex(r.old),
            "new": _hex(r.new),
            "at": rfc3339(r.at_us),
            "token_id": r.token_id,
            "via": r.via,
            "message": r.message,
        }
        for r in rows
    ]
    return {"items": items, "next_cursor": str(cursor) if cursor is not None else None}


def _encode_cursor(frontier: list[Oid]) -> str | None:
    if not frontier:
        return None
    return base64.urlsafe_b64encode(b"".join(frontier)).decode().rstrip("=")


def _decode_cursor(store: RepoStore, cursor: str) -> list[Oid]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise revisions.BadRevision(cursor, "bad cursor") from None
    if not raw or len(raw) % 20:
        raise revisions.BadRevision(cursor, "bad cursor")
    oids = [raw[i : i + 20] for i in range(0, len(raw), 20)]
    for oid in oids:
        header = store.object_header(oid)
        if header is None or header[0] != ObjType.COMMIT:
            raise revisions.BadRevision(cursor, "bad cursor (unknown commit)")
    return oids


def _log(store: RepoStore, rev: str, path: str, limit: int, cursor: str | None) -> dict[str, Any]:
    starts = _decode_cursor(store, cursor) if cursor else [revisions.resolve_commit(store, rev)]
    page = history.log_page(store, starts, limit, path)
    return {"items": [commit_json(c) for c in page.commits], "next_cursor": _encode_cursor(page.frontier)}


def _tree_root(store: RepoStore, rev: str, path: str) -> tuple[Oid, Oid, treeview.TreeItem]:
    commit = revisions.resolve(store, rev)
    root = revisions.resolve_treeish(store, rev)
    return commit, root, treeview.require(store, root, path)


def _entry_json(store: RepoStore, item: treeview.TreeItem) -> dict[str, Any]:
    size = None
    if item.kind == "blob":
        header = store.object_header(item.oid)
        size = header[1] if header else None
    return {
        "path": item.path,
        "type": item.kind,
        "mode": f"{item.mode:06o}",
        "oid": item.oid.hex(),
        "size": size,
    }


def _tree_body(store: RepoStore, root: Oid, path: str, recursive: bool, head: bytes) -> Iterator[bytes]:
    yield head
    batch: list[str] = []
    first = True
    for item in treeview.list_tree(store, root, path, recursive=recursive):
        batch.append(json.dumps(_entry_json(store, item), separators=(",", ":")))
        if len(batch) >= TREE_BATCH:
            yield ("" if first else ",").encode() + ",".join(batch).encode()
            first = False
            batch = []
    if batch:
        yield ("" if first else ",").encode() + ",".join(batch).encode()
    yield b"]}"


def _raw(store: RepoStore, rev: str, path: str) -> tuple[treeview.TreeItem, bytes]:
    root = revisions.resolve_treeish(store, rev)
    return treeview.read_file(store, root, path)


def _diff_plan(store: RepoStore, from_rev: str, to_rev: str, path: str) -> tuple[Oid, Oid, list[Any]]:
    old = revisions.resolve_treeish(store, from_rev)
    new = revisions.resolve_treeish(store, to_rev)
    changes = detect_renames(store, list(tree_changes(store, old, new, path)))
    return revisions.resolve(store, from_rev), revisions.resolve(store, to_rev), changes


def _parse_person(value: Any, what: str, now: int) -> commit_builder.Person:
    if not isinstance(value, dict):
        raise commit_builder.InvalidEdit(f"{what} must be an object {{name, email, date?}}")
    name, email, date = value.get("name"), value.get("email"), value.get("date")
    if not isinstance(name, str) or not name.strip() or not isinstance(email, str):
        raise commit_builder.InvalidEdit(f"{what}.name and {what}.email are required strings")
    if date is None:
        return commit_builder.Person(name, email, now // 1_000_000, 0)
    if not isinstance(date, str):
        raise commit_builder.InvalidEdit(f"{what}.date must be an RFC 3339 string")
    try:
        us, offset = revisions.parse_instant_offset(date)
    except ValueError:
        raise commit_builder.InvalidEdit(f"{what}.date must be an RFC 3339 instant") from None
    return commit_builder.Person(name, email, us // 1_000_000, offset)


def _parse_files(value: Any) -> list[commit_builder.FileEdit]:
    if not isinstance(value, list):
        raise commit_builder.InvalidEdit(
            "files must be a list of {path, content_base64} or {path, delete: true}"
        )
    out = []
    for i, f in enumerate(value):
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise commit_builder.InvalidEdit(f"files[{i}] needs a string path")
        if f.get("delete") is True:
            if "content_base64" in f:
                raise commit_builder.InvalidEdit(f"files[{i}] has both delete and content_base64")
            out.append(commit_builder.FileEdit(f["path"], None))
            continue
        content = f.get("content_base64")
        if not isinstance(content, str):
            raise commit_builder.InvalidEdit(f"files[{i}] needs content_base64 (a string) or delete: true")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise commit_builder.InvalidEdit(f"files[{i}].content_base64 is not valid base64") from None
        mode = f.get("mode")
        if mode is not None:
            if not isinstance(mode, str) or mode not in ("100644", "100755", "120000"):
                raise commit_builder.InvalidEdit(f"files[{i}].mode must be 100644, 100755 or 120000")
            mode = int(mode, 8)
        out.append(commit_builder.FileEdit(f["path"], data, mode))
    return out


def _branch_ref(branch: Any) -> str:
    if not isinstance(branch, str) or not branch:
        raise commit_builder.InvalidEdit("branch is required (a string)")
    ref = branch if branch.startswith("refs/heads/") else "refs/heads/" + branch
    from storage.refs import check_ref_name

    problem = check_ref_name(ref)
    if problem:
        raise commit_builder.InvalidEdit(f"bad branch name {branch!r}: {problem}")
    return ref


def _parent_oid(store: RepoStore, parent: Any) -> Oid | None:
    if parent is None:
        return None
    if not isinstance(parent, str):
        raise commit_builder.InvalidEdit("parent must be a commit id (string) or null")
    return revisions.resolve_commit(store, parent)


def _make_commit(store: RepoStore, body: dict[str, Any], token_id: str | None, now_us: int) -> dict[str, Any]:
    try:
        json.dumps(body).encode("utf-8")
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise commit_builder.InvalidEdit("strings must be valid Unicode (no lone surrogates)") from None
    ref = _branch_ref(body.get("branch"))
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise commit_builder.InvalidEdit("message is required (a non-empty string)")
    author = _parse_person(body.get("author"), "author", now_us)
    committer = _parse_person(body["committer"], "committer", now_us) if body.get("committer") else None
    if committer is None:
        committer = commit_builder.Person(author.name, author.email, now_us // 1_000_000, 0)
    files = _parse_files(body.get("files"))
    parent = _parent_oid(store, body.get("parent"))
    result = commit_builder.commit_files(
        store, ref, parent, message, author, committer, files, PushContext(token_id=token_id, via="api")
    )
    out = commit_json(history.read_commit(store, result.commit))
    out["ref"] = result.ref
    return out


def _restore(store: RepoStore, body: dict[str, Any], token_id: str | None) -> dict[str, Any]:
    ref_name, to = body.get("ref"), body.get("to")
    if not isinstance(ref_name, str) or not ref_name or not isinstance(to, str) or not to:
        raise commit_builder.InvalidEdit("ref and to are required strings")
    ref = ref_name if ref_name.startswith("refs/") else None
    if ref is None:
        for cand in revisions.ref_candidates(ref_name):
            if cand in store.refs() or store.reflog(cand, limit=1):
                ref = cand
                break
    if ref is None:
        raise revisions.UnknownRevision(ref_name, f"no ref named {ref_name!r}")
    target = revisions.resolve(store, to)
    if ref.startswith("refs/heads/"):
        target = revisions.resolve_commit(store, to)
    old = commit_builder.restore_ref(
        store, ref, target, PushContext(token_id=token_id, via="restore"), message=f"restore to {to}"
    )
    at = store.reflog(ref, limit=1)[0].at_us
    return {"ref": ref, "old": _hex(old), "new": target.hex(), "at": rfc3339(at)}


# -- routes ----------------------------------------------------------------------------


class HistoryRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.s = api.s

    async def _repo(self, req: Request, need: str) -> tuple[RepoRecord, RepoActor, str | None]:
        token = await self.api._token(req)
        record, what = await self.api._lookup(req)
        record = require_repo(token, need, record, what)
        return record, self.s.host.actor(record.id, record.path), token.id if token else None

    async def _read(self, actor: RepoActor, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await actor.run_read(fn, *args)
        except _CAUGHT as exc:
            raise _storage_error(exc) from None

    async def refs(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        return json_response(200, await self._read(actor, _refs))

    async def reflog(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        q = req.query
        since, until = _instant("since", q.get("since")), _instant("until", q.get("until"))
        limit = _limit(req, 100, MAX_REFLOG_LIMIT)
        cursor = q.get("cursor") or None
        if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise invalid_input("bad cursor")
        before = int(cursor) if cursor else None
        return json_response(
            200, await self._read(actor, _reflog, q.get("ref") or None, since, until, limit, before)
        )

    async def commits(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        q = req.query
        limit = _limit(req, DEFAULT_LIMIT, MAX_LIMIT)
        data = await self._read(
            actor, _log, q.get("rev") or "HEAD", _path(q.get("path")), limit, q.get("cursor") or None
        )
        return json_response(200, data)

    async def tree(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        q = req.query
        rev, path = q.get("rev") or "HEAD", _path(q.get("path"))
        recursive = _bool("recursive", q.get("recursive"))
        commit, root, item = await self._read(actor, _tree_root, rev, path)
        head = json.dumps(
            {"rev": rev, "id": commit.hex(), "path": item.path, "type": item.kind}, separators=(",", ":")
        )[:-1]
        head_bytes = (head + ',"entries":[').encode()
        body = _stream_from_store(
            actor, self.s.limiter, lambda store: _tree_body(store, root, path, recursive, head_bytes)
        )
        return StreamResponse(200, [(b"content-type", b"application/json")], body)

    async def raw(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        q = req.query
        if not q.get("path"):
            raise invalid_input("path is required")
        item, data = await self._read(actor, _raw, q.get("rev") or "HEAD", _path(q.get("path")))
        binary = b"\0" in data[:8000]
        ctype = b"application/octet-stream" if binary else b"text/plain; charset=utf-8"
        headers = [
            (b"content-type", ctype),
            (b"content-length", str(len(data)).encode()),
            (b"etag", f'"{item.oid.hex()}"'.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]

        async def body() -> AsyncIterator[bytes]:
            for pos in range(0, len(data), RAW_PIECE):
                yield data[pos : pos + RAW_PIECE]

        return StreamResponse(200, headers, body)

    async def diff(self, req: Request) -> Response:
        _, actor, _ = await self._repo(req, "read")
        q = req.query
        from_rev, to_rev = q.get("from"), q.get("to")
        if not from_rev or not to_rev:
            raise invalid_input("from and to are required revisions")
        fmt = q.get("format") or "json"
        if fmt not in ("json", "patch"):
            raise invalid_input("format must be json or patch")
        path = _path(q.get("path"))
        old_id, new_id, changes = await self._read(actor, _diff_plan, from_rev, to_rev, path)

        def files(store: RepoStore) -> Iterator[FileDiff]:
            abbrev = Abbrev(store)
            for change in changes:
                yield file_diff(store, change, abbrev)

        if fmt == "patch":
            body = _stream_from_store(actor, self.s.limiter, lambda store: (f.patch for f in files(store)))
            return StreamResponse(200, [(b"content-type", b"text/x-diff; charset=utf-8")], body)

        def json_pieces(store: RepoStore) -> Iterator[bytes]:
            yield (
                json.dumps({"from": old_id.hex(), "to": new_id.hex()}, separators=(",", ":"))[:-1].encode()
                + b',"files":['
            )
            for i, f in enumerate(files(store)):
                yield (b"," if i else b"") + json.dumps(_file_json(f), separators=(",", ":")).encode()
            yield b"]}"

        return StreamResponse(
            200,
            [(b"content-type", b"application/json")],
            _stream_from_store(actor, self.s.limiter, json_pieces),
        )

    async def create_commit(self, req: Request) -> Response:
        _record, actor, token_id = await self._repo(req, "write")
        body = await req.json(self.s.settings.max_api_body)
        from gitserver.clock import now_us

        try:
            out = await actor.run_write(_make_commit, body, token_id, now_us())
        except _CAUGHT as exc:
            raise _storage_error(exc) from None
        return json_response(201, out)

    async def restore(self, req: Request) -> Response:
        _record, actor, token_id = await self._repo(req, "write")
        body = await req.json(self.s.settings.max_api_body)
        try:
            out = await actor.run_write(_restore, body, token_id)
        except _CAUGHT as exc:
            raise _storage_error(exc) from None
        return json_response(200, out)


def register(router: Router, api: Api) -> None:
    """Add the history routes to the API router."""
    routes = HistoryRoutes(api)
    router.add("GET", f"{REPO}/refs", routes.refs)
    router.add("GET", f"{REPO}/reflog", routes.reflog)
    router.add("GET", f"{REPO}/commits", routes.commits)
    router.add("POST", f"{REPO}/commits", routes.create_commit)
    router.add("GET", f"{REPO}/tree", routes.tree)
    router.add("GET", f"{REPO}/raw", routes.raw)
    router.add("GET", f"{REPO}/diff", routes.diff)
    router.add("POST", f"{REPO}/restore", routes.restore)


__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "HistoryRoutes", "commit_json", "diff_trees", "register"]


def _err(*codes: int) -> dict[str, Any]:
    names = {
        400: "invalid input (bad REV syntax, ambiguous abbreviation, bad parameter)",
        401: "no or bad token",
        403: "token lacks the scope or is for another repo",
        404: "unknown repo, ref, object or path; instant before the ref existed",
        409: "parent is not the branch tip",
        413: "request body too large",
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": names[c], "content": error} for c in codes}


def _q(
    name: str, description: str, required: bool = False, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_REPO_PARAMS = [
    {"name": "ns", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]
_REV = "a revision: object id (full or unique abbreviation), ref, REF@{RFC3339}, REF@{N}, then ~N / ^N"
_JSON = "application/json"
_READ_ERRORS = (400, 401, 403, 404)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413)


def _get(summary: str, params: list[dict[str, Any]], content: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["history"],
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": content}, **_err(*_READ_ERRORS)},
        }
    }


def _ref(name: str) -> dict[str, Any]:
    return {_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}


OPENAPI_PATHS: dict[str, Any] = {
    f"{REPO}/refs": {"parameters": _REPO_PARAMS, **_get("Every ref with its target", [], _ref("RefList"))},
    f"{REPO}/reflog": {
        "parameters": _REPO_PARAMS,
        **_get(
            "Ref history, newest first",
            [
                _q("ref", "ref name (short names resolved like REV)"),
                _q("since", "RFC 3339 instant, inclusive", schema={"type": "string", "format": "date-time"}),
                _q("until", "RFC 3339 instant, inclusive", schema={"type": "string", "format": "date-time"}),
                _q(
                    "limit",
                    "1..1000, default 100",
                    schema={"type": "integer", "minimum": 1, "maximum": MAX_REFLOG_LIMIT},
                ),
                _q("cursor", "next_cursor of the previous page"),
            ],
            _ref("ReflogPage"),
        ),
    },
    f"{REPO}/commits": {
        "parameters": _REPO_PARAMS,
        **_get(
            "Commit log from REV like git log (optionally touching PATH)",
            [
                _q("rev", _REV + "; default HEAD"),
                _q("path", "only commits changing this file or directory"),
                _q(
                    "limit",
                    "1..200, default 50",
                    schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                ),
                _q("cursor", "next_cursor of the previous page"),
            ],
            _ref("CommitPage"),
        ),
        "post": {
            "summary": "Make a commit from files, without a git client (write scope)",
            "tags": ["history"],
            "requestBody": {"required": True, "content": _ref("CommitRequest")},
            "responses": {
                "201": {"description": "created", "content": _ref("CommitCreated")},
                **_err(*_WRITE_ERRORS),
            },
        },
    },
    f"{REPO}/tree": {
        "parameters": _REPO_PARAMS,
        **_get(
            "Tree entries at REV and PATH",
            [
                _q("rev", _REV + "; default HEAD"),
                _q("path", "directory (or file) path; default the root"),
                _q("recursive", "list every descendant", schema={"type": "boolean"}),
            ],
            _ref("TreeListing"),
        ),
    },
    f"{REPO}/raw": {
        "parameters": _REPO_PARAMS,
        **_get(
            "File bytes at REV",
            [
                _q("rev", _REV + "; default HEAD"),
                _q("path", "file path", required=True),
            ],
            {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        ),
    },
    f"{REPO}/diff": {
        "parameters": _REPO_PARAMS,
        **_get(
            "What changed between two revisions (git diff -M)",
            [
                _q("from", _REV, required=True),
                _q("to", _REV, required=True),
                _q("path", "limit to this file or directory"),
                _q("format", "json (default) or patch", schema={"type": "string", "enum": ["json", "patch"]}),
            ],
            {**_ref("Diff"), "text/x-diff": {"schema": {"type": "string"}}},
        ),
    },
    f"{REPO}/restore": {
        "parameters": _REPO_PARAMS,
        "post": {
            "summary": "Move a ref to an earlier point (new reflog entry, via restore; write scope)",
            "tags": ["history"],
            "requestBody": {"required": True, "content": _ref("RestoreRequest")},
            "responses": {
                "200": {"description": "moved", "content": _ref("RestoreResult")},
                **_err(*_WRITE_ERRORS),
            },
        },
    },
}

_OID = {"type": "string", "pattern": "^[0-9a-f]{40}$"}
_NOID = {"type": ["string", "null"], "pattern": "^[0-9a-f]{40}$"}
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_PERSON = {
    "type": "object",
    "required": ["name", "email", "date"],
    "properties": {"name": _STR, "email": _STR, "date": {"type": "string", "format": "date-time"}},
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": _STR, "message": _STR},
            }
        },
    },
    "RefList": {
        "type": "object",
        "required": ["head", "items"],
        "properties": {
            "head": _STR,
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "target", "type"],
                    "properties": {
                        "name": _STR,
                        "target": _OID,
                        "type": _STR,
                        "peeled": _OID,
                        "peeled_type": _STR,
                    },
                },
            },
        },
    },
    "ReflogPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "next_cursor": _NSTR,
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["ref", "old", "new", "at", "token_id", "via"],
                    "properties": {
                        "ref": _STR,
                        "old": _OID,
                        "new": _OID,
                        "at": {"type": "string", "format": "date-time"},
                        "token_id": _NSTR,
                        "via": _STR,
                        "message": _STR,
                    },
                },
            },
        },
    },
    "Commit": {
        "type": "object",
        "required": ["id", "tree", "parents", "author", "committer", "message"],
        "properties": {
            "id": _OID,
            "tree": _OID,
            "parents": {"type": "array", "items": _OID},
            "author": _PERSON,
            "committer": _PERSON,
            "message": _STR,
        },
    },
    "CommitPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Commit"}},
            "next_cursor": _NSTR,
        },
    },
    "CommitCreated": {
        "allOf": [
            {"$ref": "#/components/schemas/Commit"},
            {"type": "object", "required": ["ref"], "properties": {"ref": _STR}},
        ]
    },
    "CommitRequest": {
        "type": "object",
        "required": ["branch", "message", "author", "files"],
        "properties": {
            "branch": _STR,
            "parent": {**_NSTR, "description": "expected tip (compare-and-swap); null creates the branch"},
            "message": _STR,
            "author": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": _STR,
                    "email": _STR,
                    "date": {"type": "string", "format": "date-time"},
                },
            },
            "committer": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": _STR,
                    "email": _STR,
                    "date": {"type": "string", "format": "date-time"},
                },
            },
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path"],
                    "properties": {
                        "path": _STR,
                        "content_base64": {"type": "string", "contentEncoding": "base64"},
                        "delete": {"type": "boolean"},
                        "mode": {"type": "string", "enum": ["100644", "100755", "120000"]},
                    },
                },
            },
        },
    },
    "TreeListing": {
        "type": "object",
        "required": ["rev", "id", "path", "type", "entries"],
        "properties": {
            "rev": _STR,
            "id": _OID,
            "path": _STR,
            "type": _STR,
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "type", "mode", "oid", "size"],
                    "properties": {
                        "path": _STR,
                        "type": {"type": "string", "enum": ["blob", "tree", "commit"]},
                        "mode": _STR,
                        "oid": _OID,
                        "size": {"type": ["integer", "null"]},
                    },
                },
            },
        },
    },
    "Diff": {
        "type": "object",
        "required": ["from", "to", "files"],
        "properties": {
            "from": _OID,
            "to": _OID,
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "old_path", "status", "additions", "deletions", "binary", "patch"],
                    "properties": {
                        "path": _STR,
                        "old_path": _NSTR,
                        "status": {"type": "string", "enum": ["A", "D", "M", "R"]},
                        "old_mode": _NSTR,
                        "new_mode": _NSTR,
                        "old_id": _NOID,
                        "new_id": _NOID,
                        "similarity": {"type": ["integer", "null"]},
                        "additions": {"type": "integer"},
                        "deletions": {"type": "integer"},
                        "binary": {"type": "boolean"},
                        "patch": _STR,
                    },
                },
            },
        },
    },
    "RestoreRequest": {"type": "object", "required": ["ref", "to"], "properties": {"ref": _STR, "to": _STR}},
    "RestoreResult": {
        "type": "object",
        "required": ["ref", "old", "new", "at"],
        "properties": {
            "ref": _STR,
            "old": _OID,
            "new": _OID,
            "at": {"type": "string", "format": "date-time"},
        },
    },
}
