"""Where to put a slidable group of changed lines: git's "indent heuristic".

Rules: a group of added (or deleted) lines that could sit at several positions (equal
lines around it) is placed where its two boundaries look most like natural breaks in
the text: after blank lines, before a less indented line, not at the file's end. Every
candidate position gets a score from the indentation and blank lines around its two
boundaries; the lowest wins, ties to the lowest position. The weights are git's
(``diff.indentHeuristic``, on by default since git 2.14), so patches match its output.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_INDENT = 200
MAX_BLANKS = 20
MAX_SLIDING = 100
START_OF_FILE_PENALTY = 1
END_OF_FILE_PENALTY = 21
TOTAL_BLANK_WEIGHT = -30
POST_BLANK_WEIGHT = 6
RELATIVE_INDENT_PENALTY = -4
RELATIVE_INDENT_WITH_BLANK_PENALTY = 10
RELATIVE_OUTDENT_PENALTY = 24
RELATIVE_OUTDENT_WITH_BLANK_PENALTY = 17
RELATIVE_DEDENT_PENALTY = 23
RELATIVE_DEDENT_WITH_BLANK_PENALTY = 17
INDENT_WEIGHT = 60
_SPACE = frozenset(b" \t\n\r\f\v")


def indent_of(line: bytes) -> int:
    """Columns of leading white space (tabs to multiples of 8); -1 for a blank line."""
    col = 0
    for c in line:
        if c not in _SPACE:
            return col
        if c == 0x20:
            col += 1
        elif c == 0x09:
            col += 8 - col % 8
        if col >= MAX_INDENT:
            return MAX_INDENT
    return -1


def _score_split(lines: Sequence[bytes], split: int) -> tuple[int, int]:
    """(effective indent, penalty) of a boundary just before line ``split``."""
    n = len(lines)
    end_of_file = split >= n
    indent = -1 if end_of_file else indent_of(lines[split])
    pre_blank, pre_indent = 0, -1
    for i in range(split - 1, -1, -1):
        pre_indent = indent_of(lines[i])
        if pre_indent != -1:
            break
        pre_blank += 1
        if pre_blank == MAX_BLANKS:
            pre_indent = 0
            break
    post_blank, post_indent = 0, -1
    for i in range(split + 1, n):
        post_indent = indent_of(lines[i])
        if post_indent != -1:
            break
        post_blank += 1
        if post_blank == MAX_BLANKS:
            post_indent = 0
            break
    penalty = 0
    if pre_indent == -1 and pre_blank == 0:
        penalty += START_OF_FILE_PENALTY
    if end_of_file:
        penalty += END_OF_FILE_PENALTY
    trailing_blank = 1 + post_blank if indent == -1 else 0
    total_blank = pre_blank + trailing_blank
    penalty += TOTAL_BLANK_WEIGHT * total_blank + POST_BLANK_WEIGHT * trailing_blank
    effective = indent if indent != -1 else post_indent
    blanks = total_blank != 0
    if effective == -1 or pre_indent == -1 or effective == pre_indent:
        pass
    elif effective > pre_indent:
        penalty += RELATIVE_INDENT_WITH_BLANK_PENALTY if blanks else RELATIVE_INDENT_PENALTY
    elif post_indent != -1 and post_indent > effective:
        penalty += RELATIVE_OUTDENT_WITH_BLANK_PENALTY if blanks else RELATIVE_OUTDENT_PENALTY
    else:
        penalty += RELATIVE_DEDENT_WITH_BLANK_PENALTY if blanks else RELATIVE_DEDENT_PENALTY
    return effective, penalty


def best_shift(lines: Sequence[bytes], earliest_end: int, end: int, size: int) -> int:
    """The best end position (exclusive line index) for a group of ``size`` lines that
    may end anywhere in ``earliest_end .. end``."""
    shift = max(earliest_end, end - size - 1, end - MAX_SLIDING)
    best: tuple[int, int] | None = None
    best_at = end
    while shift <= end:
        e1, p1 = _score_split(lines, shift)
        e2, p2 = _score_split(lines, shift - size)
        score = (e1 + e2, p1 + p2)
        if best is None or _cmp(score, best) <= 0:
            best, best_at = score, shift
        shift += 1
    return best_at


def _cmp(s1: tuple[int, int], s2: tuple[int, int]) -> int:
    indents = (s1[0] > s2[0]) - (s1[0] < s2[0])
    return INDENT_WEIGHT * indents + (s1[1] - s2[1])
