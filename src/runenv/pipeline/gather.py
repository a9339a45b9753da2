"""The build of one (variant, platform): the whole pipeline is `build_target`, read top to bottom.

Each stage is one call there, to a function below named after it, which hands the work to the
module that holds it: plan (`plan`), lock (`lock`), select and download wheels (`wheels`),
fetch Python (`python_fetch`), build sdists (`source_build`), install (`install`), copy files
(`copy_files`), bytecode (`bytecode`), check (`check`, `audit`), sign (`sign`), pack (`pack`),
publish (`manifest`, `pack`), parts (`parts`). What every stage reads travels in one
`BuildContext` (`pipeline.context`); what a stage produces is passed on by name. When a lock is
stale is `pipeline.locking`'s; taking a finished build's archive again, `pipeline.reuse`'s.
docs/architecture.md describes the stages, the data each passes on, and where a new one goes.

Safety: everything is built under `pydist/<variant>/.tmp-*` while holding the target's file
lock, and published last, in an order that keeps the manifest the last word: the old manifest
goes first, then the tree and the archive are replaced, then the new manifest is written. A
manifest on disk therefore always describes the archive beside it, and a build killed at any
point leaves nothing that a later build (or a user reading manifests) would take as finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from packaging.utils import canonicalize_name

from runenv._cache import (
    Cache,
    lock_for,
    mark_verified,
    replace_dir,
    sweep_stale,
    temp_beside,
)
from runenv.artifact import pack, parts
from runenv.artifact.manifest import BuildInputs, PackageRecord, make_manifest
from runenv.artifact.wheel_streams import wheel_streams
from runenv.checks import audit, consumer
from runenv.checks.imports import import_check
from runenv.config.load import VariantConfig
from runenv.config.plan import make_plan
from runenv.config.schema import Layout
from runenv.errors import BuildError, OSFailure, RunenvError
from runenv.fetch import python as python_fetch
from runenv.fetch import wheels
from runenv.fetch.wheels import Artifact
from runenv.install import images as _images
from runenv.install import wheelhouse
from runenv.install import wheels as install
from runenv.install.images import Image
from runenv.install.wheels import InstalledDist
from runenv.lock import resolve as lock
from runenv.lock.pylock import read_lock
from runenv.pipeline.context import (
    BuildContext,
    BuildLog,
    BuildOptions,
    BuildResult,
    Target,
)
from runenv.pipeline.locking import relock, stale_lock
from runenv.pipeline.reuse import keep_archive, reuse_archive
from runenv.platforms import Platform, host_platform
from runenv.sources import built_wheels, cross
from runenv.sources import sdist as source_build
from runenv.tree import bytecode, copy_files, sign
from runenv.tree import listing as tree_listing
from runenv.tree.bytecode import Compiler, NoCompiler
from runenv.tree.modules import importable, top_level

Reporter = Callable[[str], None]

# --------------------------------------------------------------------------- the pipeline


def build_target(
    vc: VariantConfig,
    platform: Platform,
    options: BuildOptions,
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    force: bool = False,
) -> BuildResult:
    """Build one (variant, platform), or find it up to date (unless `force`): the whole build.

    Two stages run beside others, on `background`: the interpreter is fetched and unpacked
    while the wheels download and their images are made, and the archive is packed while the
    tree is checked (with a
    sign command, the tree is checked, signed, then packed: the archive holds the signed
    files). Nothing is published unless the check, the signing and the pack succeed; a
    failure anywhere leaves the last finished build, and its log, as they were. A finished
    build above the part size gets its parts even when it is up to date.
    """
    started = time.monotonic()
    ctx = plan_build(vc, platform, options, cache, client)

    # Lock: redone when its inputs changed (refused under --locked).
    lock_file = lock.lock_path(vc.folder, platform)
    why = stale_lock(vc, ctx.plan, options)
    if why is not None:
        ctx.log.start()  # a re-lock is work: uv's output opens the build's log
        relock(vc, ctx.plan, options, cache, why, log_file=ctx.log.path)

    digest = build_hash(ctx, lock_file)

    def result(up_to_date: bool) -> BuildResult:
        t = ctx.target
        seconds = time.monotonic() - started
        return BuildResult(
            ctx.plan, t.archive, t.manifest, t.tree, digest, up_to_date, why is not None, seconds
        )

    if (
        not force
        and ctx.target.is_current(digest, ctx.lock_dir)
        and parts.parts_current(ctx.target.manifest, options.part_size)
    ):
        return result(up_to_date=True)
    # The work: under the target's file lock, in a work folder beside its tree; on any error
    # the background thread is waited for, then the staged archive and the work folder go.
    with contextlib.ExitStack() as stack:
        stack.enter_context(lock_for(ctx.target.archive, in_dir=ctx.lock_dir))
        if not force and ctx.target.is_current(digest, ctx.lock_dir):  # finished meanwhile
            cut_parts(ctx)  # or only its parts were missing, or of another size
            return result(up_to_date=True)
        work = stack.enter_context(_work_dir(ctx))
        ctx.log.start()
        staged_archive = stack.enter_context(temp_beside(ctx.target.archive))
        background = stack.enter_context(ThreadPoolExecutor(1))

        artifacts, ctx = select(ctx, lock_file)
        as_wheelhouse = ctx.plan.layout is Layout.WHEELHOUSE
        # In the background: the bytecode compiler (a cross build's is the host's runtime),
        # then Python; meanwhile the wheels download, then their images are made (they wait
        # for Python only to compile).
        choosing = background.submit(bytecode_compiler, ctx, vc, work / "build")
        known: dict[tuple[int, int], str] = {}  # sha256s of the files linked from images
        unpacking = background.submit(fetch_python, ctx, choosing, work / "build", known)
        files = download_wheels(ctx, artifacts)
        artifacts, ctx = leave_out_dependents(ctx, artifacts, files)
        if as_wheelhouse:  # nothing is installed: the wheels go to packages/ as they are
            images: list[tuple[Path, Image]] = []
        else:
            images = make_images(ctx, artifacts, files, choosing.result(), unpacking)
        tree, compiler = unpacking.result(), choosing.result()
        built = build_sdists(ctx, artifacts, files, tree)
        wheels: list[tuple[Path, str]] = []  # carried into the pack as deflate streams
        if as_wheelhouse:
            installed = fill_wheelhouse(ctx, tree, artifacts, files, built)
        else:
            installed, wheels = install_wheels(ctx, tree, artifacts, images, built, compiler, known)
        copied = copy_variant_files(ctx, tree)
        compiled = compile_bytecode(ctx, tree, copied, compiler)
        if ctx.native:  # checked away from where it was built: relocation is tested
            tree = tree.rename(work / "checked")
        # A wheelhouse's copied site-packages modules are files a block venv does not see (as
        # in the reference); they may need packages only the wheelhouse holds: not imported.
        modules = importable(
            tree, ctx.plan.site_packages.as_posix(), () if as_wheelhouse else copied
        )
        # A wheelhouse's packages are imported in a block venv (`consumer`), the rest by the
        # runtime's own Python.
        block_modules = block_importable(ctx, installed, copied) if as_wheelhouse else []
        reused = reuse_archive(ctx, digest, staged_archive)
        if reused is not None:  # this very build finished before: its archive, not a re-pack
            sha256, size = reused
        elif options.sign_command is None:
            packing = background.submit(pack_archive, ctx, tree, staged_archive, wheels)
            check(ctx, tree, modules, compiled.compiled, installed, block_modules)
            sha256, size = packing.result()
        else:  # signing changes the binaries: the pack waits for it
            check(ctx, tree, modules, compiled.compiled, installed, block_modules)
            sign_binaries(ctx, tree, options.sign_command)
            packing = background.submit(pack_archive, ctx, tree, staged_archive, wheels)
            sha256, size = packing.result()
        listing = tree_listing.make(tree, known)  # as packed, signed if signed
        manifest = describe(
            ctx, digest, sha256, size, installed, built, copied, compiled, modules, block_modules
        )
        manifest[tree_listing.MANIFEST_KEY] = tree_listing.digest(listing)
        publish(ctx, tree, staged_archive, manifest, listing)
        keep_archive(ctx, digest, sha256)
        cut_parts(ctx)
    return result(up_to_date=False)


# --------------------------------------------------------------------------- the stages


def plan_build(
    vc: VariantConfig,
    platform: Platform,
    options: BuildOptions,
    cache: Cache,
    client: httpx.Client | None,
) -> BuildContext:
    """Plan: the platform's plan, where its interpreter comes from, where the build lands."""
    plan = make_plan(vc, platform)
    target = Target.of(plan, options)
    return BuildContext(
        plan=plan,
        options=options,
        cache=cache,
        client=client,
        python=python_fetch.variant_source(vc, platform, mirror=options.python_mirror),
        target=target,
        log=BuildLog(target, plan),
    )


