"""Finishing: the checked tree made into what is published: signed (`sign_binaries`), packed
(`pack_archive`), described by its manifest (`describe`), published (`publish`) and cut into
parts (`cut_parts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runenv._cache import mark_verified, replace_dir
from runenv.artifact import pack, parts
from runenv.artifact.manifest import PackageRecord, make_manifest
from runenv.artifact.wheel_streams import wheel_streams
from runenv.install.wheels import InstalledDist
from runenv.pipeline.context import BuildContext
from runenv.tree import bytecode, listing, sign


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


def pack_archive(
    ctx: BuildContext, tree: Path, archive: Path, wheels: Sequence[tuple[Path, str]]
) -> tuple[str, int]:
    """Pack: the tree into a reproducible archive (`pack`), each file of 64 KiB to 32 MiB that
    came unchanged out of a wheel carried as the wheel's own deflate stream; its (sha256, size)."""
    streams = wheel_streams(wheels, ctx.plan.site_packages.as_posix())
    return pack.pack_tree(tree, archive, streams=streams)


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
    tree_files: listing.Listing,
) -> None:
    """Publish: the old manifest goes, the tree and the archive take their places with the
    tree's listing, the new manifest is written (`pipeline.build`'s docstring says why it is last),
    the attempt's log becomes the build's log. The archive is marked verified, so the next
    no-op hashes it only if it changed."""
    target = ctx.target
    target.manifest.unlink(missing_ok=True)
    replace_dir(tree, target.tree)
    listing.write(target.tree, tree_files, ctx.lock_dir)
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
