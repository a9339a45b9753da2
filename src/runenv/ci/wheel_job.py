"""`runenv wheels`: on a target's native runner, build only the wheels it must build from source.

The CI's short native job: from the committed lock (never re-locked), the sources
`wheels.select_for_plan` picks (sdists, git commits) are built by the target runtime's own
interpreter through the source-build stage and its cache (`sdist.build_wheels`), and
written with their index (`built_wheels.write_index`) to a folder that `runenv build
--built-wheels` takes on a Linux runner, which then builds the whole runtime.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import httpx

from runenv._cache import Cache, staged_dir
from runenv.config.load import VariantConfig
from runenv.config.plan import make_plan
from runenv.errors import UsageError
from runenv.fetch import python, wheels
from runenv.lock import resolve
from runenv.lock.pylock import read_lock
from runenv.pipeline.context import BuildOptions
from runenv.pipeline.locking import stale_lock
from runenv.platforms import Platform, host_platform
from runenv.sources import built_wheels, sdist


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
    _check_replaceable(out)
    plan = make_plan(vc, platform)
    stale_lock(vc, plan, replace(options, locked=True))  # LockError when it is not current
    selection = wheels.select_for_plan(read_lock(resolve.lock_path(vc.folder, platform)), plan)
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
        source = python.variant_source(vc, platform, mirror=options.python_mirror)
        archive = python.download(
            source, cache, client=client, timeout=timeout, offline=options.offline,
            progress=options.progress,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="runenv-wheels-") as tmp:
            runtime = python.unpack(archive, Path(tmp) / "python")
            built = sdist.build_wheels(
                sources, files, runtime / plan.interpreter, plan, cache,
                default_index=options.default_index,
            )  # fmt: skip
    _check_replaceable(out)  # again: the builds took minutes
    with staged_dir(out) as staged:
        staged.chmod(_folder_mode(out.parent))  # a folder as the user makes one, not 0700
        index = built_wheels.write_index(staged, plan, [(a, built[a.filename]) for a in sources])
    return replace(index, folder=out)


def _check_replaceable(out: Path) -> None:
    """UsageError unless `out` is absent, an empty folder, or exactly what an earlier `runenv
    wheels` wrote: its index and the wheels the index names, nothing else. `out` is replaced
    whole, so any other file in it would be deleted."""
    if not (out.exists() or out.is_symlink()):
        return
    todo = "choose a new --out (it is replaced whole)"
    if out.is_symlink() or not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder: {todo}")
    present = {p.name for p in out.iterdir()}
    if not present:
        return
    if built_wheels.INDEX_NAME not in present:
        raise UsageError(f"{out}: exists and is not an earlier `runenv wheels` output: {todo}")
    try:
        index = built_wheels.read_index(out)
    except UsageError:
        raise UsageError(f"{out}: its index is not one `runenv wheels` wrote: {todo}") from None
    others = sorted(present - {built_wheels.INDEX_NAME} - {e.wheel for e in index.wheels})
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise UsageError(f"{out}: holds {others[0]}{more}, not written by `runenv wheels`: {todo}")


def _folder_mode(parent: Path) -> int:
    """The mode a folder made now in `parent` gets (the process umask applied), found without
    changing the umask (which other threads share)."""
    probe = Path(tempfile.mkdtemp(dir=parent)) / "probe"
    try:
        probe.mkdir()
        return probe.stat().st_mode & 0o7777
    finally:
        shutil.rmtree(probe.parent, ignore_errors=True)


__all__ = ["build_source_wheels"]
