"""Name rules for namespaces, repositories and branch names given through the API.

Rules (SPEC, plus GitHub's behaviour where SPEC is silent):
- A namespace or repo name starts with an ASCII letter or digit, continues with
  ``[A-Za-z0-9._-]`` and is at most 63 characters.
- A repo name may not end in ``.git``: the remote URL's ``.git`` suffix is optional, so
  ``foo.git`` and ``foo`` would be the same URL. (GitHub strips the suffix; we refuse
  instead of silently renaming.) It may not contain ``..`` either.
- Names are unique and looked up case-insensitively, with the original case kept for
  display, as on GitHub. That lives in the catalog (``COLLATE NOCASE``).
- A default branch is a short branch name (``main``, ``release/1.x``) that git's
  ``check-ref-format --branch`` accepts; the catalog stores it without ``refs/heads/``.
"""

from __future__ import annotations

import re

from gitserver.errors import ApiError

MAX_NAME = 63
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_BRANCH_CHAR = re.compile(r"[A-Za-z0-9._/+-]+")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid namespace/repo name, or None when it is."""
    if not name:
        return "name is empty"
    if len(name) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters"
    if not _NAME.fullmatch(name):
        return "name must start with a letter or digit and contain only A-Z a-z 0-9 . _ -"
    if ".." in name:
        return "name must not contain '..'"
    return None


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` or raise ``ApiError(INVALID_REPO_NAME)``."""
    problem = name_problem(namespace)
    if problem:
        raise ApiError("INVALID_REPO_NAME", f"invalid namespace {namespace!r}: {problem}")
    return namespace


def check_repo_name(name: str) -> str:
    """Return ``name`` or raise ``ApiError(INVALID_REPO_NAME)``."""
    problem = name_problem(name)
    if problem is None and name.lower().endswith(".git"):
        problem = "name must not end in '.git' (the suffix is optional in remote URLs)"
    if problem:
        raise ApiError("INVALID_REPO_NAME", f"invalid repository name {name!r}: {problem}")
    return name


def check_branch(branch: str) -> str:
    """Return a valid short branch name (``refs/heads/`` stripped) or raise INVALID_INPUT."""
    short = branch.removeprefix("refs/heads/")
    bad = (
        not short
        or len(short) > 255
        or not _BRANCH_CHAR.fullmatch(short)
        or short.startswith(("/", "-"))
        or short.endswith(("/", ".", ".lock"))
        or ".." in short
        or "//" in short
        or "/." in short
        or short.startswith(".")
        or short == "HEAD"
        or any(part.endswith(".lock") or part.startswith(".") for part in short.split("/"))
    )
    if bad:
        raise ApiError("INVALID_INPUT", f"invalid branch name {branch!r}")
    return short