def build_hash(ctx: BuildContext, lock_file: Path) -> str:
    """The build hash: of the named inputs that decide the output (`manifest.BuildInputs`).

    A signed build's hash also covers the sign command, so a signed archive is never taken for
    an unsigned one (or the other way round); an unsigned build's hash is the inputs' alone.
    """
    inputs = BuildInputs.of(
        ctx.plan, ctx.python.sha256, lock_file.read_bytes(), pack.source_date_epoch()
    )
    digest = inputs.digest()
    command = ctx.options.sign_command
    if command is None:
        return digest
    return hashlib.sha256(f"{digest}\0signed by\0{command}".encode()).hexdigest()


def select(ctx: BuildContext, lock_file: Path) -> tuple[list[Artifact], BuildContext]:
    """Select: the file each locked package installs from, a wheel or else its source (an
    sdist, a git commit), under the plan's `packages.resolution` policy.

    What the policy lets go is a warning line and, in the returned context's plan, a skipped
    package with its reason (the manifest records it). A cross build builds its sources here,
    on this host, keeping those whose wheel is py3-none-any (`ctx.host_built`); one that needs
    a native source build stops here, before the interpreter and the wheels are downloaded.
    """
    plan = ctx.plan
    selection = wheels.select_for_plan(read_lock(lock_file), plan)
    for name, why in selection.missing.items():
        ctx.options.report(f"warning: {ctx.name}: {name} skipped: {why}")
    if selection.missing:
        ctx = replace(ctx, plan=replace(plan, skipped={**plan.skipped, **selection.missing}))
    sources = [a for a in selection.artifacts if a.from_source]
    if ctx.options.built_wheels:  # a wheel for a package not built from source is refused
        import_built_wheels(ctx, sources)
    if sources and not ctx.native:
        ctx = replace(ctx, host_built=_host_pure_wheels(ctx, sources))
    return selection.artifacts, ctx


