"""Drivers against the dulwich test backend, in memory: advertisements, v0 and v2
upload-pack rounds, receive-pack, and hostile bodies (answered with ERR, never a crash)."""

from __future__ import annotations

import gzip
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_http.asgi import serve_git
from smart_http.discovery import advertise_refs, protocol_version
from smart_http.errors import UnsupportedRequest
from smart_http.pktline import NEED_DATA, PktLineReader, pkt_text
from smart_http.receive_pack import serve_receive_pack
from smart_http.upload_pack import serve_upload_pack
from tests.smart_http.dulwich_backend import DulwichRepository

ENV = {
    "GIT_AUTHOR_NAME": "a",
    "GIT_AUTHOR_EMAIL": "a@x",
    "GIT_COMMITTER_NAME": "c",
    "GIT_COMMITTER_EMAIL": "c@x",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("work")
    git("init", "-q", "-b", "main", cwd=work)
    for i in range(3):
        (work / f"f{i}").write_text(str(i))
        git("add", ".", cwd=work)
        git("commit", "-q", "-m", f"c{i}", cwd=work)
    git("tag", "-a", "v1", "-m", "tag", cwd=work)
    bare = tmp_path_factory.mktemp("bare") / "r.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=work)
    return bare


@pytest.fixture
def repo(bare: Path) -> Iterator[DulwichRepository]:
    with DulwichRepository(str(bare)) as r:
        yield r


def run(fn: object, body: bytes, *args: object, **kw: object) -> bytes:
    out = io.BytesIO()
    src = io.BytesIO(body)
    fn(args[0], src.read, out.write, *args[1:], **kw)  # type: ignore[operator]
    return out.getvalue()


def lines(data: bytes) -> list[bytes | str]:
    r = PktLineReader()
    r.feed(data)
    out: list[bytes | str] = []
    while (ev := r.next_event()) is not NEED_DATA:
        out.append(ev if isinstance(ev, bytes) else ev.name)
    return out


def tips(bare: Path) -> tuple[str, str, str]:
    head = git("rev-parse", "main", cwd=bare).strip()
    parent = git("rev-parse", "main~1", cwd=bare).strip()
    tag = git("rev-parse", "v1", cwd=bare).strip()
    return head, parent, tag


def test_protocol_version_header() -> None:
    assert protocol_version(None) == 0
    assert protocol_version("version=2") == 2
    assert protocol_version("foo=bar:version=1") == 1
    assert protocol_version("version=3") == 0


def test_v0_advertisement(repo: DulwichRepository, bare: Path) -> None:
    head, _, tag = tips(bare)
    ad = lines(advertise_refs(repo, "git-upload-pack", 0))
    assert ad[0] == b"# service=git-upload-pack\n" and ad[1] == "FLUSH"
    first = ad[2]
    assert isinstance(first, bytes) and first.startswith(f"{head} HEAD\0".encode())
    assert b"symref=HEAD:refs/heads/main" in first and b"agent=gitserver/0.1" in first
    assert f"{head} refs/tags/v1^{{}}\n".encode() in ad and f"{tag} refs/tags/v1\n".encode() in ad
    rp = lines(advertise_refs(repo, "git-receive-pack", 2))
    assert not any(isinstance(x, bytes) and (b" HEAD" in x or b"^{}" in x) for x in rp)
    with pytest.raises(UnsupportedRequest):
        advertise_refs(repo, "git-upload-archive", 0)


def test_empty_repo_advertisements(tmp_path: Path) -> None:
    DulwichRepository.create(str(tmp_path / "e.git"))
    with DulwichRepository(str(tmp_path / "e.git")) as empty:
        ad = lines(advertise_refs(empty, "git-receive-pack", 0))
        assert isinstance(ad[2], bytes) and ad[2].startswith(b"0" * 40 + b" capabilities^{}\0")
        v2 = lines(advertise_refs(empty, "git-upload-pack", 2))
        assert v2[0] == b"version 2\n" and b"ls-refs=unborn\n" in v2 and b"object-info\n" in v2
        body = pkt_text("command=ls-refs") + b"0001" + pkt_text("unborn") + pkt_text("symrefs") + b"0000"
        assert lines(run(serve_upload_pack, body, empty, version=2)) == [
            b"unborn HEAD symref-target:refs/heads/main\n",
            "FLUSH",
        ]


def test_v0_clone_round(repo: DulwichRepository, bare: Path) -> None:
    head, _, _ = tips(bare)
    body = pkt_text(f"want {head} multi_ack_detailed side-band-64k ofs-delta") + b"0000" + pkt_text("done")
    out = run(serve_upload_pack, body, repo)
    assert out.startswith(b"0008NAK\n")
    packets = lines(out)
    assert packets[1] == b"\x02Counting objects: 9, done.\n"
    pack = b"".join(x[1:] for x in packets if isinstance(x, bytes) and x[:1] == b"\x01")
    assert pack.startswith(b"PACK\x00\x00\x00\x02\x00\x00\x00\x09")
    assert packets[-1] == "FLUSH" and len(packets) == 4  # NAK, progress, one data packet, flush


def test_v0_negotiation_ready_with_no_done(repo: DulwichRepository, bare: Path) -> None:
    head, parent, _ = tips(bare)
    body = (
        pkt_text(f"want {head} multi_ack_detailed no-done side-band-64k no-progress")
        + b"0000"
        + pkt_text(f"have {parent}")
        + pkt_text(f"have {'1' * 40}")
        + b"0000"
    )
    out = run(serve_upload_pack, body, repo)
    assert out.startswith(
        pkt_text(f"ACK {parent} common")
        + pkt_text(f"ACK {parent} ready")
        + pkt_text("NAK")
        + pkt_text(f"ACK {parent}")
    )
    assert b"\x01PACK" in out and b"\x02" not in out[: out.index(b"\x01PACK")][-1:]


def test_v0_not_our_ref(repo: DulwichRepository) -> None:
    body = pkt_text(f"want {'2' * 40} side-band-64k") + b"0000" + pkt_text("done")
    assert lines(run(serve_upload_pack, body, repo)) == [
        f"ERR upload-pack: not our ref {'2' * 40}\n".encode()
    ]


def test_v2_fetch_rounds(repo: DulwichRepository, bare: Path) -> None:
    head, parent, _ = tips(bare)
    base = pkt_text("command=fetch") + b"0001" + pkt_text(f"want {head}")
    not_ready = lines(run(serve_upload_pack, base + pkt_text(f"have {'3' * 40}") + b"0000", repo, version=2))
    assert not_ready == [b"acknowledgments\n", b"NAK\n", "FLUSH"]
    ready = run(serve_upload_pack, base + pkt_text(f"have {parent}") + b"0000", repo, version=2)
    assert ready.startswith(
        pkt_text("acknowledgments")
        + pkt_text(f"ACK {parent}")
        + pkt_text("ready")
        + b"0001"
        + pkt_text("packfile")
    )
    waiting = lines(
        run(
            serve_upload_pack,
            base + pkt_text(f"have {parent}") + pkt_text("wait-for-done") + b"0000",
            repo,
            version=2,
        )
    )
    assert waiting == [b"acknowledgments\n", f"ACK {parent}\n".encode(), "FLUSH"]


def test_v2_object_info(repo: DulwichRepository, bare: Path) -> None:
    head, _, _ = tips(bare)
    size = len(git("cat-file", "commit", head, cwd=bare).encode())
    body = pkt_text("command=object-info") + b"0001" + pkt_text("size") + pkt_text(f"oid {head}") + b"0000"
    assert lines(run(serve_upload_pack, body, repo, version=2)) == [
        b"size\n",
        f"{head} {size}\n".encode(),
        "FLUSH",
    ]


def test_v2_ls_refs_prefix_and_peel(repo: DulwichRepository, bare: Path) -> None:
    head, _, tag = tips(bare)
    body = (
        pkt_text("command=ls-refs") + b"0001" + pkt_text("peel") + pkt_text("ref-prefix refs/tags/") + b"0000"
    )
    assert lines(run(serve_upload_pack, body, repo, version=2)) == [
        f"{tag} refs/tags/v1 peeled:{head}\n".encode(),
        "FLUSH",
    ]


def test_receive_pack_empty_and_bad(repo: DulwichRepository) -> None:
    assert run(serve_receive_pack, b"0000", repo) == b""
    assert run(serve_receive_pack, b"", repo) == b""
    out = lines(run(serve_receive_pack, b"zzzz", repo))
    assert len(out) == 1 and isinstance(out[0], bytes) and out[0].startswith(b"ERR ")


def test_receive_pack_broken_pack_reports_unpack_error(tmp_path: Path, bare: Path) -> None:
    head, _, _ = tips(bare)
    DulwichRepository.create(str(tmp_path / "t.git"))
    with DulwichRepository(str(tmp_path / "t.git")) as target:
        body = (
            pkt(f"{'0' * 40} {head} refs/heads/main\0report-status side-band-64k\n") + b"0000" + b"PACKjunk"
        )
        out = run(serve_receive_pack, body, target)
        inner = b"".join(x[1:] for x in lines(out) if isinstance(x, bytes) and x[:1] == b"\x01")
        report = lines(inner)
        assert (
            isinstance(report[0], bytes) and report[0].startswith(b"unpack ") and report[0] != b"unpack ok\n"
        )
        assert report[1] == b"ng refs/heads/main unpacker error\n"
        assert target.list_refs() == []


def pkt(text: str) -> bytes:
    from smart_http.pktline import pkt as frame

    return frame(text.encode())


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from([0, 2]))
def test_hostile_bodies_never_crash_drivers(repo: DulwichRepository, data: bytes, version: int) -> None:
    run(serve_upload_pack, data, repo, version=version)
    run(serve_receive_pack, data, repo)


