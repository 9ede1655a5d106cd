"""Line diff: which lines of A and B changed, chosen the way ``git diff`` chooses them.

How it works (so the output equals git's, not just "a" minimal diff):
1. Lines are interned to ints; the common prefix and suffix are set aside.
2. Lines with no equal line in the other file are changes for sure and are taken out
   before the search; lines with very many equals (at least about sqrt(n)) are taken out
   too when they sit inside a run of such lines (the classic discard step of diff tools,
   which keeps the search small and gives the same choices as git's xdiff).
3. Myers' O(ND) search with the linear-space "middle snake" divide and conquer
   (E. W. Myers, "An O(ND) Difference Algorithm and Its Variations", Algorithmica 1(2),
   1986, section 4b). Ties are broken as git breaks them (diagonals scanned from the
   highest down; a deletion preferred over an insertion when both reach as far), and
   when the cost of one split passes about sqrt(n) (at least 256) the furthest-reaching
   diagonal is taken instead of the optimal one, which bounds the time on huge diffs.
4. Each group of changed lines is slid as far down as equal lines allow, then back up to
   line up with a change in the other file if it can; otherwise git's "indent heuristic"
   (default since git 2.14) picks the slide position whose split points have the least
   surprising indentation and blank lines.
Result: ``Change(a_start, a_count, b_start, b_count)`` groups in order (0-based).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from storage.indent_heuristic import best_shift

MAX_EQ_LIMIT = 1024
MIN_COST_LIMIT = 256
SIMSCAN_WINDOW = 100
KEEP_DISCARD_RUN = 4


class Change(NamedTuple):
    a_start: int
    a_count: int
    b_start: int
    b_count: int


def _rough_sqrt(n: int) -> int:
    i = 1
    while n > 0:
        i <<= 1
        n >>= 2
    return i


def diff_lines(a: Sequence[bytes], b: Sequence[bytes]) -> list[Change]:
    """The change groups turning lines ``a`` into lines ``b`` (lines keep their ``\\n``)."""
    ids: dict[bytes, int] = {}
    ha = [ids.setdefault(line, len(ids)) for line in a]
    hb = [ids.setdefault(line, len(ids)) for line in b]
    na, nb = len(ha), len(hb)
    # rchg arrays carry one sentinel on each side: index i of a line is slot i + 1.
    ca = [0] * (na + 2)
    cb = [0] * (nb + 2)
    lo = 0
    while lo < na and lo < nb and ha[lo] == hb[lo]:
        lo += 1
    ea, eb = na, nb
    while ea > lo and eb > lo and ha[ea - 1] == hb[eb - 1]:
        ea -= 1
        eb -= 1
    keep_a, keep_b = _discard(ha, hb, lo, ea, eb, ca, cb)
    _search(ha, hb, keep_a, keep_b, ca, cb)
    _compact(a, ha, ca, hb, cb)
    _compact(b, hb, cb, ha, ca)
    return _script(ca, cb, na, nb)


def _discard(
    ha: list[int], hb: list[int], lo: int, ea: int, eb: int, ca: list[int], cb: list[int]
) -> tuple[list[int], list[int]]:
    """Mark lines that cannot match as changed; return the indices left for the search."""
    count_a: dict[int, int] = {}
    count_b: dict[int, int] = {}
    for h in ha:
        count_a[h] = count_a.get(h, 0) + 1
    for h in hb:
        count_b[h] = count_b.get(h, 0) + 1

    def classify(h: list[int], start: int, end: int, other: dict[int, int], limit: int) -> list[int]:
        marks = []
        for i in range(start, end):
            n = other.get(h[i], 0)
            marks.append(0 if n == 0 else 2 if n >= limit else 1)
        return marks

    def kept(h: list[int], start: int, end: int, other: dict[int, int], rchg: list[int]) -> list[int]:
        limit = min(_rough_sqrt(len(h)), MAX_EQ_LIMIT)
        marks = classify(h, start, end, other, limit)
        out = []
        for k, mark in enumerate(marks):
            if mark == 1 or (mark == 2 and not _discard_multi(marks, k)):
                out.append(start + k)
            else:
                rchg[start + k + 1] = 1
        return out

    return kept(ha, lo, ea, count_b, ca), kept(hb, lo, eb, count_a, cb)


def _discard_multi(marks: list[int], i: int) -> bool:
    """Whether the many-matches line ``i`` sits inside a run dominated by no-match lines."""
    start = max(0, i - SIMSCAN_WINDOW)
    end = min(len(marks) - 1, i + SIMSCAN_WINDOW)
    none_before, multi_before = 0, 1
    r = i - 1
    while r >= start:
        if marks[r] == 0:
            none_before += 1
        elif marks[r] == 2:
            multi_before += 1
        else:
            break
        r -= 1
    if none_before == 0:
        return False
    none_after, multi_after = 0, 1
    r = i + 1
    while r <= end:
        if marks[r] == 0:
            none_after += 1
        elif marks[r] == 2:
            multi_after += 1
        else:
            break
        r += 1
    if none_after == 0:
        return False
    nones = none_before + none_after
    multis = multi_before + multi_after
    return multis * KEEP_DISCARD_RUN < multis + nones


def _search(
    ha: list[int], hb: list[int], keep_a: list[int], keep_b: list[int], ca: list[int], cb: list[int]
) -> None:
    """Myers' divide and conquer over the kept lines; marks changed lines in ca / cb."""
    x = [ha[i] for i in keep_a]
    y = [hb[i] for i in keep_b]
    cost_limit = max(_rough_sqrt(len(x) + len(y) + 3), MIN_COST_LIMIT)
    size = len(x) + len(y) + 3
    fwd = [0] * (2 * size + 2)
    bwd = [0] * (2 * size + 2)
    shift = len(y) + 1  # diagonal k = i - j lives at index k + shift
    stack = [(0, len(x), 0, len(y))]
    while stack:
        off1, lim1, off2, lim2 = stack.pop()
        while off1 < lim1 and off2 < lim2 and x[off1] == y[off2]:
            off1 += 1
            off2 += 1
        while off1 < lim1 and off2 < lim2 and x[lim1 - 1] == y[lim2 - 1]:
            lim1 -= 1
            lim2 -= 1
        if off1 == lim1:
            for j in range(off2, lim2):
                cb[keep_b[j] + 1] = 1
        elif off2 == lim2:
            for i in range(off1, lim1):
                ca[keep_a[i] + 1] = 1
        else:
            s1, s2 = _middle_snake(x, y, off1, lim1, off2, lim2, fwd, bwd, shift, cost_limit)
            stack.append((s1, lim1, s2, lim2))
            stack.append((off1, s1, off2, s2))


