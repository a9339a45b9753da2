"""The PEP 751 lock runenv reads: its packages, their files and hashes, and `[tool.runenv]`.

Only what runenv installs is accepted: every file with a sha256, git packages at a full commit,
no local directories. `[tool.runenv]` holds what runenv added when it wrote the lock (the
inputs-hash that tells a fresh lock from a stale one, what the missing-package policy left out).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from runenv import _bounded
from runenv.errors import LockError

TOOL_TABLE = "runenv"
"""The lock's `[tool.<name>]` table runenv writes and reads."""


@dataclass(frozen=True)
class LockedFile:
    """One file of a locked package: where it is and what its bytes hash to."""

    url: str  # an http(s) URL, or an absolute path for a PEP 751 `path` entry
    filename: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class LockedPackage:
    """A pinned package with the files the lock allows for it."""

    name: str
    version: str
    wheels: tuple[LockedFile, ...]
    sdist: LockedFile | None
    index: str | None = None
    marker: str | None = None
    vcs: VcsSource | None = None

    @property
    def from_git(self) -> bool:
        return self.vcs is not None


@dataclass(frozen=True)
class VcsSource:
    """A package locked to a git commit (PEP 751 `vcs`): built from that commit's tree."""

    url: str
    commit: str  # the full commit hash
    requested: str | None = None


@dataclass(frozen=True)
class Lock:
    """A parsed lock. `inputs_hash` is None for a lock runenv did not write."""

    packages: tuple[LockedPackage, ...]
    requires_python: str | None = None
    inputs_hash: str | None = None
    platform: str | None = None
    python_version: str | None = None
    overrides: tuple[str, ...] = ()  # the overrides the lock was resolved with
    missing: Mapping[str, str] = dataclasses.field(default_factory=dict)  # left out: why

    def package(self, name: str) -> LockedPackage | None:
        """The locked package called `name` (any spelling), if any."""
        want = canonicalize_name(name)
        return next((p for p in self.packages if canonicalize_name(p.name) == want), None)


def read_lock(path: Path) -> Lock:
    """Parse a PEP 751 lock; LockError if unreadable, malformed, or a file lacks a sha256."""
    try:
        text = _bounded.read_text(path, _bounded.MAX_LOCK_BYTES)
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock; run `runenv lock`") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot read the lock: {exc.strerror or exc}") from None
    except _bounded.InputError as exc:
        raise LockError(f"{path}: cannot read the lock: {exc}") from None
    return parse_lock(text, path)


def parse_lock(text: str, path: Path) -> Lock:
    """The lock `text` (read from, or about to be written to, `path`, which errors name)."""
    return _parse(_loads(text, path), path)


# --------------------------------------------------------------------------- parsing


def _loads(text: str, path: Path) -> dict[str, Any]:
    try:
        return _bounded.loads_toml(text)
    except (tomllib.TOMLDecodeError, _bounded.InputError) as exc:
        raise LockError(f"{path}: not a valid TOML lock: {exc}") from None


def _parse(doc: Mapping[str, Any], path: Path) -> Lock:
    packages: list[LockedPackage] = []
    entries = doc.get("packages", [])
    if not isinstance(entries, list):
        raise LockError(f"{path}: `packages` is not an array of tables")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise LockError(f"{path}: a package entry has no name")
        packages.append(_package(entry, path))
    tool = doc.get("tool", {}).get(TOOL_TABLE, {})
    tool = tool if isinstance(tool, dict) else {}
    missing = tool.get("missing", {})
    missing = missing if isinstance(missing, dict) else {}
    return Lock(
        packages=tuple(packages),
        requires_python=_opt_str(doc.get("requires-python")),
        inputs_hash=_opt_str(tool.get("inputs-hash")),
        platform=_opt_str(tool.get("platform")),
        python_version=_opt_str(tool.get("python-version")),
        overrides=tuple(o for o in tool.get("overrides", ()) if isinstance(o, str)),
        missing={str(canonicalize_name(k)): v for k, v in missing.items() if isinstance(v, str)},
    )


def _package(entry: dict[str, Any], path: Path) -> LockedPackage:
    name: str = entry["name"]
    version = _opt_str(entry.get("version")) or ""
    who = f"{name} {version}".strip()
    if "directory" in entry:
        raise LockError(
            f"{path}: {who} comes from a directory; runenv installs only locked files with "
            "hashes (wheels, sdists, archives) and git commits"
        )
    if "vcs" in entry:
        return LockedPackage(
            name=name,
            version=version,
            wheels=(),
            sdist=None,
            index=None,
            marker=_opt_str(entry.get("marker")),
            vcs=_vcs(entry["vcs"], path, who),
        )
    wheels = [_file(w, path, who) for w in entry.get("wheels", [])]
    sdist = _file(entry["sdist"], path, who) if "sdist" in entry else None
    if "archive" in entry:
        archive = _file(entry["archive"], path, who)
        if archive.filename.endswith(".whl"):
            wheels.append(archive)
        else:
            sdist = archive
    if not wheels and sdist is None:
        raise LockError(f"{path}: {who} has no wheel and no sdist in the lock")
    return LockedPackage(
        name=name,
        version=version,
        wheels=tuple(wheels),
        sdist=sdist,
        index=_opt_str(entry.get("index")),
        marker=_opt_str(entry.get("marker")),
    )


def _vcs(data: Any, path: Path, who: str) -> VcsSource:
    if not isinstance(data, dict) or data.get("type") != "git":
        raise LockError(f"{path}: {who}: only git repositories are supported as a vcs source")
    url = _opt_str(data.get("url"))
    commit = _opt_str(data.get("commit-id"))
    if not url or not commit or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit, re.ASCII):
        raise LockError(
            f"{path}: {who}: a git source needs its url and full commit-id in the lock; "
            "run `runenv lock` again"
        )
    return VcsSource(url=url, commit=commit, requested=_opt_str(data.get("requested-revision")))


def _file(data: Any, path: Path, who: str) -> LockedFile:
    if not isinstance(data, dict):
        raise LockError(f"{path}: {who}: a file entry is not a table")
    url = _opt_str(data.get("url"))
    local = _opt_str(data.get("path"))
    if url is not None:
        default_name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    elif local is not None:  # relative to the lock's directory (PEP 751)
        url = str((path.parent / local).resolve())
        default_name = Path(local).name
    else:
        raise LockError(f"{path}: {who}: a file entry has neither url nor path")
    filename = _opt_str(data.get("name")) or default_name
    hashes = data.get("hashes", {})
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256, re.ASCII):
        raise LockError(
            f"{path}: {who}: {filename} has no sha256 in the lock; runenv installs only "
            "verified files (does the index publish hashes?)"
        )
    size = data.get("size")
    return LockedFile(
        url=url,
        filename=filename,
        sha256=sha256.lower(),
        size=size if isinstance(size, int) else None,
    )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
