"""`python -m runenv_catalogue list | which VARIANT | install VARIANT | run VARIANT -- ARGS`,
`venv DEST VARIANT -r FILE` (a block venv on the runtime, offline) and `check MANIFEST` (CI: the
import check of a cross-built archive on its native runner).

Errors are one line on stderr: exit 2 for an unknown variant or platform (and, for `venv`, a
DEST that is not new or empty, or a requirements file that cannot be read or checked), 1 for a
download, checksum or unpacking failure (and for `venv`, a step that failed or a requirement
the runtime does not meet). `run` exits with the runtime's own exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runenv_catalogue import _heap
from runenv_catalogue._catalogue import Catalogue
from runenv_catalogue._provision import CatalogueError

PROG = "python -m runenv_catalogue"


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        type=Path,
        help="default: $RUNENV_CATALOGUE_CACHE or the user cache directory",
    )
    parser = argparse.ArgumentParser(prog=PROG, description="Install and run runenv runtimes.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="the variants and their platforms")
    for name, doc in (
        ("which", "the interpreter of an installed variant"),
        ("install", "install a variant (once); print its interpreter"),
    ):
        p = sub.add_parser(name, parents=[common], help=doc)
        p.add_argument("variant")
        p.add_argument("--platform", help="a platform key (default: this machine)")
    p = sub.add_parser("run", parents=[common], help="run a variant's interpreter: run V -- ARGS")
    p.add_argument("variant")
    p = sub.add_parser(
        "venv",
        parents=[common],
        help="make a block venv on a variant's runtime with a requirements file, offline",
    )
    p.add_argument("dest", type=Path, help="the venv to make (a new or empty folder)")
    p.add_argument("variant")
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirements",
        type=Path,
        required=True,
        help="the block's requirements.txt",
    )
    p = sub.add_parser(
        "check", help="verify, unpack elsewhere and import-check the archive of a manifest"
    )
    p.add_argument("manifest", type=Path, help="runenv-VARIANT-PLATFORM.json, archive beside it")
    return parser


def _install(
    cat: Catalogue, variant: str, platform: str | None, cache_dir: Path | None, *, lives_on: bool
) -> Path:
    """`cat.install`, the C heap tuned for its unpack if there is one (`_heap`), and handed
    back after it if the process `lives_on` (`run` waits for the runtime it starts)."""
    tuned = cat.which(variant, platform, cache_dir=cache_dir) is None and _heap.keep_freed()
    try:
        return cat.install(variant, platform, cache_dir=cache_dir)
    finally:
        if tuned and lives_on:
            _heap.release()


def main(argv: Sequence[str] | None = None, catalogue: Catalogue | None = None) -> int:
    """The CLI; `catalogue` defaults to the one this package ships."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    child: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, child = args_list[:cut], args_list[cut + 1 :]
    parser = _parser()
    args = parser.parse_args(args_list)
    if child and args.command != "run":
        parser.error("arguments after -- are for run only")
    try:
        if args.command == "check":
            from runenv_catalogue._check import check_archive  # the native runner's only

            _out(check_archive(args.manifest))
            return 0
        cat = catalogue or Catalogue.load()
        if args.command == "list":
            for variant in cat.variants():
                first = cat.entry(variant, cat.platforms(variant)[0])
                plats = " ".join(cat.platforms(variant))
                _out(f"{variant}\tPython {first.python_version}\t{plats}")
            return 0
        if args.command == "which":
            found = cat.which(args.variant, args.platform, cache_dir=args.cache_dir)
            if found is None:
                raise CatalogueError(
                    f"{args.variant} is not installed: run {PROG} install {args.variant}"
                )
            _out(str(found))
            return 0
        if args.command == "venv":
            made = cat.venv(args.variant, args.dest, args.requirements, cache_dir=args.cache_dir)
            _out(str(made))
            return 0
        if args.command == "install":
            _out(str(_install(cat, args.variant, args.platform, args.cache_dir, lives_on=False)))
            return 0
        _install(cat, args.variant, None, args.cache_dir, lives_on=True)
        sys.stdout.flush()
        return cat.run(args.variant, child, cache_dir=args.cache_dir)
    except CatalogueError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:  # the disk (full, read-only...): one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"{PROG}: error: {exc.strerror or exc}{where}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
