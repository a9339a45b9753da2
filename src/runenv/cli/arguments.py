"""What the parsed arguments name: the project, the (variant, platform) targets, BuildOptions."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runenv.artifact.parts import DEFAULT_PART_SIZE, part_size_from
from runenv.cli import output
from runenv.config.load import VariantConfig, load_variant
from runenv.config.plan import make_plan
from runenv.config.project import find_project, variant_of
from runenv.errors import UsageError
from runenv.pipeline.context import INDEX_ENV, BuildOptions
from runenv.platforms import Platform, parse_platforms
from runenv.tree.sign import sign_command_from


def project(args: argparse.Namespace) -> Path:
    """The project root: `--project`, else the nearest folder up with versions/."""
    return find_project(Path(args.project) if args.project else None)


def targets(args: argparse.Namespace) -> list[tuple[VariantConfig, Platform]]:
    """(variant, platform) pairs from the variants and `--platform` values given."""
    root = project(args)
    pairs = []
    for variant in args.variants or [variant_here(root)]:
        vc = load_variant(root, variant)
        for plat in parse_platforms(args.platform, vc.platforms):
            make_plan(vc, plat)  # refuses a platform the variant is not built for
            pairs.append((vc, plat))
    return pairs


def variant_here(project: Path) -> str:
    """The variant whose folder the command runs in: `runenv build` naming nothing (a
    reference variant's `package.json` build script)."""
    variant = variant_of(project, Path.cwd())
    if variant is None:
        raise UsageError(
            "name a variant (runenv build VARIANT), or run runenv build inside a variant's folder"
        )
    return variant


def build_options(args: argparse.Namespace, project: Path) -> BuildOptions:
    """The options of a build (or lock, check, clean) from the command's arguments."""
    return BuildOptions(
        dist=Path(args.out).resolve() if getattr(args, "out", None) else project / "dist",
        pydist=project / "pydist",
        locked=getattr(args, "locked", False),
        offline=getattr(args, "offline", False),
        python_mirror=getattr(args, "python_mirror", None),
        default_index=getattr(args, "index_url", None) or os.environ.get(INDEX_ENV),
        progress=output.progress(args),
        report=output.say(args),
        # Only `build` signs and cuts parts: other commands ignore the environment's settings.
        sign_command=sign_command_from(args.sign_command) if "sign_command" in args else None,
        part_size=part_size_from(args.part_size) if "part_size" in args else DEFAULT_PART_SIZE,
        built_wheels=tuple(Path(d).resolve() for d in getattr(args, "built_wheels", None) or ()),
    )
