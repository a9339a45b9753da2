"""`runenv ARGS` run in this process: main() as `python -m runenv` calls it, without paying a
new interpreter's start (a second of CPU each) for every command a test runs."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from runenv.cli import main


def run_main(
    *args: str, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `runenv ARGS` from `cwd`, `stdin` its standard input: its exit code and what it
    printed, as a subprocess run would give them; argparse's exits (a usage error, --help) are
    exit codes too."""
    out, err = io.StringIO(), io.StringIO()
    before, stdin_before = Path.cwd(), sys.stdin
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(before)
        sys.stdin = stdin_before
    return subprocess.CompletedProcess(["runenv", *args], code, out.getvalue(), err.getvalue())
