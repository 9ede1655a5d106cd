"""Fuzz smoke for ``make test`` (about 30 s for all targets): every committed seed and
regression input, then Hypothesis-generated and seed-mutated inputs per target, each within
TIME_BOUND_S. The million-execution campaigns are ``make fuzz`` (tests/fuzz/run.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS, TIME_BOUND_S

HERE = Path(__file__).parent
EXAMPLES = 1000


def _files(kind: str, name: str) -> list[bytes]:
    d = HERE / kind / name
    return [p.read_bytes() for p in sorted(d.iterdir())] if d.is_dir() else []


def _run(name: str, data: bytes) -> None:
    t = time.perf_counter()
    TARGETS[name](data)
    took = time.perf_counter() - t
    assert took < TIME_BOUND_S, f"{name}: {took:.2f}s on {len(data)} bytes"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_and_regressions(name: str) -> None:
    seeds = _files("corpus", name)
    assert seeds, f"no seed corpus for {name}"
    for data in seeds + _files("regressions", name):
        _run(name, data)


def _mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with a slice replaced by random bytes: keeps the grammar's shape so the
    parsers get past their first line."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        seed = draw(st.sampled_from(seeds))
        i = draw(st.integers(0, len(seed)))
        j = draw(st.integers(i, min(len(seed), i + 16)))
        return seed[:i] + draw(st.binary(max_size=24)) + seed[j:]

    return build()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hostile_inputs(name: str) -> None:
    seeds = _files("corpus", name)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.one_of(st.binary(max_size=512), _mutated(seeds)))
    def check(data: bytes) -> None:
        _run(name, data)

    check()
