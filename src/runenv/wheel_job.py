"""`runenv wheels`: on a target's native runner, build only the wheels it must build from source.

The CI's short native job: from the committed lock (never re-locked), the sources
`wheels.select_for_plan` picks (sdists, git commits) are built by the target runtime's own
interpreter through the source-build stage and its cache (`source_build.build_wheels`), and
written with their index (`built_wheels.write_index`) to a folder that `runenv build
--built-wheels` takes on a Linux runner, which then builds the whole runtime.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import httpx

from runenv import built_wheels, lock, python_fetch, source_build, wheels
from runenv._cache import Cache, staged_dir
from runenv.build import BuildOptions, stale_lock
from runenv.config import VariantConfig
from runenv.errors import UsageError
from runenv.plan import make_plan
from runenv.platforms import Platform, host_platform


def build_source_wheels(
    vc: VariantConfig,
    platform: Platform,
    options: BuildOptions,
    cache: Cache,
    out: Path,
    *,
    client: httpx.Client | None = None,
) -> built_wheels.Index:
    """Build the target's source wheels into `out` (replaced whole, or left as it was on
    failure) with their index; the index. Only on the target's own platform."""
    host = host_platform()
    if platform != host:
        raise UsageError(
            f"runenv wheels {vc.variant} --platform {platform.value}: source builds run the "
            f"target's own interpreter, so this runs on a {platform.value} machine (this is "
            f"{host.value}; in CI: {platform.info.github_runner})"
        )
    if out.exists() and not (out.is_dir() and _replaceable(out)):
        raise UsageError(
            f"{out}: exists and is not an earlier `runenv wheels` output: choose a new --out"
        )
    plan = make_plan(vc, platform)
    stale_lock(vc, plan, replace(options, locked=True))  # LockError when it is not current
    selection = wheels.select_for_plan(lock.read_lock(lock.lock_path(vc.folder, platform)), plan)
    sources = [a for a in selection.artifacts if a.from_source]
    timeout = float(plan.timeout)
    name = f"{plan.variant} {platform.value}"
    options.report(f"{name}: building {len(sources)} wheels from source")
    built: dict[str, Path] = {}
    if sources:
        files = wheels.download_all(
            [a for a in sources if a.kind != "git"], cache, client=client, timeout=timeout,
            offline=options.offline, progress=options.progress,
        )  # fmt: skip
        source = python_fetch.variant_source(vc, platform, mirror=options.python_mirror)
        archive = python_fetch.download(
            source, cache, client=client, timeout=timeout, offline=options.offline,
            progress=options.progress,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="runenv-wheels-") as tmp:
            runtime = python_fetch.unpack(archive, Path(tmp) / "python")
            built = source_build.build_wheels(
                sources, files, runtime / plan.interpreter, plan, cache,
                default_index=options.default_index,
            )  # fmt: skip
    with staged_dir(out) as staged:
        index = built_wheels.write_index(staged, plan, [(a, built[a.filename]) for a in sources])
    return replace(index, folder=out)


def _replaceable(folder: Path) -> bool:
    """An empty folder, or one `runenv wheels` wrote (its index is there)."""
    return not any(folder.iterdir()) or (folder / built_wheels.INDEX_NAME).is_file()


__all__ = ["build_source_wheels"]
