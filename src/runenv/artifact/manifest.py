"""The build hash that names a build, and the manifest written beside each archive."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runenv import __version__, _bounded
from runenv.config.plan import CopyStep, Plan
from runenv.install.modules import checked_and_skipped

SCHEMA_VERSION = 1
# Bump when a change to runenv changes what a build produces from the same inputs.
# 2: the manifest lists each package's top-level names; the import check imports them all.
# 3: bytecode in the archive (bytecode.py).
# 4: the manifest records the import check (`check`), which a cross build's verify job runs.
# 5: packages' test suites ship as source unless `[build] compileTestBytecode = true`.
# 6: images are keyed by that choice (format 5 could take an older image, suites compiled).
# 7: the archive carries wheels' deflate streams; bytecode batches of at least 4 per tree.
# 8: bytecode workers import nothing (marshal's back-references follow what a process loaded).
# 9: test suites by one rule (`modules.is_test_suite`): top-level `tests` packages, `_tests`
#    and modules named so are left as source and not import-checked (`check.skipped`).
# 10: the manifest records the sha256 of the tree's listing (`tree_listing`), which `runenv
#    check` and a no-op build compare the tree with; a runtime's layout (`layout`).
#    Every gzip member of the archive says its length and inflated size (pack.MEMBER_FIELD).
# 11: a wheelhouse's copyFiles site-packages stay there only (no <binDir>/python_stdlib copies).
# 12: a wheel's file over 32 MiB is compressed in blocks, not carried (wheel_streams.MAX_SIZE).
BUILD_FORMAT = 12


@dataclass(frozen=True)
class PackageRecord:
    """One installed distribution, as the manifest lists it."""

    name: str
    version: str
    wheel: str
    sha256: str
    from_source: bool
    top_level: tuple[str, ...] = ()  # importable names it installed (`runenv.install.modules`)


PLAN_FIELDS_NOT_HASHED: dict[str, str] = {
    "requirements": "resolved into the lock, whose bytes are hashed (its inputs-hash holds them)",
    "overrides": "resolved into the lock, whose bytes are hashed (its inputs-hash holds them)",
    "no_deps": "resolved into the lock, whose bytes are hashed (its inputs-hash holds them)",
    "git": "resolved into the lock (to full commits), whose bytes are hashed",
    "timeout": "bounds how long a command may run, never what it produces",
    "parallel_downloads": "decides how the files are fetched, not which (each is sha256-checked)",
    "enable_logging": "the log lies beside the archive, in neither the archive nor the manifest",
    "root": "where the tree is written (a reference checkout's root), never what it holds",
}
"""Every `Plan` field that `BuildInputs` leaves out, with why it cannot change the output.

Every other `Plan` field is a field of `BuildInputs` by the same name (a test holds the two
lists to that), so a field added to the plan must be hashed or explained here.
"""


@dataclass(frozen=True)
class CopiedFile:
    """One file a copy step ships, by content: the step's destination, the file's path under
    the step's source (its name, for a file source), its exec bit and its sha256."""

    to: str
    path: str
    executable: bool
    sha256: str


