"""`runenv check`: the checks of a build, run again on a finished runtime tree, once the tree
is found to hold exactly what its build listed (`listing.verify`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from runenv.artifact.manifest import read_manifest
from runenv.checks import audit
from runenv.checks.consumer import check_wheelhouse
from runenv.checks.imports import import_check
from runenv.config.load import VariantConfig
from runenv.config.plan import make_plan
from runenv.config.schema import Layout
from runenv.errors import UsageError
from runenv.install.modules import importable
from runenv.pipeline.context import BuildOptions, Target, lock_dir
from runenv.platforms import Platform, host_platform
from runenv.tree import listing


def check_built(vc: VariantConfig, platform: Platform, options: BuildOptions) -> Path:
    """Re-run the checks on a finished build (`runenv check`); return the tree checked."""
    plan = make_plan(vc, platform)
    target = Target.of(plan, options)
    manifest = read_manifest(target.manifest)
    if manifest is None or not target.tree.is_dir():
        raise UsageError(
            f"{plan.variant} {platform.value} is not built: run `runenv build {plan.variant} "
            f"--platform {platform.value}`"
        )
    # The tree must be what its build listed before anything of it runs (an added .pth would
    # run at the interpreter's start-up) or is audited.
    listing.verify(target.tree, manifest, lock_dir(options, plan))
    audit.audit_tree(target.tree, plan)
    # As the build: a wheelhouse's copied site-packages modules are not imported (`build`).
    copied = manifest.get("copied_files", []) if plan.layout is Layout.INSTALLED else []
    if platform == host_platform():
        # Check a hard-linked copy at another path: relocation is checked, the tree untouched.
        with tempfile.TemporaryDirectory(prefix=".tmp-check.", dir=target.tree.parent) as tmp:
            moved = Path(tmp) / "runtime"
            shutil.copytree(target.tree, moved, symlinks=True, copy_function=os.link)
            import_check(
                moved,
                moved / plan.interpreter,
                importable(moved, plan.site_packages.as_posix(), copied),
                plan.allow_import_failures,
                timeout=float(plan.timeout),
                bytecode=(manifest.get("bytecode") or {}).get("compiled") is True,
                test_suites=(manifest.get("bytecode") or {}).get("test_suites") != "source",
            )
        if plan.layout is Layout.WHEELHOUSE:  # as its consumer uses it (`consumer`)
            check_wheelhouse(
                target.tree,
                bin_dir=plan.bin_dir,
                site_packages=plan.site_packages,
                runtime_env=plan.runtime_env,
                packages=[(str(p["name"]), str(p["version"])) for p in manifest["packages"]],
                modules=(manifest.get("check") or {}).get("block_modules", []),
                allowed=plan.allow_import_failures,
                windows=platform.info.is_windows,
                timeout=float(plan.timeout),
            )
    return target.tree