def leave_out_dependents(
    ctx: BuildContext, artifacts: Sequence[Artifact], files: Mapping[str, Path]
) -> tuple[list[Artifact], BuildContext]:
    """Select, once the wheels are here: what needs a package the policy left out is left out
    too (`wheels.needing_left_out`), with a warning and its reason in the manifest's
    `skipped`, so nothing installs without what it needs."""
    plan = ctx.plan
    if not plan.skipped:
        return list(artifacts), ctx
    gone = wheels.needing_left_out(
        artifacts, files, plan.skipped, plan.platform, plan.python_version
    )
    for name, why in sorted(gone.items()):
        ctx.options.report(f"warning: {ctx.name}: {name} skipped: {why}")
    kept = [a for a in artifacts if canonicalize_name(a.name) not in gone]
    return kept, replace(ctx, plan=replace(plan, skipped={**plan.skipped, **gone}))


def import_built_wheels(ctx: BuildContext, sources: Sequence[Artifact]) -> None:
    """Import built wheels: the wheels `runenv wheels` built for this target on its native
    runner (`--built-wheels`), each verified against its index and this build's cache key,
    placed in the built-wheels cache as if built here (`built_wheels.import_for`), so the
    source-build stage finds them and compiles nothing. Noted in the build's log."""
    imported = built_wheels.import_for(ctx.options.built_wheels, ctx.plan, sources, ctx.cache)
    for got in imported:
        e = got.entry
        how = "imported" if got.fresh else "already in the cache"
        ctx.log.note(
            f"runenv: built wheel {e.wheel} ({e.package} {e.version}, sha256 {e.sha256}, "
            f"cache key {e.cache_key}) from --built-wheels: {how}"
        )
    if imported:
        ctx.options.report(f"{ctx.name}: {len(imported)} wheels built on the native runner")


