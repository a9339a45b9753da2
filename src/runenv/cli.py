"""`runenv` / `python -m runenv`: the only module that prints.

Exit codes: 0 success, 1 a failed build (or fetch, lock, check), 2 bad usage or configuration.
Errors are one line on stderr; `-v` adds the traceback and debug logging.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from runenv import __version__
from runenv.config import VERSIONS_DIR, find_project, list_variants, load_variant
from runenv.errors import RunenvError, UsageError
from runenv.plan import make_plan
from runenv.platforms import Platform
from runenv.scaffold import new_variant

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
        for constraint in plan.constraints:
            print(f"  constraint:    {constraint}")
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


def cmd_new(args: argparse.Namespace) -> int:
    """Scaffold versions/VARIANT/config.toml."""
    path = new_variant(_project(args), args.variant, args.from_variant)
    print(f"created {path}")
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

    p = command("new", cmd_new)
    p.add_argument("variant", help="folder name, e.g. 3.13.0-custom")
    p.add_argument("--from", dest="from_variant", metavar="VARIANT", help="extend this variant")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args_list or "--verbose" in args_list
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
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


__all__ = ["build_parser", "main"]
