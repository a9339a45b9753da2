"""The build of one (variant, platform): the whole pipeline is `build_target`.

Stages, each in its own module: plan (`plan`), fetch Python (`python_fetch`), lock (`lock`),
wheels (`wheels`, `source_build`), install (`install`), copy files (`copy_files`), check
(`check`, `audit`), pack (`pack`, `manifest`).

Safety: everything is built under `pydist/<variant>/.tmp-*` while holding the target's file
lock, and only then moved into place, in an order that keeps the manifest the last word: the old
manifest goes first, then the tree and the archive are replaced, then the new manifest is
written. A manifest on disk therefore always describes the archive beside it, and a build
killed at any point leaves nothing that a later build (or a user reading manifests) would take
as finished.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from runenv import (
    __version__,
    audit,
    copy_files,
    install,
    lock,
    pack,
    python_fetch,
    source_build,
    wheels,
)
from runenv._cache import (
    Cache,
    is_verified,
    lock_for,
    mark_verified,
    replace_dir,
    staged_file,
    sweep_stale,
)
from runenv._download import redact
from runenv.check import import_check, top_level_modules
from runenv.config import VariantConfig
from runenv.errors import BuildError, LockError, OSFailure, RunenvError, UsageError
from runenv.manifest import PackageRecord, build_hash, make_manifest, read_manifest
from runenv.plan import Plan, make_plan
from runenv.platforms import Platform, host_platform

Reporter = Callable[[str], None]

INDEX_ENV = "RUNENV_INDEX_URL"
"""Environment variable for the default package index (after `--index-url`; PyPI if unset)."""


def _silent(message: str) -> None:
    """A reporter that says nothing."""


@dataclass(frozen=True)
class BuildOptions:
    """How to build, as opposed to what (that is the config)."""

    dist: Path
    pydist: Path
    locked: bool = False
    offline: bool = False
    python_mirror: str | None = None
    default_index: str | None = None
    progress: bool = False
    report: Reporter = field(default=_silent, compare=False)


@dataclass(frozen=True)
class BuildResult:
    plan: Plan
    archive: Path
    manifest: Path
    tree: Path
    build_hash: str
    up_to_date: bool
    relocked: bool
    seconds: float


@dataclass(frozen=True)
class Target:
    """Where one (variant, platform) build lands."""

    archive: Path
    manifest: Path
    log: Path  # the log of the build that made the archive beside it
    attempt_log: Path  # the log of a build under way; it becomes `log` only if that succeeds
    tree: Path

    @classmethod
    def of(cls, plan: Plan, options: BuildOptions) -> Target:
        stem = f"runenv-{plan.variant}-{plan.platform.value}"
        return cls(
            archive=options.dist / f"{stem}.tar.gz",
            manifest=options.dist / f"{stem}.json",
            log=options.dist / f"{stem}.log",
            attempt_log=options.dist / f"{stem}.attempt.log",
            tree=options.pydist / plan.variant / plan.platform.value,
        )

    def is_current(self, digest: str, markers: Path) -> bool:
        """Whether the finished build on disk has this build hash, and its archive still holds
        the bytes its manifest names (verified as cache entries are, markers in `markers`)."""
        manifest = read_manifest(self.manifest)
        if manifest is None or manifest.get("build_hash") != digest:
            return False
        sha256 = manifest.get("sha256")
        return (
            isinstance(sha256, str)
            and is_verified(self.archive, sha256, in_dir=markers)
            and self.tree.is_dir()
        )


def _lock_dir(options: BuildOptions, plan: Plan) -> Path:
    """Where a build's lock files live: under pydist/, not in dist/ or versions/."""
    return options.pydist / ".locks" / plan.variant


def lock_request(plan: Plan, options: BuildOptions) -> lock.LockRequest:
    return lock.LockRequest(
        requirements=plan.requirements,
        overrides=plan.overrides,
        no_deps=tuple(sorted(plan.no_deps)),
        python_version=plan.python_version,
        platform=plan.platform,
        glibc=plan.glibc,
        macos=plan.macos,
        indexes=plan.registries,
        default_index=options.default_index,
        skipped=tuple(plan.skipped),
    )


