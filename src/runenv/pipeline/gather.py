"""Gathering: what one build is, and everything it is made of, before any tree is assembled.

The first stages of `pipeline.build.build_target`: plan (`plan_build`), build hash
(`build_hash`), select (`select`, `import_built_wheels`, `leave_out_dependents`), fetch Python
(`fetch_python`), download wheels (`download_wheels`), build sdists (`build_sdists`). Each
takes the `BuildContext` and hands the work to the module that holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import httpx
from packaging.utils import canonicalize_name

from runenv._cache import Cache
from runenv.artifact import pack
from runenv.artifact.manifest import BuildInputs
from runenv.config.load import VariantConfig
from runenv.config.plan import make_plan
from runenv.fetch import python, wheels
from runenv.fetch.wheels import Artifact
from runenv.install import images
from runenv.lock.pylock import read_lock
from runenv.pipeline import compiling
from runenv.pipeline.context import BuildContext, BuildLog, BuildOptions, Target
from runenv.platforms import Platform
from runenv.sources import built_wheels, cross, sdist
from runenv.tree import bytecode
from runenv.tree.bytecode_compiler import Compiler, NoCompiler


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
        python=python.variant_source(vc, platform, mirror=options.python_mirror),
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


def fetch_python(
    ctx: BuildContext,
    choosing: Future[Compiler | NoCompiler],
    dest: Path,
    known: dict[tuple[int, int], str] | None = None,
) -> Path:
    """Fetch Python: the interpreter's archive, verified, from the cache, unpacked at `dest`.

    It is unpacked once into an image in the cache, its standard library compiled there by
    the build's compiler (`compiling.choose_compiler`), and linked from there
    (`runenv.install.images`).
    """
    compiler = choosing.result()
    archive = python.download(
        ctx.python,
        ctx.cache,
        client=ctx.client,
        timeout=ctx.timeout,
        offline=ctx.options.offline,
        progress=ctx.options.progress,
    )

    def unpack(tree: Path) -> dict[str, object]:
        python.unpack(archive, tree, apart=True)  # not slowed by the image threads
        own = compiling.in_tree(ctx, compiler, tree)  # natively, the image's own interpreter
        if isinstance(own, Compiler):
            bytecode.compile_image(ctx.plan, tree, own, timeout=ctx.timeout, log_file=ctx.log.path)
        return {"archive": archive.name}

    key = images.key(
        kind="python", sha256=ctx.python.sha256, bytecode=compiling.image_tag(compiler)
    )
    images.link_into(images.ensure(ctx.cache, key, unpack), dest, known)
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
    return sdist.build_wheels(
        [a for a in artifacts if a.from_source],
        files,
        tree / ctx.plan.interpreter,
        ctx.plan,
        ctx.cache,
        default_index=ctx.options.default_index,
        log_file=ctx.log.path,
    )
