"""Shared pytest fixtures for fetching tests; import the ones you use into your test module.

from support.fixtures import loopback, pbs_archive_file  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.http import LoopbackServer
from support.pbs import pbs_archive


@pytest.fixture(scope="session")
def pbs_archive_file() -> tuple[Path, str]:
    """(path, sha256) of the PBS-shaped archive, built once per session. Do not modify it."""
    return pbs_archive()


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A running loopback server whose root is `tmp_path / "www"` (created empty)."""
    root = tmp_path / "www"
    root.mkdir()
    with LoopbackServer(root) as server:
        yield server
