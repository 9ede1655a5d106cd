"""Generator of the SHA-1 collision-detection tables (native/src/sha1dc_tables.h and
native/sha1dc_tables.py), from first principles.

Method (Stevens and Shumow, USENIX Security 2017, "Speeding up detection of SHA-1 collision
attacks using unavoidable attack conditions"): every known practical SHA-1 collision attack
uses one of 32 disturbance vectors (DVs) of type I(K,b) or II(K,b). A DV is a solution of
the message-expansion recurrence, fixed by 16 consecutive words DV[K..K+15]:

- I(K,b): all zero except DV[K+15] = 2^b;
- II(K,b): all zero except DV[K+1] = DV[K+3] = rotl(2^b, 31) and DV[K+15] = 2^b.

Each DV gives the message XOR difference of its local collisions,
dm[j] = DV[j] ^ rotl(DV[j-1],5) ^ DV[j-2] ^ rotl(DV[j-3],30) ^ rotl(DV[j-4],30) ^ rotl(DV[j-5],30),
and a step ``testt`` (58 or 65) at which the DV leaves no state difference, so the
colliding partner block would share our state there. Recompressing from that state with
W ^ dm, backwards to the chaining input and forwards to the output, rebuilds the partner;
an equal output is a collision (see native/sha1dc_pure.py and native/src/sha1dc.c).

Unavoidable conditions (the cheap filter run before a recompression) are derived here, not
copied: along a DV the XOR difference of every state word A[t] is DV[t-1] (no carries, as in
every optimal path), so each step t >= 20 is a modular equation over signed bit
differences: rotl5(A[t]) + F + rotl30(A[t-4]) + W[t] - A[t+1] = 0 (mod 2^32). A message
term's sign is fixed by the message bit (0 -> 1 is +), a state term's sign is a variable
shared across the steps that use that state word, and the boolean function's output is a
free term (present and of free sign in the parity rounds; maybe present in the Ch and Maj
rounds). A carry-aware dynamic programme over bit positions finds every sign parity that
all solutions of a step share; joined over the steps (union-find with parities), the
relations between message bits alone are the unavoidable conditions
``W[i] bit a ^ W[j] bit b == v`` that any attack along that DV must satisfy.

Run ``python native/sha1dc_gen.py`` to rewrite both outputs; tests/native/test_sha1dc.py
checks they are current.
"""

from __future__ import annotations

import os
import sys

MASK = 0xFFFFFFFF
FIRST_STEP = 20  # the non-linear part of an attack's path lies before this step
LAST_STEP = 74  # A[76..80] form the output: only their modular differences are bound

DV_LIST: list[tuple[str, int, int]] = [
    ("I", 43, 0), ("I", 44, 0), ("I", 45, 0), ("I", 46, 0), ("I", 46, 2), ("I", 47, 0),
    ("I", 47, 2), ("I", 48, 0), ("I", 48, 2), ("I", 49, 0), ("I", 49, 2), ("I", 50, 0),
    ("I", 50, 2), ("I", 51, 0), ("I", 51, 2), ("I", 52, 0),
    ("II", 45, 0), ("II", 46, 0), ("II", 46, 2), ("II", 47, 0), ("II", 48, 0), ("II", 49, 0),
    ("II", 49, 2), ("II", 50, 0), ("II", 50, 2), ("II", 51, 0), ("II", 51, 2), ("II", 52, 0),
    ("II", 53, 0), ("II", 54, 0), ("II", 55, 0), ("II", 56, 0),
]  # fmt: skip

Var = tuple[str, int, int] | tuple[str, int]
Condition = tuple[int, int, int, int, int]  # (i, a, j, b, v): W[i]>>a ^ W[j]>>b & 1 == v


def rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & MASK if n else x


def disturbance_vector(kind: str, k: int, b: int) -> dict[int, int]:
    """DV[t] for t in -5..79, expanded both ways from its defining window."""
    window = {15: 1 << b} if kind == "I" else {1: rotl(1 << b, 31), 3: rotl(1 << b, 31), 15: 1 << b}
    dv = {k + i: window.get(i, 0) for i in range(16)}
    for t in range(k + 16, 80):
        dv[t] = rotl(dv[t - 3] ^ dv[t - 8] ^ dv[t - 14] ^ dv[t - 16], 1)
    for t in range(k - 1, -6, -1):
        dv[t] = rotl(dv[t + 16], 31) ^ dv[t + 13] ^ dv[t + 8] ^ dv[t + 2]
    return dv


def message_difference(dv: dict[int, int]) -> list[int]:
    return [
        dv[j]
        ^ rotl(dv[j - 1], 5)
        ^ dv[j - 2]
        ^ rotl(dv[j - 3], 30)
        ^ rotl(dv[j - 4], 30)
        ^ rotl(dv[j - 5], 30)
        for j in range(80)
    ]


def test_step(dv: dict[int, int]) -> int:
    """58 or 65: a step where the DV leaves every state word without difference."""
    for t in (58, 65):
        if all(dv[t - i] == 0 for i in range(1, 6)):
            return t
    raise ValueError("DV has no zero-difference test step")


