"""The build-sdists stage: wheels from sdists and git commits, by the runtime's own interpreter.

Each wheel is built through its PEP 517 hooks (`pep517.build`, in a `build_env.RuntimeEnv`
of the runtime's interpreter) and kept in the built-wheels cache (`wheel_cache`) under a key
of everything that decides it, so a rebuild compiles nothing. A pure (`py3-none-any`) wheel is
kept once, in the host-pure entry every platform looks in first; a cross build takes its
sources' wheels from there or from `cross`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runenv._cache import Cache, evict
from runenv.errors import BuildError
from runenv.sources import pep517
from runenv.sources.git import fetch_git
from runenv.sources.wheel_cache import (
    HostBuild,
    build_log,
    cached_host_build,
    cached_wheel,
    is_pure,
    mark_not_pure,
    native_entry,
    pure_entry,
    store_wheel,
    warn_rebuilding,
)

if TYPE_CHECKING:
    from runenv.config.plan import Plan
    from runenv.fetch.wheels import Artifact


def build_wheel(
    artifact: Artifact,
    sdist: Path,
    runtime_python: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> Path:
    """The wheel built from `sdist` (a file, or a git checkout) for `plan`'s platform.

    From the cache when it is there. A pure (`py3-none-any`) wheel is kept once, in the
    host-pure entry every platform looks in first (under its lock, so concurrent builds wait
    and share it); a compiled one leaves the marker that spares cross builds a host attempt.
    """
    pure, native = pure_entry(cache, artifact, plan), native_entry(cache, artifact, plan)

    def build_native(stage: Path) -> Path:
        extra = (
            {"MACOSX_DEPLOYMENT_TARGET": f"{plan.macos[0]}.{plan.macos[1]}"} if plan.macos else {}
        )
        built = pep517.build(
            artifact, sdist, runtime_python, plan, cache, extra,
            default_index=default_index, log_file=log_file or build_log(native),
        )  # fmt: skip
        with built as wheel:
            return store_wheel(wheel, stage, native)

    def native_wheel() -> Path:
        return native.get_or_make(cached_wheel, build_native, on_bad=warn_rebuilding)

    def share(stage: Path) -> HostBuild:
        wheel = native_wheel()
        if not is_pure(wheel.name):
            return mark_not_pure(stage, wheel.name)
        shared = store_wheel(wheel, stage, pure)  # kept once, where every platform looks first
        evict(native.path)
        return HostBuild(shared)

    host = pure.get_or_make(cached_host_build, share, on_bad=warn_rebuilding)
    return host.wheel if host.wheel is not None else native_wheel()


def build_wheels(
    sdists: Sequence[Artifact],
    files: Mapping[str, Path],
    runtime_python: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> dict[str, Path]:
    """Wheels for every sdist, keyed by the sdist's file name."""
    if sdists and not os.access(runtime_python, os.X_OK):
        raise BuildError(
            f"source builds need the runtime's interpreter, {runtime_python} is missing"
        )
    timeout = float(plan.timeout)
    return {
        a.filename: build_wheel(
            a,
            source_of(a, files, cache, timeout=timeout, log_file=log_file),
            runtime_python,
            plan,
            cache,
            default_index=default_index,
            log_file=log_file,
        )
        for a in sdists
    }


def source_of(
    artifact: Artifact,
    files: Mapping[str, Path],
    cache: Cache,
    *,
    timeout: float,
    log_file: Path | None,
) -> Path:
    """Where a source artifact is: its downloaded sdist, or its git checkout."""
    if artifact.kind == "git":
        return fetch_git(artifact, cache, timeout=timeout, log_file=log_file)
    return files[artifact.filename]
