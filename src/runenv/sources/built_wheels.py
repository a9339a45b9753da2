"""Wheels built from source on a target's native runner, carried to a build elsewhere.

`runenv wheels` (`wheel_job.build_source_wheels`) writes the wheels of a target's sources
(sdists, git commits) to a folder with an index, `INDEX_NAME`; `runenv build --built-wheels
DIR` imports them (`import_wheels`) into the `built-wheels` cache, at the key the build itself
computes (`wheel_cache.cache_key`), so a cross build of a target with compiled sources goes
through on Linux and a native one compiles nothing.

The folder is treated as hostile: the index is read from a regular file (never a link), each
wheel name must be a plain wheel file name of the package it claims, each entry's cache key
must be this build's for that source, and the bytes are copied into the cache while hashed, so
what lands there is what was checked against the index's sha256 and size. Nothing is used
unverified, and a refusal names the file or the package and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)

from runenv import __version__
from runenv._cache import Cache, mark_verified, staged_file
from runenv._cache_entry import Entry as CacheEntry
from runenv.config.plan import Plan
from runenv.errors import FetchError, UsageError
from runenv.fetch.wheels import Artifact
from runenv.sources import wheel_cache
from runenv.sources.wheel_cache import cache_key, cached_wheel, is_pure

INDEX_NAME = "runenv-wheels.json"
FORMAT = 1
_MAX_INDEX_BYTES = 1 << 20  # an index lists a handful of wheels: anything bigger is not one
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One wheel of an index: the source it was built from and the file's identity."""

    package: str
    version: str
    source: str  # the sdist's file name (a git source: its locked name)
    source_sha256: str  # the sdist's sha256, or a git source's commit
    cache_key: str  # `wheel_cache.cache_key` of the build that made it
    wheel: str  # the file name, in the index's folder
    sha256: str
    size: int

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))


@dataclass(frozen=True)
class Index:
    """A folder of built wheels: which target they are for, and each wheel."""

    folder: Path
    variant: str
    platform: str
    python_version: str
    runenv: str
    wheels: tuple[Entry, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "runenv": self.runenv,
            "variant": self.variant,
            "platform": self.platform,
            "python_version": self.python_version,
            "wheels": [e.to_json() for e in self.wheels],
        }

    def describe(self) -> str:
        names = ", ".join(e.package for e in self.wheels) or "no wheels"
        return f"{self.variant} {self.platform} ({names})"


def key_of(artifact: Artifact, plan: Plan, wheel_name: str) -> str:
    """The cache key a wheel built from `artifact` sits under: the host-pure entry when it is
    `py3-none-any` (where `sdist.build_wheel` keeps pure wheels), else the platform's."""
    return cache_key(artifact, plan, host_pure=is_pure(wheel_name))