def _bits(x: int) -> list[int]:
    return [i for i in range(32) if x >> i & 1]


# A term: (position, variable or None for a free one, +1 input / -1 result, maybe-absent)
Term = tuple[int, Var | None, int, bool]


def _step_terms(dv: dict[int, int], dm: list[int], j: int, counter: list[int]) -> list[Term]:
    terms: list[Term] = []
    terms += [((q + 5) % 32, ("A", j, q), 1, False) for q in _bits(dv[j - 1])]
    terms += [((q + 30) % 32, ("A", j - 4, q), 1, False) for q in _bits(dv[j - 5])]
    terms += [(p, ("W", j, p), 1, False) for p in _bits(dm[j])]
    terms += [(q, ("A", j + 1, q), -1, False) for q in _bits(dv[j])]
    inputs = [
        set(_bits(dv[j - 2])),
        {(q + 30) % 32 for q in _bits(dv[j - 3])},
        {(q + 30) % 32 for q in _bits(dv[j - 4])},
    ]
    parity_round = 20 <= j < 40 or j >= 60
    for p in range(32):
        hits = sum(p in s for s in inputs)
        if (parity_round and hits % 2) or (not parity_round and hits):
            counter[0] += 1
            terms.append((p, ("F", counter[0]), 1, not parity_round))
    return terms


