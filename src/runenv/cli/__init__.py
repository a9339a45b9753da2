"""`runenv` / `python -m runenv`: the only package that prints.

Exit codes: 0 success, 1 a failed build (or fetch, lock, check), 2 bad usage or configuration.
Errors are one line on stderr; `-v` adds the traceback and debug logging.

`parser` is the argparse tree; the handlers are grouped by concern (`build`: what makes
runtimes; `project`: the variants and what was built from them); `arguments` and `output` are
what the handlers share.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from runenv.cli.parser import Handler, build_parser
from runenv.errors import RunenvError, describe_os_error


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: parse, call its handler, turn its error into one line and a code."""
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