def wheels_key(plan: Plan, sources: Sequence[Artifact]) -> str:
    """The identity of the folder `runenv wheels` writes for `plan`'s target from `sources`:
    CI keeps it in its cache under this key, so a run whose lock and config did not change
    reuses it instead of building the same wheels again.

    It is computed from the lock and the plan alone (no build), and covers what decides the
    folder: its index format, the target (variant, platform) that `import_for` matches, and
    each source's `wheel_cache.cache_key` (sdist sha256 or commit, platform, Python, macOS
    floor, indexes, runenv's build recipe, a buildWheel recipe), taken as compiled: a pure
    wheel's host-pure key depends on a subset of those, so it changes with this one.
    """
    inputs = {
        "format": FORMAT,
        "variant": plan.variant,
        "platform": plan.platform.value,
        "wheels": sorted(cache_key(a, plan) for a in sources),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def write_index(folder: Path, plan: Plan, built: Sequence[tuple[Artifact, Path]]) -> Index:
    """Copy each built wheel into `folder` (new or empty) and write its index; the index."""
    entries = []
    for artifact, wheel in built:
        target = folder / wheel.name
        sha256, size = _copy_hashed(wheel, target)
        entries.append(
            Entry(
                package=artifact.name,
                version=artifact.version,
                source=artifact.filename,
                source_sha256=artifact.digest,
                cache_key=key_of(artifact, plan, wheel.name),
                wheel=wheel.name,
                sha256=sha256,
                size=size,
            )
        )
    index = Index(
        folder, plan.variant, plan.platform.value, plan.python_version, __version__, tuple(entries)
    )
    text = json.dumps(index.to_json(), indent=2) + "\n"
    (folder / INDEX_NAME).write_text(text, encoding="utf-8")
    return index


# --------------------------------------------------------------------------- reading


def read_index(folder: Path) -> Index:
    """The index of a `runenv wheels` folder; UsageError naming the file when it is not one."""
    path = folder / INDEX_NAME
    what = f"{path}: not a `runenv wheels` index"
    todo = "pass the folder `runenv wheels ... --out DIR` wrote"
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise UsageError(f"{what} (no such file): {todo}") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_INDEX_BYTES:
        raise UsageError(f"{what} (a link, not a file, or too large): {todo}")
    try:
        data = json.loads(_read_nofollow(path, _MAX_INDEX_BYTES))
        return _parse(folder, data)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{what} ({exc}): {todo}") from None


def _parse(folder: Path, data: Any) -> Index:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT}")
    strings = {k: _str(data, k) for k in ("variant", "platform", "python_version", "runenv")}
    wheels = data["wheels"]
    if not isinstance(wheels, list):
        raise ValueError("`wheels` is not a list")
    entries = []
    for item in wheels:
        if not isinstance(item, dict):
            raise ValueError("a `wheels` item is not a table")
        size = item["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"`size` of {item.get('wheel')!r} is not a byte count")
        fields = ("package", "version", "source", "source_sha256", "cache_key", "wheel", "sha256")
        entries.append(Entry(**{k: _str(item, k) for k in fields}, size=size))
    return Index(folder, wheels=tuple(entries), **strings)


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"`{key}` is not a string")
    return value


