"""The built-wheels cache: the key of everything that decides a wheel built from source, and
what an entry holds (one verified wheel, or the marker that a source's host build is not pure).

A wheel is stored under `cache_key(artifact, plan)` for its platform; a `py3-none-any` one
once, under the host-pure key every platform looks in first. Entries are made through
`_cache_entry.Entry` (under a lock, in a temp folder renamed into place) and a wheel is taken only
while it holds the sha256 recorded when it was stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name, parse_wheel_filename

from runenv._cache import Cache, file_sha256, is_verified, mark_verified, recorded_sha256
from runenv._cache_entry import Entry

if TYPE_CHECKING:
    from runenv.config.plan import Plan
    from runenv.fetch.wheels import Artifact

logger = logging.getLogger(__name__)

CACHE_SECTION = "built-wheels"
NOT_PURE = "not-pure"  # marker: the host build of this source is not py3-none-any
# Bump when the way runenv builds wheels changes what they contain. 2: the temp build folder
# mapped to a fixed name in the compiler's output (`pep517.reproducible`).
BUILD_RECIPE = 2


def cache_key(artifact: Artifact, plan: Plan, *, host_pure: bool = False) -> str:
    """Everything that decides a built wheel: source, platform, Python, build settings.

    A host-built pure wheel serves every platform, so its key leaves the platform out.
    """
    inputs: dict[str, object] = {
        "recipe": BUILD_RECIPE,
        "sdist_sha256": artifact.digest,  # the key's name predates git sources
        "platform": "host-pure" if host_pure else plan.platform.value,
        "python": plan.python_version,
        "macos": None if host_pure else plan.macos,
        "registries": list(plan.registries),
    }
    recipe = plan.build_wheel.get(canonicalize_name(artifact.name))
    if artifact.kind == "git":
        inputs["git"] = artifact.url
    if recipe is not None:
        inputs["build_requires"] = list(recipe.build_requires)
        inputs["config_settings"] = [list(kv) for kv in recipe.config_settings]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def is_pure(wheel_name: str) -> bool:
    """Whether a wheel's tags fit every platform and Python 3 (`py3-none-any`)."""
    tags = parse_wheel_filename(wheel_name)[3]
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    return pure and any(t.interpreter.startswith("py3") for t in tags)


def entry(cache: Cache, key: str) -> Entry:
    """The cache entry of the built wheel keyed `key` (`cache_key`)."""
    return Entry(cache.entry_path(CACHE_SECTION, key))


def native_entry(cache: Cache, artifact: Artifact, plan: Plan) -> Entry:
    """Where the wheel built from `artifact` for `plan`'s platform is kept."""
    return entry(cache, cache_key(artifact, plan))


def pure_entry(cache: Cache, artifact: Artifact, plan: Plan) -> Entry:
    """Where the source's `py3-none-any` wheel (or its `NOT_PURE` marker) is kept."""
    return entry(cache, cache_key(artifact, plan, host_pure=True))


def build_log(entry: Entry) -> Path:
    """The log of the build that makes `entry`, beside it (for a build given no log)."""
    return entry.path.parent / f"{entry.path.name}.log"


def cached_wheel(folder: Path) -> Path | None:
    """The wheel stored in `folder`, if it still holds the bytes recorded when it was stored
    (what `_cache_entry.Entry` loads; anything else makes the entry damaged, evicted and made
    again)."""
    for wheel in sorted(folder.glob("*.whl")):
        recorded = recorded_sha256(wheel)
        if recorded is not None and is_verified(wheel, recorded):
            return wheel
    return None


@dataclass(frozen=True)
class HostBuild:
    """A host-pure entry: the source's `py3-none-any` wheel, or None when it is not pure."""

    wheel: Path | None


def cached_host_build(folder: Path) -> HostBuild | None:
    """What the host-pure entry in `folder` holds: a verified wheel, or the not-pure marker."""
    wheel = cached_wheel(folder)
    if wheel is not None:
        return HostBuild(wheel)
    try:
        marked = stat.S_ISREG((folder / NOT_PURE).lstat().st_mode)
    except OSError:
        marked = False
    return HostBuild(None) if marked else None


def store_wheel(wheel: Path, stage: Path, entry: Entry) -> Path:
    """Copy a built wheel into the `stage` of `entry`, recording its sha256; the wheel's
    path once the stage is in place."""
    target = stage / wheel.name
    shutil.copyfile(wheel, target)
    mark_verified(target, file_sha256(target))
    return entry.path / wheel.name


def keep_host_build(wheel: Path, stage: Path, entry: Entry) -> HostBuild:
    """Fill the `stage` of a host-pure `entry` from a built wheel: the wheel when it is pure,
    else the marker that it is not, so a later cross build does not build it here again."""
    if is_pure(wheel.name):
        return HostBuild(store_wheel(wheel, stage, entry))
    (stage / NOT_PURE).write_text(wheel.name + "\n", encoding="utf-8")
    return HostBuild(None)


def warn_rebuilding(folder: Path) -> None:
    """`on_bad` of a built-wheel entry: it is evicted and the wheel built (or imported) again."""
    logger.warning(
        "%s: the cached build does not match the sha256 recorded when it was built: "
        "evicted it, building it again",
        folder.name,
    )
