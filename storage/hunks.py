"""Unified-diff hunks of one file pair, byte for byte as ``git diff`` prints them.

Rules:
- Three lines of context; two changes share a hunk when at most six unchanged lines lie
  between them (twice the context), as git does.
- Hunk header ``@@ -S,C +S,C @@ FUNC``: a count of 1 is left out, an empty side shows
  the line before it (``-0,0``). FUNC is git's default "function name": the nearest line
  before the hunk (in the old file) that starts with a letter, ``_`` or ``$``, cut to
  80 bytes with trailing white space removed.
- Within a change, removed lines come before added lines. A line without a final
  newline is followed by ``\\ No newline at end of file``.
- Output is bytes (file contents need not be UTF-8), yielded hunk by hunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from storage.linediff import Change, diff_lines

CONTEXT = 3
FUNC_MAX = 80
_NO_NEWLINE = b"\n\\ No newline at end of file\n"
_SPACE = b" \t\n\r\f\v"


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their ``\\n`` (the last one may have none)."""
    if not data:
        return []
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _is_func(line: bytes) -> bool:
    c = line[:1]
    return bool(c) and (c.isalpha() or c in (b"_", b"$"))


def _func_before(lines: Sequence[bytes], start: int) -> bytes:
    for i in range(start - 1, -1, -1):
        if _is_func(lines[i]):
            return lines[i][:FUNC_MAX].rstrip(_SPACE)
    return b""


def _range(start: int, count: int) -> bytes:
    if count == 1:
        return b"%d" % (start + 1)
    return b"%d,%d" % (start + 1 if count else start, count)


def _line(prefix: bytes, line: bytes) -> bytes:
    if line.endswith(b"\n"):
        return prefix + line
    return prefix + line + _NO_NEWLINE


def group_hunks(changes: Sequence[Change], context: int = CONTEXT) -> Iterator[list[Change]]:
    """The changes that share each hunk."""
    group: list[Change] = []
    for ch in changes:
        if group:
            last = group[-1]
            if ch.a_start - (last.a_start + last.a_count) > 2 * context:
                yield group
                group = []
        group.append(ch)
    if group:
        yield group


def iter_hunks(
    a: Sequence[bytes], b: Sequence[bytes], changes: Sequence[Change], context: int = CONTEXT
) -> Iterator[bytes]:
    """Each hunk (header and lines) of the diff ``changes`` between lines ``a`` and ``b``."""
    for group in group_hunks(changes, context):
        first, last = group[0], group[-1]
        s1 = max(first.a_start - context, 0)
        s2 = max(first.b_start - context, 0)
        e1 = min(last.a_start + last.a_count + context, len(a))
        e2 = min(last.b_start + last.b_count + context, len(b))
        out = [b"@@ -", _range(s1, e1 - s1), b" +", _range(s2, e2 - s2), b" @@"]
        func = _func_before(a, s1)
        if func:
            out += [b" ", func]
        out.append(b"\n")
        pos = s1
        for ch in group:
            out.extend(_line(b" ", a[i]) for i in range(pos, ch.a_start))
            out.extend(_line(b"-", a[i]) for i in range(ch.a_start, ch.a_start + ch.a_count))
            out.extend(_line(b"+", b[j]) for j in range(ch.b_start, ch.b_start + ch.b_count))
            pos = ch.a_start + ch.a_count
        out.extend(_line(b" ", a[i]) for i in range(pos, e1))
        yield b"".join(out)


def text_diff(old: bytes, new: bytes) -> tuple[list[bytes], int, int]:
    """(hunks, lines added, lines removed) between two texts."""
    a, b = split_lines(old), split_lines(new)
    changes = diff_lines(a, b)
    added = sum(c.b_count for c in changes)
    removed = sum(c.a_count for c in changes)
    return list(iter_hunks(a, b, changes)), added, removed
