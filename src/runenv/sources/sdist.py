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
from runenv.sources import pep517, wheel_cache
from runenv.sources.git import fetch_git

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
    pure = wheel_cache.pure_entry(cache, artifact, plan)
    native = wheel_cache.native_entry(cache, artifact, plan)

    def build_native(stage: Path) -> Path:
        extra = (
            {"MACOSX_DEPLOYMENT_TARGET": f"{plan.macos[0]}.{plan.macos[1]}"} if plan.macos else {}
        )
        with pep517.build(
            artifact, sdist, runtime_python, plan, cache, extra,
            default_index=default_index, log_file=log_file or wheel_cache.build_log(native),
        ) as wheel:  # fmt: skip
            return wheel_cache.store_wheel(wheel, stage, native)

    def native_wheel() -> Path:
        return native.get_or_make(
            wheel_cache.cached_wheel, build_native, on_bad=wheel_cache.warn_rebuilding
        )

    def share(stage: Path) -> wheel_cache.HostBuild:
        host = wheel_cache.keep_host_build(native_wheel(), stage, pure)
        if host.wheel is not None:  # kept once, where every platform looks first
            evict(native.path)
        return host

    host = pure.get_or_make(
        wheel_cache.cached_host_build, share, on_bad=wheel_cache.warn_rebuilding
    )
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
