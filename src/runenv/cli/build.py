"""The commands that make runtimes and what goes into them: lock, build, wheels, fetch-python,
and matrix (CI's plan of those builds)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from runenv import _bounded
from runenv._cache import Cache
from runenv.artifact.manifest import read_manifest
from runenv.ci.matrix import parse_cached_keys
from runenv.ci.render import matrix_json, matrix_table
from runenv.ci.wheel_job import build_source_wheels
from runenv.cli import arguments, output
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.config.project import list_variants
from runenv.errors import UsageError
from runenv.fetch import python
from runenv.fetch.download import new_client
from runenv.pipeline.build import build_many
from runenv.pipeline.locking import ensure_lock
from runenv.platforms import Platform, host_platform, parse_platforms
from runenv.sources import built_wheels


def cmd_build(args: argparse.Namespace) -> int:
    """Build runtimes: lock, fetch, install, copy files, check, pack."""
    targets = arguments.targets(args)
    options = arguments.build_options(args, arguments.project(args))
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
            size = output.size(int(data.get("size", 0)))
            print(f"{state}: {res.archive} ({size}, {res.seconds:.1f}s)")
    for (vc, plat), exc in failures:
        print(f"runenv: error: {vc.variant} {plat.value}: {exc}", file=sys.stderr)
    if args.json:
        output.emit(rows)
    if failures:
        return max(exc.exit_code for _, exc in failures)
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    """Build only the wheels a target builds from source, on its native runner (CI's wheels job)."""
    project = arguments.project(args)
    vc = load_variant(project, args.variant)
    plat = Platform.parse(args.platform) if args.platform else host_platform()
    make_plan(vc, plat)  # refuses a platform the variant is not built for
    options = arguments.build_options(args, project)
    out = Path(args.out).resolve()
    with new_client() as client:
        index = build_source_wheels(vc, plat, options, Cache.default(), out, client=client)
    if args.json:
        output.emit(index.to_json())
        return 0
    for e in index.wheels:
        print(f"built: {out / e.wheel} ({e.package} {e.version}, {output.size(e.size)})")
    print(
        f"{len(index.wheels)} wheels for {vc.variant} {plat.value}: {out / built_wheels.INDEX_NAME}"
    )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Resolve each platform's dependencies into versions/VARIANT/pylock.PLATFORM.toml."""
    project = arguments.project(args)
    options = arguments.build_options(args, project)
    cache = Cache.default()
    for vc, plat in arguments.targets(args):
        plan = make_plan(vc, plat)
        path, relocked = ensure_lock(vc, plan, options, cache, force=args.force)
        print(f"{'locked' if relocked else 'up to date'}: {path}")
    return 0


def cmd_fetch_python(args: argparse.Namespace) -> int:
    """Download, verify and unpack python-build-standalone runtimes."""
    target = args.target
    try:
        project: Path | None = arguments.project(args)
    except UsageError:
        project = None
    if project is not None and target in list_variants(project):
        vc = load_variant(project, target)
        version, allowed, mirror = vc.python_version, vc.platforms, vc.config.python.mirror
        pins = {p: pin for p in allowed if (pin := python.pinned_archive(vc, p)) is not None}
        timeout = float(vc.config.build.timeout)
    else:
        version, allowed, mirror, pins, timeout = target, tuple(Platform), None, {}, 300.0
    mirror = python.choose_mirror(args.python_mirror, mirror)
    platforms = parse_platforms(args.platform, allowed)
    dest = Path(args.dest) if args.dest else Path.cwd() / "pydist" / f"python-{version}"
    cache = Cache.default()
    done = python.fetch_many(
        version,
        {p: dest / p.value for p in platforms},
        cache=cache,
        mirror=mirror,
        pinned=pins,
        offline=args.offline,
        progress=output.progress(args),
        timeout=timeout,
    )
    for plat, path in done.items():
        print(f"{plat.value}: {path}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    """The CI plan: cross builds on Linux, native builds, native verification, their cost."""
    project = arguments.project(args)
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