def _feasible(terms: list[Term], fixed: dict[Var, int]) -> bool:
    """Is there a choice of signs (flip=1 means the bit goes 0 -> 1, a +2^p term) that
    makes the signed sum 0 mod 2^32, given the fixed flips? A DP over positions keeps
    the set of possible carries."""
    by_pos: dict[int, list[Term]] = {}
    for t in terms:
        by_pos.setdefault(t[0], []).append(t)
    carries = {0}
    for p in range(32):
        options: set[int] = {0}
        for _, var, coef, maybe in by_pos.get(p, []):
            vals: set[int] = set()
            flips = [fixed[var]] if var is not None and var in fixed else [0, 1]
            for f in flips:
                vals.add(coef if f else -coef)
            if maybe:
                vals.add(0)
            options = {o + v for o in options for v in vals}
        nxt = {(c + o) // 2 for c in carries for o in options if (c + o) % 2 == 0}
        if not nxt:
            return False
        carries = nxt
    return True


class _Parities:
    """Union-find over variables with the parity of each variable to its root."""

    def __init__(self) -> None:
        self.parent: dict[Var, tuple[Var, int]] = {}

    def find(self, x: Var) -> tuple[Var, int]:
        parity = 0
        while x in self.parent and self.parent[x][0] != x:
            x, p = self.parent[x]
            parity ^= p
        return x, parity

    def union(self, x: Var, y: Var, rel: int) -> None:
        (rx, px), (ry, py) = self.find(x), self.find(y)
        if rx == ry:
            if px ^ py != rel:
                raise ValueError("contradictory conditions")
            return
        self.parent[rx] = (ry, px ^ py ^ rel)
        self.parent.setdefault(ry, (ry, 0))


def unavoidable_conditions(dv: dict[int, int]) -> list[Condition]:
    dm = message_difference(dv)
    uf = _Parities()
    one: Var = ("ONE", 0)
    counter = [0]
    for j in range(FIRST_STEP, LAST_STEP + 1):
        terms = _step_terms(dv, dm, j, counter)
        named = [t[1] for t in terms if t[1] is not None and t[1][0] != "F"]
        if not _feasible(terms, {}):
            raise ValueError(f"step {j} cannot follow the DV")
        forced: dict[Var, int] = {}
        for v in named:
            ok = [f for f in (0, 1) if _feasible(terms, {v: f})]
            if len(ok) == 1:
                forced[v] = ok[0]
                uf.union(v, one, ok[0] ^ 1)  # flip(one) is 1 by definition
        free = [v for v in named if v not in forced]
        for x in range(len(free)):
            for y in range(x + 1, len(free)):
                a, b = free[x], free[y]
                rels = [r for r in (0, 1) if any(_feasible(terms, {a: f, b: f ^ r}) for f in (0, 1))]
                if len(rels) == 1:
                    uf.union(a, b, rels[0])
    groups: dict[Var, list[tuple[Var, int]]] = {}
    for v in list(uf.parent):
        if v[0] in ("W", "ONE"):
            root, par = uf.find(v)
            groups.setdefault(root, []).append((v, par))
    conditions: list[Condition] = []
    for members in groups.values():
        members.sort(key=lambda m: (m[0][0] != "ONE", m[0]))
        v0, p0 = members[0]
        for v, p in members[1:]:
            if v0[0] == "ONE":
                raise ValueError("single-bit condition: not expected for these DVs")
            # flip = 1 - bit, so bit_v0 ^ bit_v == flip_v0 ^ flip_v
            assert len(v0) == 3 and len(v) == 3
            conditions.append((v0[1], v0[2], v[1], v[2], p0 ^ p))
    return sorted(conditions)


def build() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for kind, k, b in DV_LIST:
        dv = disturbance_vector(kind, k, b)
        out.append({
            "name": f"{kind}({k},{b})",
            "testt": test_step(dv),
            "dm": message_difference(dv),
            "conditions": unavoidable_conditions(dv),
        })  # fmt: skip
    return out


STAGE1_PER_DV = 7  # conditions per DV in the branch-free first pass (pass rate 1/128)


def stage1_conditions(dvs: list[dict[str, object]]) -> list[tuple[Condition, int]]:
    """A small set of conditions, each with the bit set of the DVs that need it, chosen
    greedily (most DVs first) until every DV has STAGE1_PER_DV of them."""
    owners: dict[Condition, int] = {}
    for n, d in enumerate(dvs):
        conds = d["conditions"]
        assert isinstance(conds, list)
        for c in conds:
            owners[c] = owners.get(c, 0) | (1 << n)
    have = [0] * len(dvs)
    chosen: list[tuple[Condition, int]] = []
    while min(have) < STAGE1_PER_DV:

        def gain(c: Condition) -> int:
            return sum(1 for n in range(len(dvs)) if owners[c] >> n & 1 and have[n] < STAGE1_PER_DV)

        best = max(sorted(owners), key=gain)
        if gain(best) == 0:
            break
        chosen.append((best, owners.pop(best)))
        for n in range(len(dvs)):
            if chosen[-1][1] >> n & 1:
                have[n] += 1
    return chosen


def render_c(dvs: list[dict[str, object]]) -> str:
    lines = [
        "/* sha1dc_tables.h: GENERATED by native/sha1dc_gen.py; do not edit. The 32 disturbance",
        " * vectors: name, test step, message difference and unavoidable conditions",
        " * (W[i] >> a ^ W[j] >> b) & 1 == v. */",
        "#ifndef GS_SHA1DC_TABLES_H",
        "#define GS_SHA1DC_TABLES_H",
        "#include <stdint.h>",
        "",
        "typedef struct { uint8_t i, a, j, b, v; } gs_dc_cond;",
        "typedef struct {",
        "    const char *name;",
        "    int testt;",
        "    int ncond;",
        "    gs_dc_cond cond[32];",
        "    uint32_t dm[80];",
        "} gs_dc_dv;",
        "",
        "static const gs_dc_dv GS_DC_DVS[] = {",
    ]
    for d in dvs:
        conds = d["conditions"]
        assert isinstance(conds, list) and len(conds) <= 32
        dm = d["dm"]
        assert isinstance(dm, list)
        cond_txt = ", ".join("{" + ", ".join(str(x) for x in c) + "}" for c in conds) or "{0, 0, 0, 0, 0}"
        lines.append(f'    {{"{d["name"]}", {d["testt"]}, {len(conds)}, {{{cond_txt}}}, {{')
        for r in range(0, 80, 8):
            lines.append("     " + " ".join(f"0x{w:08x}u," for w in dm[r : r + 8]))
        lines.append("    }},")
    lines += ["};", "#define GS_DC_NDVS ((int)(sizeof GS_DC_DVS / sizeof GS_DC_DVS[0]))", ""]
    lines += [
        "/* Branch-free first pass: the bit set of DVs whose conditions W already breaks. */",
        "static inline uint32_t gs_dc_stage1_fail(const uint32_t *W) {",
        "    uint32_t fail = 0;",
    ]
    for (i, a, j, b, v), owners in stage1_conditions(dvs):
        lines.append(
            f"    fail |= 0x{owners:08x}u & (0u - (((W[{i}] >> {a}) ^ (W[{j}] >> {b}) ^ {v}u) & 1u));"
        )
    lines += ["    return fail;", "}", "#endif", ""]
    return "\n".join(lines)


def render_py(dvs: list[dict[str, object]]) -> str:
    lines = [
        '"""GENERATED by native/sha1dc_gen.py; do not edit. The disturbance vectors of',
        'SHA-1 collision detection: (name, test step, message difference, conditions)."""',
        "",
        "from __future__ import annotations",
        "",
        "DVS: list[tuple[str, int, tuple[int, ...], tuple[tuple[int, int, int, int, int], ...]]] = [",
    ]
    for d in dvs:
        dm = d["dm"]
        conds = d["conditions"]
        assert isinstance(dm, list) and isinstance(conds, list)
        lines.append(f'    ("{d["name"]}", {d["testt"]}, (')
        for r in range(0, 80, 8):
            lines.append("        " + " ".join(f"0x{w:08X}," for w in dm[r : r + 8]))
        lines.append(f"    ), {tuple(conds)!r}),")
    lines += ["]  # fmt: skip", ""]
    return "\n".join(lines)


def outputs() -> dict[str, str]:
    root = os.path.dirname(os.path.abspath(__file__))
    dvs = build()
    return {
        os.path.join(root, "src", "sha1dc_tables.h"): render_c(dvs),
        os.path.join(root, "sha1dc_tables.py"): render_py(dvs),
    }


if __name__ == "__main__":
    for path, text in outputs().items():
        with open(path, "w") as fh:
            fh.write(text)
        print("wrote", path, file=sys.stderr)
