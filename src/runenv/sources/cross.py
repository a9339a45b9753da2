"""Source builds in a cross build, which cannot run the target's interpreter.

A source whose wheel comes out `py3-none-any` fits every platform: `host_pure_wheels` builds it
once with the interpreter running runenv and keeps it when the built wheel's tags say it is
pure (and a marker when they do not, so a compiled package is not rebuilt on every cross
build). A wheel built for the target on its native runner (`runenv wheels`, imported with
`--built-wheels`) is taken first; any other source is a `CrossSourceBuildError`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runenv._cache import Cache
from runenv.errors import BuildError
from runenv.platforms import Platform
from runenv.sources import pep517
from runenv.sources.sdist import source_of
from runenv.sources.wheel_cache import (
    HostBuild,
    build_log,
    cached_host_build,
    cached_wheel,
    keep_host_build,
    native_entry,
    pure_entry,
    warn_rebuilding,
)

if TYPE_CHECKING:
    from runenv.config.plan import Plan
    from runenv.fetch.wheels import Artifact

logger = logging.getLogger(__name__)


class CrossSourceBuildError(BuildError):
    """A cross build would need a wheel built from source: only a native runner can do that."""

    def __init__(self, platform: Platform, sdists: Sequence[Artifact]) -> None:
        runner = platform.info.github_runner
        lines = [
            f"{a.name} {a.version} on {platform.value}: "
            f"{a.reason or 'no wheel fits'}; it must be built from source on a native "
            f"{platform.value} runner ({runner} in the CI matrix, `runenv matrix`)"
            for a in sdists
        ]
        super().__init__(
            f"cross build for {platform.value} needs {len(lines)} source build(s):\n"
            + "\n".join(lines)
        )


def _host_pure_wheel(
    artifact: Artifact, source: Path, plan: Plan, cache: Cache, index: str | None, log: Path | None
) -> Path | None:
    """The source's wheel built on this machine if it is `py3-none-any`, else None.

    Built once (with the interpreter running runenv) and cached for every platform; a source
    whose wheel is not pure leaves a marker so later cross builds do not rebuild it.
    """
    pure = pure_entry(cache, artifact, plan)

    def build_here(stage: Path) -> HostBuild:
        with pep517.build(
            artifact, source, Path(sys.executable), plan, cache, {},
            default_index=index, log_file=log or build_log(pure),
        ) as wheel:  # fmt: skip
            return keep_host_build(wheel, stage, pure)

    try:
        return pure.get_or_make(cached_host_build, build_here, on_bad=warn_rebuilding).wheel
    except BuildError as exc:  # cannot build here: it needs the native runner
        logger.debug("host build of %s failed: %s", artifact.name, exc)
        return None


def host_pure_wheels(
    sources: Sequence[Artifact],
    files: Mapping[str, Path],
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> dict[str, Path]:
    """For a cross build: the wheels of `sources` built for the target on its native runner
    (imported into the cache from `runenv wheels`), else those that build `py3-none-any` here.

    Raises CrossSourceBuildError (its message unchanged) naming those that do not.
    """
    timeout = float(plan.timeout)
    built: dict[str, Path] = {}
    native_only = []
    for a in sources:
        # Built for this very platform on its native runner (`runenv build --built-wheels`).
        native = native_entry(cache, a, plan).load(cached_wheel)
        if native is not None:
            built[a.filename] = native
            continue
        source = source_of(a, files, cache, timeout=timeout, log_file=log_file)
        wheel = _host_pure_wheel(a, source, plan, cache, default_index, log_file)
        if wheel is None:
            native_only.append(a)
        else:
            built[a.filename] = wheel
    if native_only:
        raise CrossSourceBuildError(plan.platform, native_only)
    return built
