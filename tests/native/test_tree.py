"""tree_links (C and pure twin): the links of real git trees, the same answers on any
input (differential fuzz), and only TreeError on hostile bytes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from native import TreeError, tree_pure

Impl = Callable[[bytes], tuple[bytes, bytes]]


def _cext() -> Impl:
    if native.cext is None:
        pytest.fail("C extension native._native is not built")
    return native.cext.tree_links  # type: ignore[no-any-return]


@pytest.fixture(params=["python", "c"])
def tree_links(request: pytest.FixtureRequest) -> Impl:
    return tree_pure.tree_links if request.param == "python" else _cext()


def _entry(mode: bytes, name: bytes, oid: bytes) -> bytes:
    return mode + b" " + name + b"\0" + oid


def test_splits_trees_blobs_and_skips_gitlinks(tree_links: Impl) -> None:
    a, b, c, d, e = (bytes([i]) * 20 for i in range(1, 6))
    data = b"".join(
        [
            _entry(b"100644", b"file", a),
            _entry(b"40000", b"dir", b),
            _entry(b"160000", b"sub", c),
            _entry(b"120000", b"link", d),
            _entry(b"0100755", b"x", e),
        ]
    )
    assert tree_links(data) == (b, a + d + e)
    assert tree_links(b"") == (b"", b"")


@pytest.mark.parametrize(
    "data",
    [
        b"100644 file",  # no NUL
        _entry(b"100644", b"f", b"x" * 19),  # short id
        _entry(b"", b"f", b"x" * 20),  # empty mode
        _entry(b"10064x", b"f", b"x" * 20),
        _entry(b"100644", b"", b"x" * 20),
        _entry(b"100644", b"a/b", b"x" * 20),
        _entry(b"100644", b".", b"x" * 20),
        _entry(b"40000", b"..", b"x" * 20),
        _entry(b"070000", b"f", b"x" * 20),  # unknown file type
        _entry(b"100644100644", b"f", b"x" * 20),  # no space within 8 bytes
    ],
)
def test_rejects_malformed_entries(tree_links: Impl, data: bytes) -> None:
    with pytest.raises(TreeError):
        tree_links(_entry(b"100644", b"ok", b"o" * 20) + data)


def test_matches_git_on_real_trees(tree_links: Impl, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent.parent
    listing = subprocess.run(["git", "ls-tree", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
    raw = subprocess.run(
        ["git", "cat-file", "tree", "HEAD"], cwd=root, capture_output=True, check=True
    ).stdout
    trees, blobs = tree_links(raw)
    want_t = b"".join(
        bytes.fromhex(line.split()[2]) for line in listing.stdout.splitlines() if " tree " in line
    )
    want_b = b"".join(
        bytes.fromhex(line.split()[2]) for line in listing.stdout.splitlines() if " blob " in line
    )
    assert (trees, blobs) == (want_t, want_b)


_piece = st.one_of(
    st.builds(
        _entry,
        st.sampled_from([b"100644", b"40000", b"160000", b"120000", b"0100755", b"777", b"1", b"x"]),
        st.sampled_from([b"a", b"b/c", b".", b"..", b"", b"name"]),
        st.binary(min_size=20, max_size=20),
    ),
    st.binary(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(_piece, max_size=6))
def test_c_and_pure_agree_on_any_input(parts: list[bytes]) -> None:
    data = b"".join(parts)
    results = []
    for impl in (tree_pure.tree_links, _cext()):
        try:
            results.append(impl(data))
        except TreeError as exc:
            results.append(("error", exc.offset))
    assert results[0] == results[1]