def _host_pure_wheels(ctx: BuildContext, sources: Sequence[Artifact]) -> dict[str, Path]:
    """A cross build's sources, each built once on this host and kept when its wheel is
    py3-none-any (shared by every platform through the cache); CrossSourceBuildError names
    the ones that compile code and need a native runner. Only the sources are fetched."""
    files = wheels.download_all(
        sources, ctx.cache, client=ctx.client, timeout=ctx.timeout, offline=ctx.options.offline
    )
    return cross.host_pure_wheels(
        sources,
        files,
        ctx.plan,
        ctx.cache,
        default_index=ctx.options.default_index,
        log_file=ctx.log.path,
    )


def bytecode_compiler(ctx: BuildContext, vc: VariantConfig, tree: Path) -> Compiler | NoCompiler:
    """The interpreter that compiles this build's bytecode (`bytecode.choose_compiler`): the
    runtime's own in `tree`, or for a cross build the host's runtime of the same version; or
    `NoCompiler` with the reason the build ships no bytecode."""

    def host_python() -> Path:
        host = host_platform()
        source = python_fetch.variant_source(vc, host, mirror=ctx.options.python_mirror)
        archive = python_fetch.download(
            source, ctx.cache, client=ctx.client, timeout=ctx.timeout, offline=ctx.options.offline
        )
        runtime = bytecode.shared_runtime(archive, source.sha256)
        return runtime / host.info.interpreter(ctx.plan.python_version)

    return bytecode.choose_compiler(ctx.plan, tree, native=ctx.native, host_python=host_python)


def _tag(compiler: Compiler | NoCompiler) -> str:
    """What decides an image's bytecode, for its cache key."""
    return compiler.tag if isinstance(compiler, Compiler) else "none"


def fetch_python(
    ctx: BuildContext,
    choosing: Future[Compiler | NoCompiler],
    dest: Path,
    known: dict[tuple[int, int], str] | None = None,
) -> Path:
    """Fetch Python: the interpreter's archive, verified, from the cache, unpacked at `dest`.

    It is unpacked once into an image in the cache, its standard library compiled there by
    the build's compiler (`bytecode_compiler`), and linked from there (`runenv.install.images`).
    """
    compiler = choosing.result()
    archive = python_fetch.download(
        ctx.python,
        ctx.cache,
        client=ctx.client,
        timeout=ctx.timeout,
        offline=ctx.options.offline,
        progress=ctx.options.progress,
    )

    def unpack(tree: Path) -> dict[str, object]:
        python_fetch.unpack(archive, tree, apart=True)  # not slowed by the image threads
        if isinstance(compiler, Compiler):
            # Natively the image's own interpreter compiles it (the same runtime as the build's).
            own = replace(compiler, interpreter=tree / ctx.plan.interpreter)
            bytecode.compile_image(
                ctx.plan, tree, own if ctx.native else compiler, timeout=ctx.timeout,
                log_file=ctx.log.path,
            )  # fmt: skip
        return {"archive": archive.name}

    key = _images.key(kind="python", sha256=ctx.python.sha256, bytecode=_tag(compiler))
    _images.link_into(_images.ensure(ctx.cache, key, unpack), dest, known)
    return dest


def download_wheels(ctx: BuildContext, artifacts: Sequence[Artifact]) -> dict[str, Path]:
    """Download wheels: every selected file (wheels and sdists), verified, from the cache."""
    plan = ctx.plan
    ctx.options.report(
        f"{ctx.name}: fetching Python {plan.python_version} and {len(artifacts)} packages"
    )
    return wheels.download_all(
        artifacts,
        ctx.cache,
        client=ctx.client,
        parallel=ctx.plan.parallel_downloads,
        timeout=ctx.timeout,
        offline=ctx.options.offline,
        progress=ctx.options.progress,
    )


