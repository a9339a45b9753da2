"""The argparse tree of `runenv`: every command, its arguments and its handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from runenv import __version__
from runenv.artifact.parts import PART_SIZE_ENV
from runenv.cli import build, project
from runenv.errors import UsageError
from runenv.fetch.python import MIRROR_ENV
from runenv.pipeline.context import INDEX_ENV
from runenv.platforms import Platform
from runenv.tree.sign import SIGN_ENV

Handler = Callable[[argparse.Namespace], int]
"""A command's handler: the parsed arguments in, the exit code out."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as a UsageError (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


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
    """The `runenv` parser; each command sets `handler`, which `main` calls."""
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

    p = command("config", project.cmd_config)
    p.add_argument("variant")
    _platform_arg(p, multi=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("list", project.cmd_list)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("build", build.cmd_build)
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

    p = command("wheels", build.cmd_wheels)
    p.add_argument("variant", metavar="VARIANT")
    _platform_arg(p, multi=False)
    p.add_argument("--out", metavar="DIR", required=True, help="where the wheels and index go")
    p.add_argument("--offline", action="store_true", help="use the caches only")
    _source_args(p)
    p.add_argument("--json", action="store_true", help="print the index")

    p = command("lock", build.cmd_lock)
    p.add_argument("variants", nargs="+", metavar="VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--force", action="store_true", help="re-lock even when up to date")
    p.add_argument("--index-url", metavar="URL", help=f"default package index (env {INDEX_ENV})")

    p = command("check", project.cmd_check)
    p.add_argument("variants", nargs="+", metavar="VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--out", metavar="DIR", help="where the manifests are (default: dist/)")

    p = command("requirements", project.cmd_requirements)
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

    p = command("fetch-python", build.cmd_fetch_python)
    p.add_argument("target", metavar="VERSION|VARIANT")
    _platform_arg(p, multi=True)
    p.add_argument("--dest", metavar="DIR", help="unpack under DIR/<platform>")
    p.add_argument("--python-mirror", metavar="URL", help=f"PBS mirror (env {MIRROR_ENV})")
    p.add_argument("--offline", action="store_true", help="use the cache only")

    p = command("clean", project.cmd_clean)
    p.add_argument("variant", nargs="?", help="only this variant's outputs")
    p.add_argument("--cache", action="store_true", help="also remove the download cache")

    p = command("matrix", build.cmd_matrix)
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

    p = command("catalogue", project.cmd_catalogue)
    p.add_argument("--base-url", metavar="URL", help="where the archives will be (default: dist/)")
    p.add_argument("--version", metavar="V", help="catalogue package version (default: derived)")
    p.add_argument("--dist", metavar="DIR", help="where the manifests are (default: dist/)")

    p = command("import", project.cmd_import)
    p.add_argument("path", metavar="PATH", help="a checkout of the reference system")
    p.add_argument("--force", action="store_true", help="replace variants that exist already")

    p = command("new", project.cmd_new)
    p.add_argument("variant", help="folder name, e.g. 3.13.0-custom")
    p.add_argument("--from", dest="from_variant", metavar="VARIANT", help="extend this variant")
    return parser