@dataclass(frozen=True)
class BuildInputs:
    """Everything that decides what a build produces; `digest()` is the build hash.

    A build whose hash matches the finished build on disk does nothing, so a field missing here
    gives a false "up to date", and a field that cannot change the output rebuilds for nothing.
    """

    variant: str  # named in the manifest and the archive's file name
    platform: str  # decides the layout, the wheels and the check
    python_version: str  # decides the layout (lib/pythonX.Y) and the manifest
    python_sha256: str  # the interpreter's archive (its URL does not matter, its bytes do)
    lock_sha256: str  # the lock: every file installed, with its hash
    skipped: dict[str, str]  # listed with their reasons in the manifest
    force_source: tuple[str, ...]  # built from their sdist instead of a wheel
    copy_files: tuple[CopiedFile, ...]  # by content, not by where the sources are
    registries: tuple[str, ...]  # where a source build's build requirements come from
    runtime_env: dict[str, str]  # published in the manifest
    allow_import_failures: dict[str, str]  # the check the build passed
    glibc: tuple[int, int]  # which wheels fit, and the audit's floor
    macos: tuple[int, int] | None  # which wheels fit, the audit's floor, source builds' target
    source_date_epoch: int  # every archive entry's mtime
    compile_bytecode: bool  # .pyc files in the archive, or none
    compile_test_bytecode: bool  # .pyc files for packages' test suites too
    # `packages.resolution`: which packages without a wheel are built, skipped or fail the build
    policy: dict[str, Any] | None = None
    # `packages.buildWheel`: the build requirements and PEP 517 settings of source builds
    build_wheel: dict[str, Any] = field(default_factory=dict)
    layout: str = "installed"  # what the tree holds: packages installed, or their wheels
    bin_dir: str = "bin"  # where a wheelhouse runtime's `python` is

    @classmethod
    def of(cls, plan: Plan, python_sha256: str, lock_bytes: bytes, mtime: int) -> BuildInputs:
        return cls(
            variant=plan.variant,
            platform=plan.platform.value,
            python_version=plan.python_version,
            python_sha256=python_sha256,
            lock_sha256=hashlib.sha256(lock_bytes).hexdigest(),
            skipped=dict(plan.skipped),
            force_source=tuple(sorted(plan.force_source)),  # the reasons are not shipped
            copy_files=tuple(_copied_files(plan.copy_files)),
            registries=plan.registries,
            runtime_env=dict(plan.runtime_env),
            allow_import_failures=dict(plan.allow_import_failures),
            glibc=plan.glibc,
            macos=plan.macos,
            source_date_epoch=mtime,
            compile_bytecode=plan.compile_bytecode,
            compile_test_bytecode=plan.compile_test_bytecode,
            policy=plan.policy.to_json() if plan.policy else None,
            build_wheel={
                name: {k: v for k, v in recipe.to_json().items() if k != "reason"}
                for name, recipe in sorted(plan.build_wheel.items())
            },
            layout=plan.layout.value,
            bin_dir=plan.bin_dir.as_posix(),
        )

    def digest(self) -> str:
        """sha256 of a canonical JSON of the inputs, runenv's version and the build format."""
        inputs = dataclasses.asdict(self)
        unused_values: tuple[tuple[str, Any], ...] = (
            ("policy", None),
            ("build_wheel", {}),
            ("layout", "installed"),
            ("bin_dir", "bin"),
        )
        for key, unused in unused_values:  # old hashes stay valid
            if inputs[key] == unused:
                del inputs[key]
        doc = {"format": BUILD_FORMAT, "runenv": __version__, "inputs": inputs}
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _copied_files(steps: Iterable[CopyStep]) -> Iterator[CopiedFile]:
    """Each file the steps copy, in copy order: a later step may overwrite an earlier one."""
    for step in steps:
        if step.source.is_dir():
            sources = [p for p in sorted(step.source.rglob("*")) if not p.is_dir()]
            pairs = [(src, src.relative_to(step.source).as_posix()) for src in sources]
        else:
            pairs = [(step.source, step.source.name)]
        for src, rel in pairs:
            yield CopiedFile(
                to=step.dest.as_posix(),
                path=rel,
                executable=os.access(src, os.X_OK),
                sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
            )


def make_manifest(
    plan: Plan,
    *,
    archive: Path,
    sha256: str,
    size: int,
    build_hash: str,
    python_url: str,
    python_sha256: str,
    packages: Sequence[PackageRecord],
    copied: Sequence[str],
    bytecode: Mapping[str, Any] | None = None,
    checked: Sequence[str] = (),
    block_checked: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest of one archive (docs/architecture.md, "The artifact")."""
    layout: dict[str, Any] = {"layout": plan.layout.value}
    if plan.layout.value == "wheelhouse":
        # The consumer's `<root>/<bin_dir>/python` and `--find-links <root>/<wheelhouse>/`;
        # `packages` lists the wheelhouse's files (`wheel`, `sha256`).
        layout.update(bin_dir=plan.bin_dir.as_posix(), wheelhouse="packages")
    imported, skipped = checked_and_skipped(checked)
    block_imported, block_skipped = checked_and_skipped(block_checked)
    return {
        "schema_version": SCHEMA_VERSION,
        "variant": plan.variant,
        "python_version": plan.python_version,
        "platform": plan.platform.value,
        "archive": archive.name,
        "sha256": sha256,
        "size": size,
        "build_hash": build_hash,
        "builder": f"runenv {__version__}",
        "interpreter": plan.interpreter.as_posix(),
        "site_packages": plan.site_packages.as_posix(),
        "python_archive": {"url": python_url, "sha256": python_sha256},
        "runtime_env": dict(plan.runtime_env),
        **layout,
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "wheel": p.wheel,
                "sha256": p.sha256,
                "from_source": p.from_source,
                "top_level": list(p.top_level),
            }
            for p in sorted(packages, key=lambda p: p.name.lower())
        ],
        "skipped": [{"name": n, "reason": r} for n, r in sorted(plan.skipped.items())],
        "copied_files": list(copied),
        "bytecode": dict(bytecode) if bytecode is not None else {"compiled": False},
        # What the import check imports (`modules.importable`) and may see fail: recorded so a
        # cross-built archive gets the same check on its native runner
        # (`python -m runenv_catalogue check MANIFEST`, the workflow's verify job).
        # Test suites and stray folders (`modules.skip_reason`) are not imported: `skipped`
        # names them and why.
        "check": {
            "modules": imported,
            # a wheelhouse's: imported in a block venv made as its consumer makes one
            **({"block_modules": block_imported} if block_checked else {}),
            "skipped": [
                {"module": n, "reason": r} for n, r in sorted({**skipped, **block_skipped}.items())
            ],
            "allowed_failures": dict(sorted(plan.allow_import_failures.items())),
        },
    }


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest, or None when it is missing or unreadable (then the build is not finished)."""
    try:
        data = _bounded.loads_json(_bounded.read_text(path))
    except (OSError, ValueError):  # InputError and JSONDecodeError are ValueErrors
        return None
    return data if isinstance(data, dict) else None