def ensure_lock(
    vc: VariantConfig,
    plan: Plan,
    options: BuildOptions,
    cache: Cache,
    log_file: Path | None,
    *,
    force: bool = False,
) -> tuple[Path, bool]:
    """Stage 3: the platform's lock, re-locked when its inputs changed (unless `--locked`)."""
    path = lock.lock_path(vc.folder, plan.platform)
    request = lock_request(plan, options)
    if not force and lock.is_fresh(path, request):
        return path, False
    shown = path.relative_to(vc.project) if path.is_relative_to(vc.project) else path
    why = "its inputs changed" if path.exists() else "there is none yet"
    if options.locked:
        raise LockError(
            f"{shown}: {why} and --locked forbids re-locking: "
            f"run `runenv lock {vc.variant} --platform {plan.platform.value}`"
        )
    options.report(f"{plan.variant} {plan.platform.value}: locking ({why})")
    if log_file is not None:  # a re-lock starts the build's log: uv's output opens it
        _start_log(log_file, plan)
    with lock_for(path, in_dir=_lock_dir(options, plan)):
        if force or not lock.is_fresh(path, request):
            lock.lock(
                request,
                path,
                cache=cache,
                timeout=plan.timeout,
                log_file=log_file,
                offline=options.offline,
            )
    return path, True


def pinned_archive(vc: VariantConfig, platform: Platform) -> python_fetch.PinnedArchive | None:
    spec = vc.config.python.archives.get(platform)
    if spec is None:
        return None
    path = (vc.folder / spec.path).resolve() if spec.path else None
    return python_fetch.PinnedArchive(url=spec.url, path=path, sha256=spec.sha256)


def python_source(
    vc: VariantConfig, plan: Plan, options: BuildOptions
) -> python_fetch.PythonSource:
    """Where this platform's interpreter comes from: pinned, mirror, or upstream PBS."""
    mirror = (
        options.python_mirror or os.environ.get(python_fetch.MIRROR_ENV) or vc.config.python.mirror
    )
    return python_fetch.resolve(
        plan.python_version, plan.platform, mirror=mirror, pinned=pinned_archive(vc, plan.platform)
    )


@dataclass(frozen=True)
class _Job:
    """One build's inputs, settled before any work starts."""

    plan: Plan
    options: BuildOptions
    cache: Cache
    client: httpx.Client | None
    source: python_fetch.PythonSource
    lock_file: Path
    digest: str
    target: Target
    log_file: Path | None


def build_target(
    vc: VariantConfig,
    platform: Platform,
    options: BuildOptions,
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    force: bool = False,
) -> BuildResult:
    """Build one (variant, platform), or report it up to date (unless `force`)."""
    try:
        return _build_target(vc, platform, options, cache, client=client, force=force)
    except OSError as exc:  # disk full, permission denied...: one line, not a traceback
        raise OSFailure(exc, f"{vc.variant} {platform.value}") from exc


def _build_target(
    vc: VariantConfig,
    platform: Platform,
    options: BuildOptions,
    cache: Cache,
    *,
    client: httpx.Client | None,
    force: bool,
) -> BuildResult:
    started = time.monotonic()
    plan = make_plan(vc, platform)
    target = Target.of(plan, options)
    # A build logs into `attempt_log`, renamed over `log` when it succeeds: a failed build
    # leaves its log beside the last good archive, manifest and log, which stay untouched.
    log_file = target.attempt_log if plan.enable_logging else None
    source = python_source(vc, plan, options)
    lock_file, relocked = ensure_lock(vc, plan, options, cache, log_file)
    digest = build_hash(plan, source.sha256, lock_file.read_bytes())
    job = _Job(plan, options, cache, client, source, lock_file, digest, target, log_file)

    def result(up_to_date: bool) -> BuildResult:
        seconds = time.monotonic() - started
        return BuildResult(
            plan, target.archive, target.manifest, target.tree, digest, up_to_date, relocked,
            seconds,
        )  # fmt: skip

    markers = _lock_dir(options, plan)
    if not force and target.is_current(digest, markers):
        return result(True)
    with lock_for(target.archive, in_dir=_lock_dir(options, plan)):
        # A concurrent build may have finished it while we waited for the lock.
        if not force and target.is_current(digest, markers):
            return result(True)
        sweep_stale(target.tree)
        sweep_stale(target.archive)
        target.tree.parent.mkdir(parents=True, exist_ok=True)
        # The log is started (truncated) only when there is work: a no-op keeps the last
        # build's; after a re-lock it already holds uv's output.
        if log_file and not relocked:
            _start_log(log_file, plan)
        prefix = f".tmp-{platform.value}."
        with tempfile.TemporaryDirectory(prefix=prefix, dir=target.tree.parent) as work:
            _run_stages(job, Path(work))
        if log_file is not None:
            log_file.replace(target.log)
    return result(False)


