"""`runenv` / `python -m runenv`: the only module that prints.

Exit codes: 0 success, 1 a failed build (or fetch, lock, check), 2 bad usage or configuration.
Errors are one line on stderr; `-v` adds the traceback and debug logging.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from runenv import __version__, _bounded
from runenv._cache import Cache
from runenv.artifact.manifest import read_manifest
from runenv.artifact.parts import DEFAULT_PART_SIZE, PART_SIZE_ENV, part_size_from
from runenv.ci.matrix import parse_cached_keys
from runenv.ci.render import matrix_json, matrix_table
from runenv.ci.wheel_job import build_source_wheels
from runenv.commands.catalogue import build_catalogue
from runenv.commands.check import check_built
from runenv.commands.clean import clean_cache, clean_outputs
from runenv.commands.import_reference import import_reference
from runenv.commands.new import new_variant
from runenv.commands.requirements import check as check_requirements
from runenv.config.load import VariantConfig, load_variant
from runenv.config.plan import make_plan
from runenv.config.project import VERSIONS_DIR, find_project, list_variants, variant_of
from runenv.errors import RunenvError, UsageError, describe_os_error
from runenv.fetch import python as python_fetch
from runenv.fetch.download import new_client
from runenv.fetch.python import MIRROR_ENV, choose_mirror, pinned_archive
from runenv.pipeline.build import build_many
from runenv.pipeline.context import INDEX_ENV, BuildOptions
from runenv.pipeline.locking import ensure_lock
from runenv.platforms import Platform, host_platform, parse_platforms
from runenv.sources import built_wheels
from runenv.tree.sign import SIGN_ENV, sign_command_from

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as a UsageError (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def _project(args: argparse.Namespace) -> Path:
    return find_project(Path(args.project) if args.project else None)


# --- commands ----------------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    """Show a variant's merged config, or its plan for one platform."""
    vc = load_variant(_project(args), args.variant)
    if args.platform:
        plan = make_plan(vc, Platform.parse(args.platform))
        data = plan.to_json()
        if args.json:
            _emit(data)
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
        _emit(merged)
    else:
        print(tomli_w.dumps(merged), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the variants with their Python versions and platforms."""
    project = _project(args)
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
        _emit(rows)
        return 0
    if not rows:
        print(f"no variants under {project / VERSIONS_DIR}: create one with `runenv new`")
    for row in rows:
        print(
            f"{row['variant']:<24} Python {row['python_version']:<9} {' '.join(row['platforms'])}"
        )
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    """The CI plan: cross builds on Linux, native builds, native verification, their cost."""
    project = _project(args)
    cached = _cached_wheels(args.cached_wheels)
    if args.json:
        print(matrix_json(project, cached or frozenset()))
        return 0
    for line in matrix_table(project, cached):
        print(line)
    return 0


def _cached_wheels(source: str | None) -> frozenset[str] | None:
    """The wheels keys `--cached-wheels` lists (a file, or `-`: stdin); None without it."""
    if source is None:
        return None
    where = "--cached-wheels (stdin)" if source == "-" else source
    try:
        if source == "-":
            text = _bounded.read_stream_text(sys.stdin)
        else:
            text = _bounded.read_text(Path(source))
    except (OSError, UnicodeDecodeError, _bounded.InputError) as exc:
        why = (
            (exc.strerror or str(exc))
            if isinstance(exc, OSError)
            else "not UTF-8 text"
            if isinstance(exc, UnicodeDecodeError)
            else str(exc)
        )
        raise UsageError(
            f"{where}: cannot read the cached wheels keys ({why}): pass a file listing them, "
            "one a line (`-` reads stdin)"
        ) from None
    return parse_cached_keys(text, where)


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Build the catalogue wheel that indexes every archive in dist/."""
    project = _project(args)
    dist = Path(args.dist).resolve() if args.dist else project / "dist"
    base_url = args.base_url or dist.as_uri()
    wheel = build_catalogue(dist, base_url, version=args.version, project=project)
    print(f"built {wheel}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Scaffold versions/VARIANT/config.toml."""
    path = new_variant(_project(args), args.variant, args.from_variant)
    print(f"created {path}")
    return 0


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not args.quiet or message.startswith("warning:"):  # warnings always show
            print(message, file=sys.stderr, flush=True)

    return say


def _targets(args: argparse.Namespace) -> list[tuple[VariantConfig, Platform]]:
    """(variant, platform) pairs from the variants and `--platform` values given."""
    project = _project(args)
    pairs = []
    for variant in args.variants or [_variant_here(project)]:
        vc = load_variant(project, variant)
        for plat in parse_platforms(args.platform, vc.platforms):
            make_plan(vc, plat)  # refuses a platform the variant is not built for
            pairs.append((vc, plat))
    return pairs


def _variant_here(project: Path) -> str:
    """The variant whose folder the command runs in: `runenv build` naming nothing (a
    reference variant's `package.json` build script)."""
    variant = variant_of(project, Path.cwd())
    if variant is None:
        raise UsageError(
            "name a variant (runenv build VARIANT), or run runenv build inside a variant's folder"
        )
    return variant


def _build_options(args: argparse.Namespace, project: Path) -> BuildOptions:
    return BuildOptions(
        dist=Path(args.out).resolve() if getattr(args, "out", None) else project / "dist",
        pydist=project / "pydist",
        locked=getattr(args, "locked", False),
        offline=getattr(args, "offline", False),
        python_mirror=getattr(args, "python_mirror", None),
        default_index=getattr(args, "index_url", None) or os.environ.get(INDEX_ENV),
        progress=_progress(args),
        report=_say(args),
        # Only `build` signs and cuts parts: other commands ignore the environment's settings.
        sign_command=sign_command_from(args.sign_command) if "sign_command" in args else None,
        part_size=part_size_from(args.part_size) if "part_size" in args else DEFAULT_PART_SIZE,
        built_wheels=tuple(Path(d).resolve() for d in getattr(args, "built_wheels", None) or ()),
    )


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def cmd_build(args: argparse.Namespace) -> int:
    """Build runtimes: lock, fetch, install, copy files, check, pack."""
    targets = _targets(args)
    options = _build_options(args, _project(args))
    wanted = [(vc.variant, plat.value) for vc, plat in targets]
    if (unclaimed := built_wheels.unclaimed(options.built_wheels, wanted)) is not None:
        raise unclaimed
    with contextlib.ExitStack() as stack:
        cache = stack.enter_context(Cache.ephemeral()) if args.refresh else Cache.default()
        client = stack.enter_context(new_client())
        results, failures = build_many(targets, options, cache, client=client, force=args.refresh)
    rows = []
    for res in results:
        data = read_manifest(res.manifest) or {}
        state = "up to date" if res.up_to_date else "built"
        rows.append(
            {
                "state": state,
                "archive": str(res.archive),
                "manifest": str(res.manifest),
                "tree": str(res.tree),
                "sha256": data.get("sha256"),
                "size": data.get("size"),
                "seconds": round(res.seconds, 2),
            }
        )
        if not args.json:
            print(f"{state}: {res.archive} ({_size(int(data.get('size', 0)))}, {res.seconds:.1f}s)")
    for (vc, plat), exc in failures:
        print(f"runenv: error: {vc.variant} {plat.value}: {exc}", file=sys.stderr)
    if args.json:
        _emit(rows)
    if failures:
        return max(exc.exit_code for _, exc in failures)
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    """Build only the wheels a target builds from source, on its native runner (CI's wheels job)."""
    project = _project(args)
    vc = load_variant(project, args.variant)
    plat = Platform.parse(args.platform) if args.platform else host_platform()
    make_plan(vc, plat)  # refuses a platform the variant is not built for
    options = _build_options(args, project)
    out = Path(args.out).resolve()
    with new_client() as client:
        index = build_source_wheels(vc, plat, options, Cache.default(), out, client=client)
    if args.json:
        _emit(index.to_json())
        return 0
    for e in index.wheels:
        print(f"built: {out / e.wheel} ({e.package} {e.version}, {_size(e.size)})")
    print(
        f"{len(index.wheels)} wheels for {vc.variant} {plat.value}: {out / built_wheels.INDEX_NAME}"
    )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Resolve each platform's dependencies into versions/VARIANT/pylock.PLATFORM.toml."""
    project = _project(args)
    options = _build_options(args, project)
    cache = Cache.default()
    for vc, plat in _targets(args):
        plan = make_plan(vc, plat)
        path, relocked = ensure_lock(vc, plan, options, cache, force=args.force)
        print(f"{'locked' if relocked else 'up to date'}: {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Re-run the audit and (on the host) the import check on built runtimes."""
    options = _build_options(args, _project(args))
    for vc, plat in _targets(args):
        result = check_built(vc, plat, options)
        print(f"ok: {result}")
    return 0


def cmd_requirements(args: argparse.Namespace) -> int:
    """Offline: whether a block's requirements.txt installs from each platform's packages/."""
    vc = load_variant(_project(args), args.variant)
    platforms = parse_platforms(args.platform or ["all"], vc.platforms)
    index = os.environ.get(INDEX_ENV)  # what the locks were made from, to tell a stale one
    report = check_requirements(vc, Path(args.requirements), platforms, default_index=index)
    if args.json:
        _emit(report.to_json())
    else:
        for platform in report.platforms:
            print(platform.line())
    return 0 if report.ok else 1


def cmd_fetch_python(args: argparse.Namespace) -> int:
    """Download, verify and unpack python-build-standalone runtimes."""
    target = args.target
    try:
        project: Path | None = _project(args)
    except UsageError:
        project = None
    if project is not None and target in list_variants(project):
        vc = load_variant(project, target)
        version, allowed, mirror = vc.python_version, vc.platforms, vc.config.python.mirror
        pins = {p: pin for p in allowed if (pin := pinned_archive(vc, p)) is not None}
        timeout = float(vc.config.build.timeout)
    else:
        version, allowed, mirror, pins, timeout = target, tuple(Platform), None, {}, 300.0
    mirror = choose_mirror(args.python_mirror, mirror)
    platforms = parse_platforms(args.platform, allowed)
    dest = Path(args.dest) if args.dest else Path.cwd() / "pydist" / f"python-{version}"
    cache = Cache.default()
    done = python_fetch.fetch_many(
        version,
        {p: dest / p.value for p in platforms},
        cache=cache,
        mirror=mirror,
        pinned=pins,
        offline=args.offline,
        progress=_progress(args),
        timeout=timeout,
    )
    for plat, path in done.items():
        print(f"{plat.value}: {path}")
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
    project = _project(args)
    options = _build_options(args, project)
    removed = clean_outputs(options.dist, options.pydist, project, args.variant)
    if args.cache and (root := clean_cache(Cache.default().root, project)) is not None:
        removed.append(root)
    for path in removed:
        print(f"removed {path}")
    return 0


# --- the parser --------------------------------------------------------------------------


def _platform_arg(p: argparse.ArgumentParser, *, multi: bool) -> None:
    keys = ", ".join(x.value for x in Platform)
    if multi:
        p.add_argument(
            "--platform",
            action="append",
            metavar="KEY",
            help=f"{keys}, host or all (repeatable; default: host)",
        )
    else:
        p.add_argument("--platform", metavar="KEY", help=f"{keys} or host")


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python-mirror", metavar="URL", help=f"PBS mirror (env {MIRROR_ENV})")
    p.add_argument("--index-url", metavar="URL", help=f"default package index (env {INDEX_ENV})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runenv",
        description="Build portable, relocatable Python runtimes for many platforms.",
    )
    parser.add_argument("--version", action="version", version=f"runenv {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--project", metavar="DIR", help="project root (default: nearest with versions/)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, handler: Handler) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=doc)
        p.set_defaults(handler=handler)
        return p

    p = command("config", cmd_config)
    p.add_argument("variant")
    _platform_arg(p, multi=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("list", cmd_list)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("build", cmd_build)
    p.add_argument(
        "variants", nargs="*", metavar="VARIANT", help="default: the variant folder you are in"
    )
    _platform_arg(p, multi=True)
    p.add_argument("--locked", action="store_true", help="fail if a lock is out of date")
    p.add_argument("--refresh", action="store_true", help="build from scratch in throwaway caches")
    p.add_argument("--offline", action="store_true", help="use the caches only")
    p.add_argument("--out", metavar="DIR", help="where archives and manifests go (default: dist/)")
    p.add_argument(
        "--part-size",
        metavar="BYTES",
        help=f"cut archives above this into parts (env {PART_SIZE_ENV}; default 2000000000)",
    )
    p.add_argument(
        "--sign-command",
        metavar="CMD",
        help=f"run CMD LISTFILE over the tree's binaries before the pack (env {SIGN_ENV})",
    )
    p.add_argument(
        "--built-wheels",
        action="append",
        metavar="DIR",
        help="wheels `runenv wheels` built on a native runner, verified and used (repeatable)",
    )
    _source_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("wheels", cmd_wheels)
    p.add_argument("variant", metavar="VARIANT")
    _platform_arg(p, multi=False)
    p.add_argument("--out", metavar="DIR", required=True, help="where the wheels and index go")
    p.add_argument("--offline", action="store_true", help="use the caches only")
    _source_args(p)
    p.add_argument("--json", action="store_true", help="print the index")

    p = command("lock", cmd_lock)
    p.add_argument("variants", nargs="+", metavar="VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--force", action="store_true", help="re-lock even when up to date")
    p.add_argument("--index-url", metavar="URL", help=f"default package index (env {INDEX_ENV})")

    p = command("check", cmd_check)
    p.add_argument("variants", nargs="+", metavar="VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--out", metavar="DIR", help="where the manifests are (default: dist/)")

    p = command("requirements", cmd_requirements)
    p.add_argument("variant", metavar="VARIANT")
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirements",
        metavar="FILE",
        required=True,
        help="a block's requirements.txt",
    )
    p.add_argument(
        "--platform",
        action="append",
        metavar="KEY",
        help="a platform key, host or all (repeatable; default: all)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("fetch-python", cmd_fetch_python)
    p.add_argument("target", metavar="VERSION|VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--dest", metavar="DIR", help="unpack under DIR/<platform>")
    p.add_argument("--python-mirror", metavar="URL", help=f"PBS mirror (env {MIRROR_ENV})")
    p.add_argument("--offline", action="store_true", help="use the cache only")

    p = command("clean", cmd_clean)
    p.add_argument("variant", nargs="?", help="only this variant's outputs")
    p.add_argument("--cache", action="store_true", help="also remove the download cache")

    p = command("matrix", cmd_matrix)
    p.add_argument(
        "--json",
        action="store_true",
        help="wheels, build and verify strategy.matrix JSON and the estimate, one line",
    )
    p.add_argument(
        "--cached-wheels",
        metavar="FILE",
        help="wheels keys CI's cache holds, one a line (`-`: stdin): their wheels jobs are "
        "left out and the estimate counts them cached",
    )

    p = command("catalogue", cmd_catalogue)
    p.add_argument("--base-url", metavar="URL", help="where the archives will be (default: dist/)")
    p.add_argument("--version", metavar="V", help="catalogue package version (default: derived)")
    p.add_argument("--dist", metavar="DIR", help="where the manifests are (default: dist/)")

    p = command("import", cmd_import)
    p.add_argument("path", metavar="PATH", help="a checkout of the reference system")
    p.add_argument("--force", action="store_true", help="replace variants that exist already")

    p = command("new", cmd_new)
    p.add_argument("variant", help="folder name, e.g. 3.13.0-custom")
    p.add_argument("--from", dest="from_variant", metavar="VARIANT", help="extend this variant")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args_list or "--verbose" in args_list
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        # Library modules warn through logging (an evicted cache entry, a package left out):
        # one line each, like the CLI's errors; -v adds the module that said it.
        format="%(levelname)s %(name)s: %(message)s" if verbose else "runenv: warning: %(message)s",
    )
    try:
        args = build_parser().parse_args(args_list)
        handler: Handler = args.handler
        return handler(args)
    except RunenvError as exc:
        if verbose:
            traceback.print_exc()
        print(f"runenv: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runenv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # the disk, not runenv: one line (the stages name what they did)
        if verbose:
            traceback.print_exc()
        print(f"runenv: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1


__all__ = ["build_parser", "main"]