# -- the ASGI bridge, driven in memory


async def call(
    scope: dict[str, object], body_chunks: list[bytes], repo_path: str
) -> tuple[int, dict[bytes, bytes], bytes]:
    from contextlib import asynccontextmanager

    chunks = list(body_chunks)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if chunks:
            data = chunks.pop(0)
            return {"type": "http.request", "body": data, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    @asynccontextmanager
    async def open_repo(write: bool):  # type: ignore[no-untyped-def]
        with DulwichRepository(repo_path) as r:
            yield r

    scope = {"type": "http", "headers": [], **scope}
    await serve_git(
        scope,
        receive,
        send,
        action=str(scope.pop("action")),
        service=scope.pop("service", None),  # type: ignore[arg-type]
        open_repo=open_repo,
        push_context=None,
        limiter=trio.CapacityLimiter(2),
    )
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
    assert sent[-1].get("more_body", False) is False
    return int(start["status"]), dict(start["headers"]), body  # type: ignore[call-overload, arg-type]


async def test_asgi_gzip_upload_pack(bare: Path) -> None:
    head, _, _ = tips(bare)
    raw = pkt_text(f"want {head} side-band-64k") + b"0000" + pkt_text("done")
    packed = gzip.compress(raw)
    scope = {
        "method": "POST",
        "action": "git-upload-pack",
        "headers": [
            (b"content-type", b"application/x-git-upload-pack-request"),
            (b"content-encoding", b"gzip"),
        ],
    }
    status, headers, body = await call(scope, [packed[:7], packed[7:]], str(bare))
    assert status == 200 and headers[b"content-type"] == b"application/x-git-upload-pack-result"
    assert headers[b"cache-control"].startswith(b"no-cache")
    assert body.startswith(b"0008NAK\n") and b"\x01PACK" in body


async def test_asgi_info_refs_v2_and_errors(bare: Path) -> None:
    status, headers, body = await call(
        {
            "method": "GET",
            "action": "info/refs",
            "service": "git-upload-pack",
            "headers": [(b"git-protocol", b"version=2")],
        },
        [],
        str(bare),
    )
    assert status == 200 and body.startswith(b"000eversion 2\n")
    assert headers[b"content-type"] == b"application/x-git-upload-pack-advertisement"
    assert (
        await call({"method": "POST", "action": "info/refs", "service": "git-upload-pack"}, [], str(bare))
    )[0] == 405
    assert (await call({"method": "GET", "action": "info/refs", "service": None}, [], str(bare)))[0] == 403
    assert (await call({"method": "GET", "action": "git-upload-pack"}, [], str(bare)))[0] == 405
    bad_type = {"method": "POST", "action": "git-receive-pack", "headers": [(b"content-type", b"text/plain")]}
    assert (await call(bad_type, [b"0000"], str(bare)))[0] == 415
