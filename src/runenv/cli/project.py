"""The commands about the project's variants and what was built from them: config, list, new,
import, clean, check, requirements, catalogue."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import tomli_w

from runenv._cache import Cache
from runenv.cli import arguments, output
from runenv.commands import requirements
from runenv.commands.catalogue import build_catalogue
from runenv.commands.check import check_built
from runenv.commands.clean import clean_cache, clean_outputs
from runenv.commands.import_reference import import_reference
from runenv.commands.new import new_variant
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.config.project import VERSIONS_DIR, find_project, list_variants
from runenv.errors import UsageError
from runenv.pipeline.context import INDEX_ENV
from runenv.platforms import Platform, parse_platforms


def cmd_config(args: argparse.Namespace) -> int:
    """Show a variant's merged config, or its plan for one platform."""
    vc = load_variant(arguments.project(args), args.variant)
    if args.platform:
        plan = make_plan(vc, Platform.parse(args.platform))
        data = plan.to_json()
        if args.json:
            output.emit(data)
            return 0
        print(f"{plan.variant} on {plan.platform.value}: Python {plan.python_version}")
        print(f"  interpreter:   {data['interpreter']}")
        print(f"  site-packages: {data['site_packages']}")
        print("  requirements:")
        for req in plan.requirements:
            print(f"    {req}")
        for name, why in plan.force_source.items():
            print(f"  from source:   {name} ({why})")
        for line in plan.overrides:
            print(f"  override:      {line}")
        for name in sorted(plan.no_deps):
            print(f"  no deps:       {name}")
        for name, recipe in plan.build_wheel.items():
            extras = [*recipe.build_requires, *(f"{k}={v}" for k, v in recipe.config_settings)]
            print(f"  build wheel:   {name}" + (f" ({', '.join(extras)})" if extras else ""))
        if plan.policy is not None:
            policy = " ".join(f"{k}={v}" for k, v in plan.policy.to_json().items() if v)
            print(f"  resolution:    {policy or 'no source builds; missing wheels skipped'}")
        for name, why in plan.skipped.items():
            print(f"  skipped:       {name} ({why})")
        for step in data["copy_files"]:
            print(f"  copy:          {step['from']} -> {step['to']}")
        return 0
    merged = vc.config.model_dump(by_alias=True, mode="json", exclude_none=True)
    merged["python"]["version"] = vc.python_version
    merged["platforms"] = [p.value for p in vc.platforms]
    if args.json:
        output.emit(merged)
    else:
        print(tomli_w.dumps(merged), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the variants with their Python versions and platforms."""
    project = arguments.project(args)
    rows = []
    for variant in list_variants(project):
        vc = load_variant(project, variant)
        rows.append(
            {
                "variant": variant,
                "python_version": vc.python_version,
                "platforms": [p.value for p in vc.platforms],
            }
        )
    if args.json:
        output.emit(rows)
        return 0
    if not rows:
        print(f"no variants under {project / VERSIONS_DIR}: create one with `runenv new`")
    for row in rows:
        print(
            f"{row['variant']:<24} Python {row['python_version']:<9} {' '.join(row['platforms'])}"
        )
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Scaffold versions/VARIANT/config.toml."""
    path = new_variant(arguments.project(args), args.variant, args.from_variant)
    print(f"created {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a checkout of the reference system (shared-config.json, python-*/ folders)."""
    if args.project:
        project = Path(args.project).resolve()
    else:
        try:
            project = find_project()
        except UsageError:
            project = Path.cwd().resolve()  # a new project: versions/ is created here
    result = import_reference(Path(args.path), project, force=args.force)
    for path in result.replaced:
        print(f"replaced {path}")
    if result.shared is not None:
        print(f"shared-config.json -> {result.shared}")
    for item in result.variants:
        payload = (
            f" + copyFiles {', '.join(item.copied)} ({item.files} files)" if item.copied else ""
        )
        print(f"{item.source.name}/config.json -> {item.target / 'config.json'}{payload}")
    names = " ".join(item.variant for item in result.variants)
    print(f"imported {len(result.variants)} variant(s): {names}")
    print("next: runenv lock VARIANT --platform all (each variant's locks), then runenv build")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove build outputs (dist/, pydist/), and with --cache the download cache too."""
    project = arguments.project(args)
    options = arguments.build_options(args, project)
    removed = clean_outputs(options.dist, options.pydist, project, args.variant)
    if args.cache and (root := clean_cache(Cache.default().root, project)) is not None:
        removed.append(root)
    for path in removed:
        print(f"removed {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Re-run the audit and (on the host) the import check on built runtimes."""
    options = arguments.build_options(args, arguments.project(args))
    for vc, plat in arguments.targets(args):
        result = check_built(vc, plat, options)
        print(f"ok: {result}")
    return 0


def cmd_requirements(args: argparse.Namespace) -> int:
    """Offline: whether a block's requirements.txt installs from each platform's packages/."""
    vc = load_variant(arguments.project(args), args.variant)
    platforms = parse_platforms(args.platform or ["all"], vc.platforms)
    index = os.environ.get(INDEX_ENV)  # what the locks were made from, to tell a stale one
    report = requirements.check(vc, Path(args.requirements), platforms, default_index=index)
    if args.json:
        output.emit(report.to_json())
    else:
        for platform in report.platforms:
            print(platform.line())
    return 0 if report.ok else 1


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Build the catalogue wheel that indexes every archive in dist/."""
    project = arguments.project(args)
    dist = Path(args.dist).resolve() if args.dist else project / "dist"
    base_url = args.base_url or dist.as_uri()
    wheel = build_catalogue(dist, base_url, version=args.version, project=project)
    print(f"built {wheel}")
    return 0