def _read_nofollow(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("not a regular file")
        return f.read(limit + 1)[:limit]


# --------------------------------------------------------------------------- importing


@dataclass(frozen=True)
class Imported:
    """A wheel placed in the built-wheels cache from a `--built-wheels` folder."""

    entry: Entry
    path: Path  # in the cache
    fresh: bool  # False: the cache held a verified build under that key already


def check_entries(index: Index, plan: Plan, sources: Sequence[Artifact]) -> list[Artifact]:
    """The source each entry was built from, after checking the entry fits this build: a plain
    wheel file name of that package and version, built from the locked source under the very
    cache key this build computes for it. UsageError naming the package otherwise."""
    by_name = {canonicalize_name(a.name): a for a in sources}
    redo = f"build them again for this target: `runenv wheels {plan.variant} --platform "
    redo += f"{plan.platform.value} --out DIR` on its native runner, from this commit's lock"
    matched = []
    for e in index.wheels:
        where = f"{index.folder / INDEX_NAME}: {e.package} {e.version}"
        if not _plain_name(e.wheel):
            raise UsageError(f"{where}: wheel name {e.wheel!r} is not a plain file name: {redo}")
        try:
            name, version, _, _ = parse_wheel_filename(e.wheel)
        except InvalidWheelFilename:
            raise UsageError(f"{where}: {e.wheel!r} is not a wheel file name: {redo}") from None
        artifact = by_name.get(canonicalize_name(e.package))
        if artifact is None:
            raise UsageError(f"{where}: this build does not build it from source: {redo}")
        same_version = canonicalize_version(version) == canonicalize_version(artifact.version)
        if name != canonicalize_name(artifact.name) or not same_version:
            raise UsageError(f"{where}: {e.wheel} is not a wheel of {artifact.name} "
                             f"{artifact.version}: {redo}")  # fmt: skip
        if e.source_sha256 != artifact.digest or e.version != artifact.version:
            raise UsageError(f"{where}: built from another source than the locked "
                             f"{artifact.filename} ({artifact.digest[:12]}): {redo}")  # fmt: skip
        expected = key_of(artifact, plan, e.wheel)
        if e.cache_key != expected:
            raise UsageError(
                f"{where}: built for another target, Python or recipe (cache key "
                f"{e.cache_key[:12]}, this build's is {expected[:12]}): {redo}"
            )
        matched.append(artifact)
    return matched


def import_wheels(
    index: Index, plan: Plan, sources: Sequence[Artifact], cache: Cache
) -> list[Imported]:
    """Place an index's wheels in the built-wheels cache, each verified, as if built here.

    Every entry is checked (`check_entries`) before any file is read; then each file is copied
    into the cache while hashed and kept only when its size and sha256 are the index's
    (FetchError naming the file otherwise). A key the cache holds a verified wheel for
    already keeps that one.
    """
    artifacts = check_entries(index, plan, sources)
    done = []
    for entry, artifact in zip(index.wheels, artifacts, strict=True):
        place = wheel_cache.entry(cache, key_of(artifact, plan, entry.wheel))
        done.append(_import_one(index.folder, entry, place))
    return done


def _import_one(folder: Path, entry: Entry, place: CacheEntry) -> Imported:
    """One wheel of `folder` in its cache entry: the verified wheel the entry holds already,
    else the folder's, copied in while verified."""

    def have(path: Path) -> Imported | None:
        wheel = cached_wheel(path)
        return None if wheel is None else Imported(entry, wheel, fresh=False)

    def copy(stage: Path) -> Imported:
        _copy_verified(folder / entry.wheel, stage / entry.wheel, entry)
        return Imported(entry, place.path / entry.wheel, fresh=True)

    return place.get_or_make(have, copy, on_bad=wheel_cache.warn_rebuilding)


def _plain_name(name: str) -> bool:
    """A file name with no folder in it, nothing hidden, nothing a filesystem reads specially."""
    return (
        bool(name)
        and name == Path(name).name
        and "/" not in name
        and "\\" not in name
        and ":" not in name
        and "\0" not in name
        and not name.startswith(".")
        and name.endswith(".whl")
    )


def _copy_verified(source: Path, target: Path, entry: Entry) -> None:
    """Copy `source` (a regular file, not a link) to `target` if it holds the entry's bytes."""
    redo = "download the artifact again, or build it again with `runenv wheels`"
    if source.is_symlink():  # O_NOFOLLOW refuses it too, where the OS has it
        raise UsageError(f"{source}: a link, not the wheel itself: {redo}")
    try:
        fd = os.open(
            source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        )
    except OSError as exc:
        raise UsageError(f"{source}: cannot read it ({exc.strerror or exc}): {redo}") from None
    with os.fdopen(fd, "rb") as src, staged_file(target) as staged:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{source}: not a regular file: {redo}")
        if st.st_size != entry.size:
            raise FetchError(
                f"{source}: {st.st_size} bytes, its index says {entry.size}: "
                f"tampered with or truncated; {redo}"
            )
        digest = hashlib.sha256()
        with staged.open("wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != entry.sha256:
            raise FetchError(
                f"{source}: sha256 {digest.hexdigest()[:12]}..., its index says "
                f"{entry.sha256[:12]}...: tampered with or corrupted; {redo}"
            )
    mark_verified(target, entry.sha256)


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    """Copy a file, returning the sha256 and size of the bytes written."""
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, staged_file(target) as staged, staged.open("wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def import_for(
    folders: Sequence[Path], plan: Plan, sources: Sequence[Artifact], cache: Cache
) -> list[Imported]:
    """`import_wheels` for every folder whose index is this target's (variant, platform)."""
    done: list[Imported] = []
    for folder in folders:
        index = read_index(folder)
        if (index.variant, index.platform) == (plan.variant, plan.platform.value):
            done += import_wheels(index, plan, sources, cache)
    return done


def unclaimed(folders: Sequence[Path], targets: Sequence[tuple[str, str]]) -> UsageError | None:
    """The error for the first folder whose index is for none of `targets` (variant, platform):
    it would be ignored, and a build the user meant to feed would stop at its source builds."""
    for folder in folders:
        index = read_index(folder)
        if (index.variant, index.platform) not in targets:
            return UsageError(
                f"{folder / INDEX_NAME}: wheels of {index.describe()}, a target this build "
                f"does not build: pass it to `runenv build {index.variant} --platform "
                f"{index.platform}`, or build them for this target with `runenv wheels`"
            )
    return None


__all__ = [
    "INDEX_NAME",
    "Entry",
    "Imported",
    "Index",
    "check_entries",
    "import_for",
    "import_wheels",
    "read_index",
    "unclaimed",
    "wheels_key",
    "write_index",
]
