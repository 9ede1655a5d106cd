"""Replay captured real-git sessions against the protocol drivers, no server, no sockets.

The fixtures (tests/fixtures/sessions/*.json, made by tests/fixtures/capture_sessions.py)
hold every request git 2.39 sent in a session (v0 and v2: clone, fetch, shallow, deepen,
unshallow, partial clone with its lazy fetches, push, force push, delete) and the answer
it accepted. Each session starts from an empty repository; replaying its requests in
order (pushes included) rebuilds the same repository state step by step.

What is compared, per answer:
- byte for byte: every pkt-line outside the pack (advertisements, ls-refs, ACK/NAK,
  ready, shallow/unshallow, section headers, wanted-refs, report-status), the special
  packets (flush, delim, response-end), side-band framing of those lines, ERR lines;
- the pack as the set of object ids it carries (thin deltas resolved against the store):
  which stored delta is reused and the entry order are implementation choices, not
  protocol;
- progress: the lines that end in ", done." (Enumerating, Counting, Resolving deltas),
  not the intermediate percentages or the ``Total`` statistics.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from smart_http.discovery import advertise_refs, protocol_version
from smart_http.receive_pack import serve_receive_pack
from smart_http.upload_pack import serve_upload_pack
from storage.errors import MissingObject
from storage.repo_store import RepoStore
from storage.repository import Repository

SESSIONS = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "sessions").glob("*.json"))
_HEX4 = re.compile(rb"[0-9a-f]{4}\Z")


def _pack_objects(pack: bytes, store: RepoStore) -> list[str]:
    from dulwich.object_format import SHA1
    from dulwich.pack import PackData, PackInflater

    def external(oid: bytes) -> tuple[int, list[bytes]]:
        raw = oid if len(oid) == 20 else bytes.fromhex(oid.decode())
        try:
            obj_type, data = store.get_object(raw)
        except MissingObject:
            raise KeyError(oid) from None
        return int(obj_type), [data]

    data = PackData.from_file(io.BytesIO(pack), SHA1, len(pack))
    try:
        return sorted(obj.id.decode() for obj in PackInflater.for_pack_data(data, resolve_ext_ref=external))
    finally:
        data.close()


def _normalize(body: bytes, store: RepoStore) -> list[Any]:
    """The answer as comparable events (see the module docstring)."""
    events: list[Any] = []
    pack = bytearray()
    in_pack = False
    progress = bytearray()
    pos = 0
    while pos < len(body):
        head = body[pos : pos + 4]
        if not _HEX4.match(head):  # a pack without side-band
            events.append(("raw-pack", _pack_objects(body[pos:], store)))
            break
        size = int(head, 16)
        if size < 4:
            events.append(("special", size))
            pos += 4
            continue
        payload = body[pos + 4 : pos + size]
        pos += size
        channel = payload[0] if payload[:1] in (b"\x01", b"\x02", b"\x03") else None
        if channel is None:
            events.append(("line", payload))
        elif channel == 2:
            progress += payload[1:]
        elif channel == 3:
            events.append(("error", payload[1:]))
        elif in_pack or payload.startswith(b"\x01PACK"):
            in_pack = True
            pack += payload[1:]
        elif events and events[-1][0] == "band1":
            events[-1] = ("band1", events[-1][1] + payload[1:])
        else:
            events.append(("band1", payload[1:]))
    if pack:
        events.append(("pack", _pack_objects(bytes(pack), store)))
    done = [p.strip() for p in re.split(rb"[\r\n]", bytes(progress)) if p.strip().endswith(b", done.")]
    events.append(("progress", done))
    return events


def _replay(store: RepoStore, repo: Repository, exchange: dict[str, Any]) -> bytes:
    request = base64.b64decode(exchange["request"])
    version = protocol_version(exchange["git_protocol"])
    action = exchange["action"]
    if action == "info/refs":
        return advertise_refs(repo, exchange["service"], version)
    out: list[bytes] = []
    if action == "git-upload-pack":
        serve_upload_pack(repo, io.BytesIO(request).read, out.append, version=version)
    else:
        assert action == "git-receive-pack", action
        serve_receive_pack(repo, io.BytesIO(request).read, out.append)
    return b"".join(out)


@pytest.mark.parametrize("session", SESSIONS, ids=[p.stem for p in SESSIONS])
def test_replay_session(session: Path, tmp_path: Path) -> None:
    recorded = json.loads(session.read_text())
    assert recorded["exchanges"], "an empty fixture proves nothing"
    store = RepoStore.create(tmp_path / "repo.sqlite", head="refs/heads/main")
    try:
        repo = Repository(store)
        for i, exchange in enumerate(recorded["exchanges"]):
            got = _replay(store, repo, exchange)
            expected = base64.b64decode(exchange["response"])
            where = (
                f"{session.stem} #{i} {exchange['method']} {exchange['action']} v={exchange['git_protocol']}"
            )
            assert _normalize(got, store) == _normalize(expected, store), where
    finally:
        store.close()


def test_sessions_cover_the_protocol() -> None:
    """The fixtures exercise what the replay claims: v0 and v2, fetch and push, shallow,
    partial clone, sideband-all with want-ref."""
    requests = b"".join(
        base64.b64decode(ex["request"])
        for path in SESSIONS
        for ex in json.loads(path.read_text())["exchanges"]
    )
    responses = b"".join(
        base64.b64decode(ex["response"])
        for path in SESSIONS
        for ex in json.loads(path.read_text())["exchanges"]
    )
    for needle in (
        b"command=fetch",
        b"command=ls-refs",
        b"multi_ack_detailed",
        b"deepen 2",
        b"deepen-not topic",
        b"deepen-since ",
        b"deepen 2147483647",
        b"filter blob:none",
        b"filter blob:limit=1024",
        b"sideband-all",
        b"want-ref refs/heads/main",
        b"report-status",
    ):
        assert needle in requests, needle
    for needle in (
        b"shallow ",
        b"unshallow ",
        b"shallow-info",
        b"wanted-refs",
        b"ACK ",
        b"ready",
        b"unpack ok",
    ):
        assert needle in responses, needle
