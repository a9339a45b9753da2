"""The benchmark's progress lines (stderr, time-stamped from its start) and its one error."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


class BenchError(Exception):
    """A setup step or a measured command failed: one line, exit 1."""


def log(message: str) -> None:
    """Print `message` to stderr after the minutes and seconds since the benchmark started."""
    elapsed = int(time.monotonic() - _T0)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)
