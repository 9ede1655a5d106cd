"""Generated packs checked by real git: index-pack --strict, fsck, object sets."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import pytest

from storage.model import FilterSpec, ObjType, PackRequest
from storage.packgen import FLUSH_SIZE, decode_entry_size, encode_entry_header, encode_ofs
from storage.repository import Repository
from tests.storage.gitrepos import build_history, index_pack, load_store, rev_list_objects, rev_parse, run_git


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_history(tmp_path_factory.mktemp("packgen") / "src.git", commits=90, files=20)


@pytest.fixture(scope="module")
def repo(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository(load_store(tmp_path_factory.mktemp("packgenstore"), src))


def make_pack(repo: Repository, request: PackRequest) -> tuple[bytes, list[str], list[int]]:
    out = bytearray()
    sizes: list[int] = []
    messages: list[str] = []

    def write(data: bytes) -> None:
        sizes.append(len(data))
        out.extend(data)

    repo.write_pack(request, None, write, messages.append)
    return bytes(out), messages, sizes


def entry_kinds(pack: bytes, repo_dir: Path) -> dict[str, int]:
    """How many entries of each kind git's verify-pack sees (whole vs delta)."""
    path = repo_dir / "objects" / "pack"
    idx = sorted(path.glob("*.idx"), key=lambda p: p.stat().st_mtime)[-1]
    out = run_git("verify-pack", "-v", idx).decode()
    counts = {"whole": 0, "delta": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and len(parts[0]) == 40:
            counts["delta" if len(parts) > 6 else "whole"] += 1
    return counts


def new_repo(path: Path) -> Path:
    run_git("init", "-q", "--bare", path)
    return path


@pytest.mark.parametrize("ofs_delta", [True, False])
@pytest.mark.parametrize("wants", [["main"], ["main", "feature"], ["v2"], ["feature"]])
def test_clone_pack_is_valid_and_complete(
    src: Path, repo: Repository, tmp_path: Path, ofs_delta: bool, wants: list[str]
) -> None:
    request = PackRequest(wants=[rev_parse(src, w) for w in wants], ofs_delta=ofs_delta)
    pack, _, sizes = make_pack(repo, request)
    assert pack[:4] == b"PACK" and struct.unpack(">II", pack[4:12])[0] == 2
    assert hashlib.sha1(pack[:-20]).digest() == pack[-20:]
    assert max(sizes) <= FLUSH_SIZE
    client = new_repo(tmp_path / "client.git")
    got = index_pack(client, pack)
    assert got == rev_list_objects(src, *wants)
    assert struct.unpack(">I", pack[8:12])[0] == len(got)
    kinds = entry_kinds(pack, client)
    assert kinds["delta"] > 0, "stored deltas should be reused"
    for i, w in enumerate(wants):
        run_git("update-ref", f"refs/x/{i}", rev_parse(src, w).hex(), cwd=client)
    run_git("fsck", "--strict", "--no-dangling", cwd=client)


def test_progress_messages_match_git(src: Path, repo: Repository) -> None:
    request = PackRequest(wants=[rev_parse(src, "main")], ofs_delta=True)
    pack, messages, _ = make_pack(repo, request)
    n = struct.unpack(">I", pack[8:12])[0]
    assert messages[0] == f"Enumerating objects: {n}, done.\n"
    assert messages[1] == f"Counting objects: 100% ({n}/{n}), done.\n"
    total = messages[-1]
    assert total.startswith(f"Total {n} (delta ") and total.endswith("), pack-reused 0\n")
    assert f"reused {n} (delta " in total  # a full clone reuses every stored entry


@pytest.mark.parametrize("ofs_delta", [True, False])
def test_thin_fetch_pack_uses_client_bases(
    src: Path, repo: Repository, tmp_path: Path, ofs_delta: bool
) -> None:
    old, new = rev_parse(src, "main~12"), rev_parse(src, "main")
    client = new_repo(tmp_path / "client.git")
    index_pack(client, make_pack(repo, PackRequest(wants=[old], ofs_delta=True))[0])
    run_git("update-ref", "refs/heads/main", old.hex(), cwd=client)

    request = PackRequest(wants=[new], haves=[old], ofs_delta=ofs_delta, thin_pack=True)
    thin, _, _ = make_pack(repo, request)
    sent = struct.unpack(">I", thin[8:12])[0]
    fixed = index_pack(client, thin, fix_thin=True)
    assert len(fixed) >= sent
    run_git("update-ref", "refs/heads/main", new.hex(), cwd=client)
    run_git("fsck", "--strict", "--no-dangling", cwd=client)

    # the same fetch without thin-pack must be self-contained
    request.thin_pack = False
    full, _, _ = make_pack(repo, request)
    scratch = new_repo(tmp_path / "scratch.git")
    objs = index_pack(scratch, full, strict=False)  # self-contained, though not connected
    assert struct.unpack(">I", full[8:12])[0] == len(objs) == sent
    assert objs >= rev_list_objects(src, "main", "--not", "main~12") - rev_list_objects(src, "main~12")


def test_filtered_pack_undeltifies_objects_whose_base_is_left_out(
    src: Path, repo: Repository, tmp_path: Path
) -> None:
    tip = rev_parse(src, "main")
    for spec in ("blob:limit=2200", "blob:none", "tree:1"):
        request = PackRequest(wants=[tip], ofs_delta=True, filter=FilterSpec.parse(spec))
        pack, messages, _ = make_pack(repo, request)
        client = new_repo(tmp_path / f"client-{spec.replace(':', '-')}.git")
        got = index_pack(client, pack, strict=False)  # a partial clone is not connected
        assert got == rev_list_objects(src, f"--filter={spec}", "main")
        assert messages[-1].startswith(f"Total {len(got)} ")


def test_blob_limit_cutting_a_delta_base_sends_the_delta_whole(
    src: Path, repo: Repository, tmp_path: Path
) -> None:
    store = repo.store
    sizes = {e.oid: e.size for e in store.iter_entries()}
    limit = next(
        sizes[e.base]
        for e in store.iter_entries()
        if e.type == ObjType.BLOB and e.base is not None and sizes.get(e.base, 0) > e.size
    )
    request = PackRequest(wants=[rev_parse(src, "main"), rev_parse(src, "feature")], ofs_delta=True)
    request.filter = FilterSpec("blob:limit", limit)
    pack, messages, _ = make_pack(repo, request)
    got = index_pack(new_repo(tmp_path / "client.git"), pack, strict=False)
    assert got == rev_list_objects(src, f"--filter=blob:limit={limit}", "main", "feature")
    total, reused = (int(x) for x in re.findall(r"Total (\d+).*reused (\d+)", messages[-1])[0])
    assert total == len(got) and reused < total


def test_shallow_pack_sends_tips_whole(src: Path, repo: Repository, tmp_path: Path) -> None:
    tip = rev_parse(src, "main")
    request = PackRequest(wants=[tip], depth=1, ofs_delta=True)
    update = repo.shallow_update(request)
    out = bytearray()
    repo.write_pack(request, update, out.extend, None)
    client = new_repo(tmp_path / "client.git")
    (client / "shallow").write_text(tip.hex() + "\n")
    got = index_pack(client, bytes(out))
    assert got == rev_list_objects(src, "--no-walk", "main") | rev_list_objects(src, "main^{tree}")
    run_git("update-ref", "refs/heads/main", tip.hex(), cwd=client)
    run_git("fsck", "--strict", "--no-dangling", cwd=client)


@pytest.mark.parametrize("value", [0, 1, 15, 16, 127, 128, 4096, 1 << 20, (1 << 35) + 3])
def test_entry_header_round_trip(value: int) -> None:
    for kind in (1, 2, 3, 4, 6, 7):
        header = encode_entry_header(kind, value)
        assert header[0] >> 4 & 7 == kind
        assert decode_entry_size(header) == value


def _decode_ofs(data: bytes) -> int:
    byte = data[0]
    value = byte & 0x7F
    pos = 1
    while byte & 0x80:
        byte = data[pos]
        value = ((value + 1) << 7) | (byte & 0x7F)
        pos += 1
    return value


@pytest.mark.parametrize("value", [1, 127, 128, 16511, 16512, 1 << 30])
def test_ofs_encoding_round_trip(value: int) -> None:
    assert _decode_ofs(encode_ofs(value)) == value