def _start_log(log_file: Path, plan: Plan) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    header = f"runenv {__version__}: build {plan.variant} {plan.platform.value}\n\n"
    log_file.write_text(header, encoding="utf-8")


def _run_stages(job: _Job, work: Path) -> None:
    """Stages 4 to 8 in a work folder; the finished outputs are moved into place last."""
    plan, options, cache, client, target, log_file = (
        job.plan, job.options, job.cache, job.client, job.target, job.log_file
    )  # fmt: skip
    report = options.report
    name = f"{plan.variant} {plan.platform.value}"
    native = plan.platform == host_platform()

    # Stage 4a: choose a file per package under the resolution policy. A cross build builds its
    # pure-Python sources here on the host; one that needs a native source build stops here,
    # before the interpreter and the wheels are downloaded.
    locked = lock.read_lock(job.lock_file)
    artifacts, plan = _select(job, locked)
    sdists = [a for a in artifacts if a.from_source]
    host_built = {} if native or not sdists else _cross_source_wheels(job, plan, sdists)

    # Stages 2 and 4b: the interpreter and every locked file, verified, from the caches. The
    # interpreter is fetched and unpacked while the wheels download.
    report(f"{name}: fetching Python {plan.python_version} and {len(artifacts)} packages")
    timeout = float(plan.timeout)

    def interpreter() -> Path:
        archive = python_fetch.download(
            job.source, cache, client=client, timeout=timeout, offline=options.offline,
            progress=options.progress,
        )  # fmt: skip
        return python_fetch.unpack(archive, work / "build")

    with ThreadPoolExecutor(1) as pool:
        unpacked = pool.submit(interpreter)
        files = wheels.download_all(
            artifacts, cache, client=client, parallel=plan.parallel_downloads, timeout=timeout,
            offline=options.offline, progress=options.progress,
        )  # fmt: skip
        tree = unpacked.result()

    # Stage 4c: wheels from sources, with the runtime's own interpreter (native; a cross
    # build's pure wheels were built on the host above).
    built = host_built or source_build.build_wheels(
        sdists,
        files,
        tree / plan.interpreter,
        plan,
        cache,
        default_index=options.default_index,
        log_file=log_file,
    )
    wheel_paths = [built.get(a.filename) or files[a.filename] for a in artifacts]

    # Stage 5 and 6: install, then the variant's own files.
    report(f"{name}: installing {len(wheel_paths)} wheels")
    installed = install.install_wheels(tree, wheel_paths, plan.platform, plan.python_version)
    copied = copy_files.copy_files(plan.copy_files, tree)

    # Stages 7 and 8 overlap: the archive is packed while the tree is checked (both only read
    # it; the import check writes no bytecode), and nothing is published unless both succeed.
    if native:
        checked = work / "checked"
        tree.rename(checked)  # checked away from where it was built: relocation is tested
        tree = checked
    report(f"{name}: checking and packing")
    with staged_file(target.archive) as staged, ThreadPoolExecutor(1) as pool:
        packing = pool.submit(pack.pack_tree, tree, staged)
        try:
            _check(plan, tree, native, timeout, log_file)
        except BaseException:
            wait([packing])  # the check's error is the one to report; the archive is dropped
            raise
        packed = packing.result()
        # Publish in the order the module docstring explains; the archive lands on leaving.
        target.manifest.unlink(missing_ok=True)
        replace_dir(tree, target.tree)
    sha256, size = packed
    built_names = {path.name for path in built.values()}
    records = [
        PackageRecord(d.name, d.version, d.wheel, d.sha256, from_source=d.wheel in built_names)
        for d in installed
    ]
    manifest = make_manifest(
        plan,
        archive=target.archive,
        sha256=sha256,
        size=size,
        build_hash=job.digest,
        python_url=redact(job.source.url),
        python_sha256=job.source.sha256,
        packages=records,
        copied=copied,
    )
    pack.write_manifest(target.manifest, manifest)
    mark_verified(target.archive, sha256, in_dir=_lock_dir(options, plan))