def _middle_snake(
    x: list[int],
    y: list[int],
    off1: int,
    lim1: int,
    off2: int,
    lim2: int,
    fwd: list[int],
    bwd: list[int],
    shift: int,
    cost_limit: int,
) -> tuple[int, int]:
    """A split point (i, j) on an optimal (or, past the cost limit, a good) edit path."""
    dmin, dmax = off1 - lim2, lim1 - off2
    fmid, bmid = off1 - off2, lim1 - lim2
    odd = (fmid - bmid) & 1
    fmin = fmax = fmid
    bmin = bmax = bmid
    fwd[fmid + shift] = off1
    bwd[bmid + shift] = lim1
    big = lim1 + lim2 + 1
    cost = 1
    while True:
        if fmin > dmin:
            fmin -= 1
            fwd[fmin - 1 + shift] = -1
        else:
            fmin += 1
        if fmax < dmax:
            fmax += 1
            fwd[fmax + 1 + shift] = -1
        else:
            fmax -= 1
        for d in range(fmax, fmin - 1, -2):
            left, right = fwd[d - 1 + shift], fwd[d + 1 + shift]
            i = left + 1 if left >= right else right
            j = i - d
            while i < lim1 and j < lim2 and x[i] == y[j]:
                i += 1
                j += 1
            fwd[d + shift] = i
            if odd and bmin <= d <= bmax and bwd[d + shift] <= i:
                return i, j
        if bmin > dmin:
            bmin -= 1
            bwd[bmin - 1 + shift] = big
        else:
            bmin += 1
        if bmax < dmax:
            bmax += 1
            bwd[bmax + 1 + shift] = big
        else:
            bmax -= 1
        for d in range(bmax, bmin - 1, -2):
            left, right = bwd[d - 1 + shift], bwd[d + 1 + shift]
            i = left if left < right else right - 1
            j = i - d
            while i > off1 and j > off2 and x[i - 1] == y[j - 1]:
                i -= 1
                j -= 1
            bwd[d + shift] = i
            if not odd and fmin <= d <= fmax and i <= fwd[d + shift]:
                return i, j
        if cost >= cost_limit:
            return _best_effort(fwd, bwd, shift, off1, lim1, off2, lim2, fmin, fmax, bmin, bmax)
        cost += 1


