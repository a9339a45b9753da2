"""Assembling: the runtime's tree put together from what was gathered: each downloaded wheel's
image made (`make_images`) and every image linked in the lock's order (`install_wheels`), or for
a wheelhouse the wheels copied into `packages/` (`fill_wheelhouse`); then the variant's files
copied in (`copy_variant_files`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

import runenv.install.wheels
from runenv.fetch.wheels import Artifact
from runenv.install import wheelhouse
from runenv.install.images import Image
from runenv.install.wheels import InstalledDist
from runenv.pipeline.compiling import image_compiler, image_tag
from runenv.pipeline.context import BuildContext
from runenv.tree import copy_files
from runenv.tree.bytecode_compiler import Compiler, NoCompiler


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
    return runenv.install.wheels.make_images(
        [files[a.filename] for a in downloaded],
        ctx.plan.platform,
        ctx.plan.python_version,
        ctx.cache,
        sha256s=[a.sha256 for a in downloaded],  # the lock's: verified when downloaded
        finish=image_compiler(ctx, compiler, wait=unpacking.result),
        tag=image_tag(compiler),
    )


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
    made = runenv.install.wheels.make_images(
        [built[a.filename] for a in sources],  # hashed: no outside sha256 names a built wheel
        ctx.plan.platform,
        ctx.plan.python_version,
        ctx.cache,
        finish=image_compiler(ctx, compiler),
        tag=image_tag(compiler),
    )
    by_source = dict(zip((a.filename for a in sources), made, strict=True))
    fetched = iter(images)
    ordered = [by_source[a.filename] if a.from_source else next(fetched) for a in artifacts]
    dists = runenv.install.wheels.link_images(
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


def copy_variant_files(ctx: BuildContext, tree: Path) -> list[str]:
    """Copy files: the variant's `copyFiles` into the tree; their runtime-relative paths."""
    return copy_files.copy_files(ctx.plan.copy_files, tree)