def _select(job: _Job, locked: lock.Lock) -> tuple[list[wheels.Artifact], Plan]:
    """Stage 4a under the resolution policy: the files to install, and the plan whose
    `skipped` also holds what the policy let go (each reported as a warning line)."""
    plan = job.plan
    selection = wheels.select_for_plan(locked, plan)
    for name, why in selection.missing.items():
        job.options.report(f"warning: {plan.variant} {plan.platform.value}: {name} skipped: {why}")
    if selection.missing:
        plan = replace(plan, skipped={**plan.skipped, **selection.missing})
    return selection.artifacts, plan


def _cross_source_wheels(job: _Job, plan: Plan, sources: list[wheels.Artifact]) -> dict[str, Path]:
    """A cross build's source packages: each built once on this host when its wheel comes out
    `py3-none-any` (shared by every platform through the cache); CrossSourceBuildError names
    the ones that compile code and need a native runner. Nothing else is fetched before."""
    files = wheels.download_all(
        sources, job.cache, client=job.client, timeout=float(plan.timeout),
        offline=job.options.offline,
    )  # fmt: skip
    return source_build.host_pure_wheels(
        sources, files, plan, job.cache, default_index=job.options.default_index,
        log_file=job.log_file,
    )  # fmt: skip


def _check(plan: Plan, tree: Path, native: bool, timeout: float, log_file: Path | None) -> None:
    """Stage 7: audit every binary and wheel tag; natively, import every top-level module."""
    audit.audit_tree(tree, plan)
    if native:
        import_check(
            tree, tree / plan.interpreter, top_level_modules(tree / plan.site_packages),
            plan.allow_import_failures, timeout=timeout, log_file=log_file,
        )  # fmt: skip


def build_many(
    targets: Sequence[tuple[VariantConfig, Platform]],
    options: BuildOptions,
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    force: bool = False,
) -> tuple[list[BuildResult], list[tuple[tuple[VariantConfig, Platform], RunenvError]]]:
    """Build several targets, two at a time; every target runs to its end.

    Two workers keep the network busy while the other target installs or packs (both cores,
    since zlib and the installer's copies release the GIL), without oversubscribing a small
    runner. Pure wheels shared by several platforms are fetched once by the cache.
    """
    results: list[BuildResult] = []
    failures: list[tuple[tuple[VariantConfig, Platform], RunenvError]] = []

    def one(target: tuple[VariantConfig, Platform]) -> BuildResult:
        return build_target(target[0], target[1], options, cache, client=client, force=force)

    with ThreadPoolExecutor(max_workers=min(2, max(1, len(targets)))) as pool:
        futures = [(t, pool.submit(one, t)) for t in targets]
        for target, future in futures:
            try:
                results.append(future.result())
            except RunenvError as exc:
                failures.append((target, exc))
    return results, failures


def check_built(vc: VariantConfig, platform: Platform, options: BuildOptions) -> Path:
    """Re-run the checks on a finished build (`runenv check`); return the tree checked."""
    plan = make_plan(vc, platform)
    target = Target.of(plan, options)
    if read_manifest(target.manifest) is None or not target.tree.is_dir():
        raise UsageError(
            f"{plan.variant} {platform.value} is not built: run `runenv build {plan.variant} "
            f"--platform {platform.value}`"
        )
    audit.audit_tree(target.tree, plan)
    if platform == host_platform():
        # Check a hard-linked copy at another path: relocation is checked, the tree untouched.
        with tempfile.TemporaryDirectory(prefix=".tmp-check.", dir=target.tree.parent) as tmp:
            moved = Path(tmp) / "runtime"
            shutil.copytree(target.tree, moved, symlinks=True, copy_function=os.link)
            import_check(
                moved,
                moved / plan.interpreter,
                top_level_modules(moved / plan.site_packages),
                plan.allow_import_failures,
                timeout=float(plan.timeout),
            )
    return target.tree


__all__ = ["BuildError", "BuildOptions", "BuildResult", "build_target", "ensure_lock"]