def build_sdists(
    ctx: BuildContext, artifacts: Sequence[Artifact], files: Mapping[str, Path], tree: Path
) -> dict[str, Path]:
    """Build sdists: a wheel from each selected source (sdist, git commit), with the runtime's
    own interpreter; a cross build's come from `select` (built on this host, pure).

    Keyed by the source's file name.
    """
    if not ctx.native:
        return dict(ctx.host_built)
    return source_build.build_wheels(
        [a for a in artifacts if a.from_source],
        files,
        tree / ctx.plan.interpreter,
        ctx.plan,
        ctx.cache,
        default_index=ctx.options.default_index,
        log_file=ctx.log.path,
    )


def make_images(
    ctx: BuildContext,
    artifacts: Sequence[Artifact],
    files: Mapping[str, Path],
    compiler: Compiler | NoCompiler,
    unpacking: Future[Path],
) -> list[tuple[Path, Image]]:
    """Install, first part: each downloaded wheel's image in the cache, with its bytecode
    (`runenv.install.images`), made where missing while Python unpacks; a compile waits for it."""
    downloaded = [a for a in artifacts if not a.from_source]
    ctx.options.report(f"{ctx.name}: installing {len(artifacts)} wheels")
    return install.make_images(
        [files[a.filename] for a in downloaded],
        ctx.plan.platform,
        ctx.plan.python_version,
        ctx.cache,
        sha256s=[a.sha256 for a in downloaded],  # the lock's: verified when downloaded
        finish=_image_compiler(ctx, compiler, wait=unpacking.result),
        tag=_tag(compiler),
    )


def _image_compiler(
    ctx: BuildContext, compiler: Compiler | NoCompiler, *, wait: Callable[[], object] | None = None
) -> Callable[[Path], None]:
    """What completes a new wheel image: its bytecode, once `wait` returns (a native build's
    compiler is in the runtime that is still being unpacked)."""

    def compile_image(image: Path) -> None:
        if isinstance(compiler, Compiler):
            if wait is not None:
                wait()
            bytecode.compile_image(
                ctx.plan, image, compiler, timeout=ctx.timeout, log_file=ctx.log.path
            )

    return compile_image


def install_wheels(
    ctx: BuildContext,
    tree: Path,
    artifacts: Sequence[Artifact],
    images: Sequence[tuple[Path, Image]],
    built: Mapping[str, Path],
    compiler: Compiler | NoCompiler,
    known: dict[tuple[int, int], str] | None = None,
) -> tuple[list[InstalledDist], list[tuple[Path, str]]]:
    """Install: every wheel (downloaded, its image from `make_images`; or built from its sdist,
    imaged now) linked into the runtime's tree, in the lock's order. Returns the installed
    distributions and each wheel with its sha256, in that order."""
    sources = [a for a in artifacts if a.from_source]
    made = install.make_images(
        [built[a.filename] for a in sources],  # hashed: no outside sha256 names a built wheel
        ctx.plan.platform,
        ctx.plan.python_version,
        ctx.cache,
        finish=_image_compiler(ctx, compiler),
        tag=_tag(compiler),
    )
    by_source = dict(zip((a.filename for a in sources), made, strict=True))
    fetched = iter(images)
    ordered = [by_source[a.filename] if a.from_source else next(fetched) for a in artifacts]
    dists = install.link_images(
        tree, ordered, ctx.plan.platform, ctx.plan.python_version, known=known
    )
    return dists, [(wheel, str(image.info["sha256"])) for wheel, image in ordered]


def fill_wheelhouse(
    ctx: BuildContext,
    tree: Path,
    artifacts: Sequence[Artifact],
    files: Mapping[str, Path],
    built: Mapping[str, Path],
) -> list[InstalledDist]:
    """Install, for a wheelhouse: every selected wheel (downloaded, or built from its source)
    copied into `packages/`, and `<binDir>/python` made (`wheelhouse`)."""
    ctx.options.report(f"{ctx.name}: {len(artifacts)} wheels into {wheelhouse.PACKAGES_DIR}/")
    records = wheelhouse.fill(tree, artifacts, files, built)
    wheelhouse.link_python(tree, ctx.plan)
    return records


