"""Checking: the assembled tree as it will ship, before it is packed: its binaries and wheel tags
audited, natively every top-level module imported, a wheelhouse installed and imported as its
consumer does (`check`), with the modules a wheelhouse's block imports (`block_importable`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runenv.checks import audit, consumer
from runenv.checks.imports import import_check
from runenv.config.schema import Layout
from runenv.install.modules import top_level
from runenv.install.wheels import InstalledDist
from runenv.pipeline.context import BuildContext


def block_importable(
    ctx: BuildContext, installed: Sequence[InstalledDist], copied: Sequence[str]
) -> list[str]:
    """What a block imports from a wheelhouse runtime: every wheel's top-level names, and the
    modules copyFiles put in the runtime's site-packages, which the blocks that use them
    append to their path (`consumer.check_wheelhouse`)."""
    site = f"{ctx.plan.site_packages.as_posix()}/"
    copied_modules = top_level(p[len(site) :] for p in copied if p.startswith(site))
    return sorted({m for d in installed for m in d.top_level} | set(copied_modules))


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
