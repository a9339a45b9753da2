"""The build hash that names a build, and the manifest written beside each archive."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runenv import __version__
from runenv.plan import CopyStep, Plan

SCHEMA_VERSION = 1
# Bump when a change to runenv changes what a build produces from the same inputs.
BUILD_FORMAT = 1


@dataclass(frozen=True)
class PackageRecord:
    """One installed distribution, as the manifest lists it."""

    name: str
    version: str
    wheel: str
    sha256: str
    from_source: bool
    top_level: tuple[str, ...] = ()


def _hash_copies(digest: Any, steps: Iterable[CopyStep]) -> None:
    for step in steps:
        digest.update(f"copy {step.dest.as_posix()}\0".encode())
        sources = sorted(step.source.rglob("*")) if step.source.is_dir() else [step.source]
        for src in sources:
            if src.is_dir():
                continue
            rel = src.relative_to(step.source).as_posix() if step.source.is_dir() else src.name
            executable = os.access(src, os.X_OK)
            digest.update(f"{rel}\0{int(executable)}\0".encode())
            digest.update(hashlib.sha256(src.read_bytes()).digest())


def build_hash(plan: Plan, python_sha256: str, lock_bytes: bytes) -> str:
    """sha256 over everything that decides a build's output (DESIGN.md, "The build")."""
    digest = hashlib.sha256()
    settings = plan.to_json()
    settings.pop("copy_files")  # hashed by content below, not by absolute source path
    header = {
        "format": BUILD_FORMAT,
        "runenv": __version__,
        "python_sha256": python_sha256,
        "plan": settings,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(hashlib.sha256(lock_bytes).digest())
    _hash_copies(digest, plan.copy_files)
    return digest.hexdigest()


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
    checked: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest of one archive (DESIGN.md, "Artifacts")."""
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
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "wheel": p.wheel,
                "sha256": p.sha256,
                "from_source": p.from_source,
            }
            for p in sorted(packages, key=lambda p: p.name.lower())
        ],
        "skipped": [{"name": n, "reason": r} for n, r in sorted(plan.skipped.items())],
        "copied_files": list(copied),
        # What the import check imports (every top-level name in site-packages) and may see
        # fail: recorded so a cross-built archive gets the same check on its native runner
        # (`python -m runenv_catalogue check MANIFEST`, the workflow's verify job).
        "check": {
            "modules": sorted(set(checked)),
            "allowed_failures": dict(sorted(plan.allow_import_failures.items())),
        },
    }


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest, or None when it is missing or unreadable (then the build is not finished)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
