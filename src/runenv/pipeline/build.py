"""The build of one (variant, platform): the whole pipeline is `build_target`, read top to bottom.

Each stage is one call there, to a stage function named after it in the module of its phase,
which hands the work to the module that holds it: `gather` (plan, build hash, select, fetch
Python, download wheels, build sdists), `compiling` (the bytecode compiler, bytecode),
`assemble` (images, install, wheelhouse, copy files), `checking` (check), `finish` (sign, pack,
describe, publish, parts). When a lock is stale is `locking`'s; taking a finished build's archive
again, `reuse`'s. What every stage reads travels in one `BuildContext` (`context`); what a stage
produces is passed on by name. The stage modules import none of this one.
docs/architecture.md describes the stages, the data each passes on, and where a new one goes.

Safety: everything is built under `pydist/<variant>/.tmp-*` while holding the target's file
lock, and published last, in an order that keeps the manifest the last word: the old manifest
goes first, then the tree and the archive are replaced, then the new manifest is written. A
manifest on disk therefore always describes the archive beside it, and a build killed at any
point leaves nothing that a later build (or a user reading manifests) would take as finished.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from runenv._cache import Cache, lock_for, sweep_stale, temp_beside
from runenv.artifact import parts
from runenv.config.load import VariantConfig
from runenv.config.schema import Layout
from runenv.errors import BuildError, OSFailure, RunenvError
from runenv.install.images import Image
from runenv.install.modules import importable
from runenv.lock import resolve
from runenv.pipeline import assemble, checking, compiling, finish, gather
from runenv.pipeline.context import BuildContext, BuildOptions, BuildResult, Target
from runenv.pipeline.locking import relock, stale_lock
from runenv.pipeline.reuse import keep_archive, reuse_archive
from runenv.platforms import Platform
from runenv.tree import listing


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
    tree is checked (with a sign command, the tree is checked, signed, then packed: the archive
    holds the signed files). Nothing is published unless the check, the signing and the pack
    succeed; a failure anywhere leaves the last finished build, and its log, as they were. A
    finished build above the part size gets its parts even when it is up to date.
    """
    started = time.monotonic()
    ctx = gather.plan_build(vc, platform, options, cache, client)

    # Lock: redone when its inputs changed (refused under --locked).
    lock_file = resolve.lock_path(vc.folder, platform)
    why = stale_lock(vc, ctx.plan, options)
    if why is not None:
        ctx.log.start()  # a re-lock is work: uv's output opens the build's log
        relock(vc, ctx.plan, options, cache, why, log_file=ctx.log.path)

    digest = gather.build_hash(ctx, lock_file)

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
            finish.cut_parts(ctx)  # or only its parts were missing, or of another size
            return result(up_to_date=True)
        work = stack.enter_context(_work_dir(ctx))
        ctx.log.start()
        staged_archive = stack.enter_context(temp_beside(ctx.target.archive))
        background = stack.enter_context(ThreadPoolExecutor(1))

        artifacts, ctx = gather.select(ctx, lock_file)
        as_wheelhouse = ctx.plan.layout is Layout.WHEELHOUSE
        # In the background: the bytecode compiler (a cross build's is the host's runtime),
        # then Python; meanwhile the wheels download, then their images are made (they wait
        # for Python only to compile).
        choosing = background.submit(compiling.choose_compiler, ctx, vc, work / "build")
        known: dict[tuple[int, int], str] = {}  # sha256s of the files linked from images
        unpacking = background.submit(gather.fetch_python, ctx, choosing, work / "build", known)
        files = gather.download_wheels(ctx, artifacts)
        artifacts, ctx = gather.leave_out_dependents(ctx, artifacts, files)
        if as_wheelhouse:  # nothing is installed: the wheels go to packages/ as they are
            images: list[tuple[Path, Image]] = []
        else:
            images = assemble.make_images(ctx, artifacts, files, choosing.result(), unpacking)
        tree, compiler = unpacking.result(), choosing.result()
        built = gather.build_sdists(ctx, artifacts, files, tree)
        wheels: list[tuple[Path, str]] = []  # carried into the pack as deflate streams
        if as_wheelhouse:
            installed = assemble.fill_wheelhouse(ctx, tree, artifacts, files, built)
        else:
            installed, wheels = assemble.install_wheels(
                ctx, tree, artifacts, images, built, compiler, known
            )
        copied = assemble.copy_variant_files(ctx, tree)
        compiled = compiling.compile_bytecode(ctx, tree, copied, compiler)
        if ctx.native:  # checked away from where it was built: relocation is tested
            tree = tree.rename(work / "checked")
        # A wheelhouse's copied site-packages modules are files a block venv does not see (as
        # in the reference); they may need packages only the wheelhouse holds: not imported.
        modules = importable(
            tree, ctx.plan.site_packages.as_posix(), () if as_wheelhouse else copied
        )
        # A wheelhouse's packages are imported in a block venv (`consumer`), the rest by the
        # runtime's own Python.
        block_modules = checking.block_importable(ctx, installed, copied) if as_wheelhouse else []
        reused = reuse_archive(ctx, digest, staged_archive)
        if reused is not None:  # this very build finished before: its archive, not a re-pack
            sha256, size = reused
        elif options.sign_command is None:
            packing = background.submit(finish.pack_archive, ctx, tree, staged_archive, wheels)
            checking.check(ctx, tree, modules, compiled.compiled, installed, block_modules)
            sha256, size = packing.result()
        else:  # signing changes the binaries: the pack waits for it
            checking.check(ctx, tree, modules, compiled.compiled, installed, block_modules)
            finish.sign_binaries(ctx, tree, options.sign_command)
            packing = background.submit(finish.pack_archive, ctx, tree, staged_archive, wheels)
            sha256, size = packing.result()
        tree_files = listing.make(tree, known)  # as packed, signed if signed
        manifest = finish.describe(
            ctx, digest, sha256, size, installed, built, copied, compiled, modules, block_modules
        )
        manifest[listing.MANIFEST_KEY] = listing.digest(tree_files)
        finish.publish(ctx, tree, staged_archive, manifest, tree_files)
        keep_archive(ctx, digest, sha256)
        finish.cut_parts(ctx)
    return result(up_to_date=False)


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
