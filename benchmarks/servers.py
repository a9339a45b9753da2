"""The loopback mirror the stand-in PBS archives are served from: the test suite's own server.

`tests/support` is the tests' package of helpers (`support`, on their path as pytest puts
`tests/` there); a benchmark run from the checkout puts `tests/` on its path the same way, so
both import the one `support.http.LoopbackServer`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks import REPO

if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from support.http import LoopbackServer


@contextlib.contextmanager
def serve(directory: Path, lifetime: float) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) until the block ends or `lifetime` passes;
    yields the base URL."""
    with LoopbackServer(root=directory, lifetime=lifetime) as server:
        yield server.url
