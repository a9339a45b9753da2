"""Session fixtures: a private runenv cache, the loopback PBS archive and package index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.index import Index, IndexServer, build_index
from support.pbs import pbs_archive

# A test that takes the PBS stand-in or the loopback index builds real runtimes (seconds to
# minutes each): it is an end-to-end test, and `-m "not e2e"` is the quick loop without them.
_E2E_FIXTURES = {"pbs", "pkg_server", "pkg_index"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test reads or fills the user's cache; tests that need a cold one set their own."""
    path = tmp_path_factory.mktemp("runenv-cache")
    old = os.environ.get("RUNENV_CACHE_DIR")
    os.environ["RUNENV_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RUNENV_CACHE_DIR", None)
    else:
        os.environ["RUNENV_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def pbs() -> tuple[Path, str]:
    """The PBS-shaped archive of the running interpreter, and its sha256."""
    return pbs_archive()


@pytest.fixture(scope="session")
def pkg_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return build_index(tmp_path_factory.getbasetemp() / "runenv-test-index")


@pytest.fixture(scope="session")
def pkg_server(pkg_index: Index) -> Iterator[IndexServer]:
    with IndexServer(pkg_index.root) as server:
        yield server