def block_importable(
    ctx: BuildContext, installed: Sequence[InstalledDist], copied: Sequence[str]
) -> list[str]:
    """What a block imports from a wheelhouse runtime: every wheel's top-level names, and the
    modules copyFiles put in the runtime's site-packages, which the blocks that use them
    append to their path (`consumer.check_wheelhouse`)."""
    site = f"{ctx.plan.site_packages.as_posix()}/"
    copied_modules = top_level(p[len(site) :] for p in copied if p.startswith(site))
    return sorted({m for d in installed for m in d.top_level} | set(copied_modules))


def pack_archive(
    ctx: BuildContext, tree: Path, archive: Path, wheels: Sequence[tuple[Path, str]]
) -> tuple[str, int]:
    """Pack: the tree into a reproducible archive (`pack`), each large file that came unchanged
    out of a wheel carried as the wheel's own deflate stream; its (sha256, size)."""
    streams = wheel_streams(wheels, ctx.plan.site_packages.as_posix())
    return pack.pack_tree(tree, archive, streams=streams)


def copy_variant_files(ctx: BuildContext, tree: Path) -> list[str]:
    """Copy files: the variant's `copyFiles` into the tree; their runtime-relative paths."""
    return copy_files.copy_files(ctx.plan.copy_files, tree)


def compile_bytecode(
    ctx: BuildContext, tree: Path, copied: Sequence[str], compiler: Compiler | NoCompiler
) -> bytecode.BytecodeResult:
    """Bytecode: every `.py` of the tree compiled by an interpreter of its X.Y (`bytecode`);
    what the images brought is kept, so this compiles the copied files and little else."""
    if isinstance(compiler, Compiler) and ctx.native:
        compiler = replace(compiler, interpreter=tree / ctx.plan.interpreter)
    result = bytecode.compile_runtime(
        ctx.plan, tree, copied, compiler, timeout=ctx.timeout, log_file=ctx.log.path
    )
    if not result.compiled and ctx.plan.compile_bytecode:
        ctx.options.report(f"{ctx.name}: warning: no bytecode: {result.reason}")
    return result


def check(
    ctx: BuildContext,
    tree: Path,
    modules: Sequence[str],
    shipped_bytecode: bool,
    installed: Sequence[InstalledDist] = (),
    block_modules: Sequence[str] = (),
) -> None:
    """Check: audit every binary and wheel tag; natively, import every top-level module (from
    the shipped bytecode, when there is some: a module compiled on import fails the check).
    `modules` is `modules.importable`, which the manifest records for a later native check.
    A wheelhouse is also checked as its consumer uses it (`consumer.check_wheelhouse`): every
    wheel installed into a block venv from `packages/`, offline, and `block_modules` imported.

    It only reads the tree (the import check writes no bytecode), so the pack runs beside it.
    """
    ctx.options.report(f"{ctx.name}: checking and packing")
    plan = ctx.plan
    audit.audit_tree(tree, plan)
    if ctx.native:
        import_check(
            tree,
            tree / plan.interpreter,
            modules,
            plan.allow_import_failures,
            timeout=ctx.timeout,
            log_file=ctx.log.path,
            bytecode=shipped_bytecode,
            test_suites=plan.compile_test_bytecode,
        )
        if plan.layout is Layout.WHEELHOUSE:
            consumer.check_wheelhouse(
                tree,
                bin_dir=plan.bin_dir,
                site_packages=plan.site_packages,
                runtime_env=plan.runtime_env,
                packages=[(d.name, d.version) for d in installed],
                modules=block_modules,
                allowed=plan.allow_import_failures,
                windows=plan.platform.info.is_windows,
                timeout=ctx.timeout,
                log_file=ctx.log.path,
            )


def sign_binaries(ctx: BuildContext, tree: Path, command: str) -> None:
    """Sign: the sign command over every binary of the checked tree, before the pack (so the
    archive and its manifest hold the signed bytes). SubprocessError when it fails."""
    ctx.options.report(f"{ctx.name}: signing")
    signed = sign.sign_tree(
        command,
        tree,
        platform=ctx.plan.platform.value,
        variant=ctx.plan.variant,
        log_file=ctx.log.path,
    )
    ctx.options.report(f"{ctx.name}: signed {len(signed)} binaries")


