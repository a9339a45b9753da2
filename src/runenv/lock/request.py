"""What decides a lock: a `LockRequest`, and its inputs-hash.

A lock records the hash of the request it was resolved for, so a build tells a lock that still
matches its configuration from a stale one without resolving again (`resolve.is_fresh`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runenv.config.dependency import is_git_dependency, parse_git
from runenv.errors import UsageError
from runenv.platforms import DEFAULT_GLIBC, DEFAULT_MACOS, Platform

# Bump when what runenv writes into a lock, or how it resolves, changes meaning: every
# existing lock then counts as stale.
LOCK_FORMAT_VERSION = 1
PYPI_SIMPLE = "https://pypi.org/simple"
TOOL_TABLE = "runenv"


@dataclass(frozen=True)
class LockRequest:
    """Everything that decides a lock: change any of it and the lock must be redone."""

    requirements: tuple[str, ...]  # after overrides and skips, e.g. ("pandas==2.2.3",)
    python_version: str  # "3.12.10"
    platform: Platform
    indexes: tuple[str, ...]  # additional index URLs, in priority order
    default_index: str | None = None  # None: PyPI
    skipped: tuple[str, ...] = ()  # package names skipped on this platform
    constraints: tuple[str, ...] = ()  # uv constraints (narrow what may be chosen)
    overrides: tuple[str, ...] = ()  # uv overrides: replace every requirement on a package
    no_deps: tuple[str, ...] = ()  # packages locked without their dependencies
    glibc: tuple[int, int] = DEFAULT_GLIBC  # Linux: the manylinux floor to resolve for
    macos: tuple[int, int] | None = None  # macOS: the minimum to resolve for (None: default)
    # packages.resolution without strictMissing: a requirement that cannot be installed on
    # the platform (no file of it or of a dependency, or it needs a skipped package) is left
    # out of the lock as missing, with its reason, instead of failing it. Not hashed: a lock
    # records what it left out, which a build under a strict policy refuses (wheels.py).
    drop_missing: bool = False

    @property
    def floor(self) -> tuple[int, int] | None:
        """The OS floor that decides which wheels fit: glibc on Linux, macOS on macOS."""
        info = self.platform.info
        if info.os == "linux":
            return self.glibc
        if info.os == "macos":
            return self.macos or DEFAULT_MACOS[self.platform]
        return None

    def inputs_hash(self) -> str:
        """sha256 of a canonical JSON of the request and the lock-format version."""
        floor = self.floor
        doc = {
            "lock-format": LOCK_FORMAT_VERSION,
            "requirements": sorted(normal(r) for r in self.requirements),
            "constraints": sorted(normal(r) for r in self.constraints),
            "python-version": self.python_version,
            "platform": str(self.platform),
            "floor": list(floor) if floor else None,
            "indexes": list(self.indexes),
            "default-index": self.default_index or PYPI_SIMPLE,
            "skipped": sorted({canonicalize_name(s) for s in self.skipped}),
        }
        # Added only when used, so locks written before these existed stay fresh.
        if self.overrides:
            doc["overrides"] = sorted(normal(r) for r in self.overrides)
        if self.no_deps:
            doc["no-deps"] = sorted({canonicalize_name(n) for n in self.no_deps})
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()


def requirement_name(text: str) -> str:
    """The canonical name a requirement of the variant installs (a git one: the config's)."""
    if is_git_dependency(text):
        return canonicalize_name(parse_git(text).name)
    return canonicalize_name(_requirement(text).name)


def _requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"invalid requirement {text!r}: {exc}") from None


def normal(text: str) -> str:
    """A requirement in canonical text; a git dependency as written (its URL is its identity)."""
    if is_git_dependency(text):
        return text.strip()
    return str(_requirement(text))