def _best_effort(
    fwd: list[int],
    bwd: list[int],
    shift: int,
    off1: int,
    lim1: int,
    off2: int,
    lim2: int,
    fmin: int,
    fmax: int,
    bmin: int,
    bmax: int,
) -> tuple[int, int]:
    fbest, fbest_i = -1, -1
    for d in range(fmax, fmin - 1, -2):
        i = min(fwd[d + shift], lim1)
        j = i - d
        if lim2 < j:
            i, j = lim2 + d, lim2
        if fbest < i + j:
            fbest, fbest_i = i + j, i
    bbest, bbest_i = lim1 + lim2 + 1, -1
    for d in range(bmax, bmin - 1, -2):
        i = max(off1, bwd[d + shift])
        j = i - d
        if j < off2:
            i, j = off2 + d, off2
        if i + j < bbest:
            bbest, bbest_i = i + j, i
    if (lim1 + lim2) - bbest < fbest - (off1 + off2):
        return fbest_i, fbest - fbest_i
    return bbest_i, bbest - bbest_i


# -- sliding change groups -------------------------------------------------------------
# A file's changed lines form groups separated by unchanged lines; group k of one file
# pairs with group k of the other (either may be empty). Slots are line index + 1.


class _Group:
    __slots__ = ("end", "start")

    def __init__(self, rchg: list[int]) -> None:
        self.start = self.end = 1
        while rchg[self.end]:
            self.end += 1


def _next(g: _Group, rchg: list[int], n: int) -> bool:
    if g.end == n + 1:
        return False
    g.start = g.end + 1
    g.end = g.start
    while rchg[g.end]:
        g.end += 1
    return True


def _previous(g: _Group, rchg: list[int]) -> bool:
    if g.start == 1:
        return False
    g.end = g.start - 1
    g.start = g.end
    while rchg[g.start - 1]:
        g.start -= 1
    return True


def _slide_down(g: _Group, rchg: list[int], h: list[int]) -> bool:
    if g.end <= len(h) and h[g.start - 1] == h[g.end - 1]:
        rchg[g.start] = 0
        rchg[g.end] = 1
        g.start += 1
        g.end += 1
        while rchg[g.end]:
            g.end += 1
        return True
    return False


def _slide_up(g: _Group, rchg: list[int], h: list[int]) -> bool:
    if g.start > 1 and h[g.start - 2] == h[g.end - 2]:
        g.start -= 1
        g.end -= 1
        rchg[g.start] = 1
        rchg[g.end] = 0
        while rchg[g.start - 1]:
            g.start -= 1
        return True
    return False


def _compact(lines: Sequence[bytes], h: list[int], rchg: list[int], ho: list[int], rchgo: list[int]) -> None:
    n, no = len(h), len(ho)
    g, go = _Group(rchg), _Group(rchgo)
    while True:
        if g.end != g.start:
            while True:
                size = g.end - g.start
                end_matching_other = -1
                while _slide_up(g, rchg, h):
                    _previous(go, rchgo)
                earliest_end = g.end
                if go.end > go.start:
                    end_matching_other = g.end
                while _slide_down(g, rchg, h):
                    _next(go, rchgo, no)
                    if go.end > go.start:
                        end_matching_other = g.end
                if size == g.end - g.start:
                    break
            if g.end == earliest_end:
                pass
            elif end_matching_other != -1:
                while go.end == go.start:
                    _slide_up(g, rchg, h)
                    _previous(go, rchgo)
            else:
                target = best_shift(lines, earliest_end - 1, g.end - 1, size)
                while g.end - 1 > target:
                    _slide_up(g, rchg, h)
                    _previous(go, rchgo)
        if not _next(g, rchg, n):
            break
        _next(go, rchgo, no)


def _script(ca: list[int], cb: list[int], na: int, nb: int) -> list[Change]:
    out: list[Change] = []
    i = j = 0
    while i < na or j < nb:
        if i < na and j < nb and not ca[i + 1] and not cb[j + 1]:
            i += 1
            j += 1
            continue
        si, sj = i, j
        while i < na and ca[i + 1]:
            i += 1
        while j < nb and cb[j + 1]:
            j += 1
        if i == si and j == sj:  # should not happen: unequal unchanged counts
            raise AssertionError("line diff lost sync")
        out.append(Change(si, i - si, sj, j - sj))
    return out