def describe(
    ctx: BuildContext,
    digest: str,
    sha256: str,
    size: int,
    installed: Sequence[InstalledDist],
    built: Mapping[str, Path],
    copied: Sequence[str],
    compiled: bytecode.BytecodeResult,
    modules: Sequence[str],
    block_modules: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest of the packed archive (`manifest.make_manifest`)."""
    built_names = {path.name for path in built.values()}
    records = [
        PackageRecord(
            d.name, d.version, d.wheel, d.sha256, d.wheel in built_names, top_level=d.top_level
        )
        for d in installed
    ]
    return make_manifest(
        ctx.plan,
        archive=ctx.target.archive,
        sha256=sha256,
        size=size,
        build_hash=digest,
        python_url=ctx.python.public_url,
        python_sha256=ctx.python.sha256,
        packages=records,
        copied=copied,
        bytecode=compiled.to_json(),
        checked=modules,
        block_checked=block_modules,
    )


def publish(
    ctx: BuildContext,
    tree: Path,
    archive: Path,
    manifest: Mapping[str, Any],
    listing: tree_listing.Listing,
) -> None:
    """Publish: the old manifest goes, the tree and the archive take their places with the
    tree's listing, the new manifest is written (the module docstring says why it is last),
    the attempt's log becomes the build's log. The archive is marked verified, so the next
    no-op hashes it only if it changed."""
    target = ctx.target
    target.manifest.unlink(missing_ok=True)
    replace_dir(tree, target.tree)
    tree_listing.write(target.tree, listing, ctx.lock_dir)
    archive.replace(target.archive)
    pack.write_manifest(target.manifest, manifest)
    ctx.log.publish()
    mark_verified(target.archive, manifest["sha256"], in_dir=ctx.lock_dir)


def cut_parts(ctx: BuildContext) -> None:
    """Parts: a published archive above the part size is also cut into parts (GitHub refuses
    release assets of 2 GiB), which its manifest lists (`parts.publish_parts`)."""
    cut = parts.publish_parts(ctx.target.manifest, ctx.options.part_size)
    if cut:
        ctx.options.report(f"{ctx.name}: {len(cut)} parts of at most {ctx.options.part_size} bytes")


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _work_dir(ctx: BuildContext) -> Iterator[Path]:
    """A fresh work folder beside the target's tree, after sweeping killed builds' leftovers.

    Call it holding the target's lock: then no live build owns those leftovers.
    """
    tree = ctx.target.tree
    sweep_stale(tree)
    sweep_stale(ctx.target.archive)
    tree.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".tmp-{ctx.plan.platform.value}."
    with tempfile.TemporaryDirectory(prefix=prefix, dir=tree.parent) as work:
        yield Path(work)


def build_many(
    targets: Sequence[tuple[VariantConfig, Platform]],
    options: BuildOptions,
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    force: bool = False,
) -> tuple[list[BuildResult], list[tuple[tuple[VariantConfig, Platform], RunenvError]]]:
    """Build several targets, two at a time; every target runs to its end.

    A target's OSError (disk full, permission denied...) is its failure, as one line naming
    it (`OSFailure`), like any other error of a build.

    Two workers keep the network busy while the other target installs or packs (both cores,
    since libdeflate and the installer's copies release the GIL), without oversubscribing a
    small runner. Pure wheels shared by several platforms are fetched once by the cache.
    """
    results: list[BuildResult] = []
    failures: list[tuple[tuple[VariantConfig, Platform], RunenvError]] = []

    def one(target: tuple[VariantConfig, Platform]) -> BuildResult:
        vc, platform = target
        try:
            return build_target(vc, platform, options, cache, client=client, force=force)
        except OSError as exc:
            raise OSFailure(exc, f"{vc.variant} {platform.value}") from exc

    with ThreadPoolExecutor(max_workers=min(2, max(1, len(targets)))) as pool:
        futures = [(t, pool.submit(one, t)) for t in targets]
        for target, future in futures:
            try:
                results.append(future.result())
            except RunenvError as exc:
                failures.append((target, exc))
    return results, failures


__all__ = [
    "BuildContext",
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "Target",
    "build_many",
    "build_target",
]
