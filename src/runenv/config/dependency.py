"""A dependency string of the config: a PEP 508 requirement, or a git repository
(`git+URL[@rev]` or `name @ git+URL[@rev]`), which the lock, the plan and the wheels read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from packaging.requirements import Requirement

PACKAGE_RE = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.I | re.A)
"""A package name (PEP 508), checked whole (`fullmatch`) with ASCII classes."""

_GIT_SCHEMES = ("git+https", "git+http", "git+ssh", "git+file")
_GIT_EXAMPLE = "git+https://host/org/repo.git@rev"


@dataclass(frozen=True)
class GitDependency:
    """A dependency on a git repository: `git+URL[@rev]` or `name @ git+URL[@rev]`."""

    name: str  # as given, else the repository's: `parapred-pytorch` for .../parapred-pytorch.git
    url: str  # the repository URL, without `git+` and without the revision
    rev: str | None
    named: bool  # written as `name @ git+...`

    @property
    def requirement(self) -> str:
        """The line uv reads: the dependency as written, normalised to `name @ git+...`."""
        rev = f"@{self.rev}" if self.rev else ""
        return f"{self.name} @ git+{self.url}{rev}"


def is_git_dependency(value: str) -> bool:
    """Whether a dependency string names a git repository (it may still be malformed)."""
    text = value.strip()
    if text.startswith("git+"):
        return True
    _, at, rest = text.partition("@")
    return bool(at) and rest.strip().startswith("git+")


def parse_git(value: str) -> GitDependency:
    """Split a git dependency; ValueError saying what is wrong with a malformed one."""
    text = value.strip()
    name: str | None = None
    if not text.startswith("git+"):
        head, _, text = text.partition("@")
        name, text = head.strip(), text.strip()
        if not PACKAGE_RE.fullmatch(name):
            raise ValueError(f"{value!r}: {name!r} is not a package name")
    bad = f"malformed git URL {value!r}: expected {_GIT_EXAMPLE} or name @ {_GIT_EXAMPLE}"
    if any(c.isspace() for c in text) or ("#" in text and "#egg=" not in text):
        raise ValueError(bad)
    text, _, fragment = text.partition("#")
    parts = urlsplit(text)
    if parts.scheme not in _GIT_SCHEMES:
        raise ValueError(f"{bad} (scheme {parts.scheme or 'missing'!r})")
    if parts.scheme != "git+file" and not parts.hostname:
        raise ValueError(f"{bad} (no host)")
    path = parts.path
    rev: str | None = None
    if "@" in path:
        path, _, rev = path.rpartition("@")
        if not rev or not re.fullmatch(r"[A-Za-z0-9._/+-]+", rev, re.ASCII):
            raise ValueError(f"{bad} (empty or invalid revision after @)")
    repo = path.rstrip("/").rsplit("/", 1)[-1]
    repo = repo[: -len(".git")] if repo.endswith(".git") else repo
    if not repo:
        raise ValueError(f"{bad} (no repository path)")
    if fragment.startswith("egg=") and name is None:
        name = fragment[len("egg=") :]
    name = name or repo
    if not PACKAGE_RE.fullmatch(name):
        raise ValueError(f"{bad} (cannot take a package name from {repo!r}: write name @ git+...)")
    url = urlunsplit((parts.scheme[len("git+") :], parts.netloc, path, parts.query, ""))
    return GitDependency(name=name, url=url, rev=rev, named=not value.strip().startswith("git+"))


def dependency_name(value: str) -> str:
    """The package name of a (validated) dependency string, git ones included."""
    if is_git_dependency(value):
        return parse_git(value).name
    return Requirement(value).name
