"""How the CLI shows what is not an error: JSON, sizes, progress bars and the build's lines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def emit(data: Any) -> None:
    """`--json`: the data on stdout, indented, in its own key order."""
    print(json.dumps(data, indent=2, sort_keys=False))


def size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def progress(args: argparse.Namespace) -> bool:
    """Whether progress bars show: not with `-q`, and only on a terminal."""
    return not args.quiet and sys.stderr.isatty()


def say(args: argparse.Namespace) -> Callable[[str], None]:
    """The build's report lines on stderr; `-q` keeps only the warnings."""

    def say(message: str) -> None:
        if not args.quiet or message.startswith("warning:"):  # warnings always show
            print(message, file=sys.stderr, flush=True)

    return say
