"""The suite's shared fixtures, in one place: a private runenv cache (and a cold one of a
test's own), the PBS-shaped archive, the loopback package index (and the reference system's),
a loopback file server, fresh projects on them, and a variant built for this machine."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runenv.platforms import host_platform
from support.http import LoopbackServer
from support.index import Index, IndexServer, build_index
from support.pbs import pbs_archive
from support.project import build_for_host, cross_project, make_project
from support.reference import build_reference_index

# `-m "not e2e"` is the quick loop (about a minute); `e2e` is set here, never by hand, on every
# test that builds real runtimes or reaches past this machine (seconds to minutes each): one
# that takes the PBS stand-in or the loopback index (directly or through another fixture), and
# one marked `slow` (a real end-to-end build), `heavy` (gigabytes) or `network` (the real PyPI).
# `pbs_tree` is test_bytecode's: the stand-in's runtime tree (a copy of this interpreter, the
# whole stdlib), compiled, copied again by each test and run.
_E2E_FIXTURES = {"pbs", "pkg_server", "pkg_index", "pbs_tree"}
_E2E_MARKERS = {"slow", "heavy", "network"}


def is_e2e(item: pytest.Item) -> bool:
    """Whether `item` belongs to the end-to-end set rather than the quick loop."""
    if _E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    return any(item.get_closest_marker(name) for name in _E2E_MARKERS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_e2e(item):
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


@pytest.fixture(scope="module")
def ref_server(pkg_index: Index, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """The loopback index with the reference system's packages added (support/reference.py)."""
    root = build_reference_index(tmp_path_factory.mktemp("ref-index") / "index", pkg_index.root)
    with IndexServer(root) as server:
        yield server


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A running loopback server whose root is `tmp_path / "www"` (created empty)."""
    root = tmp_path / "www"
    root.mkdir()
    with LoopbackServer(root) as server:
        yield server


@pytest.fixture
def cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runenv cache of the test's own (tmp_path/cache), empty until the test fills it."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(path))
    return path


@pytest.fixture
def new_project(tmp_path: Path, pbs: tuple[Path, str]) -> Callable[..., Path]:
    """`new_project(deps, **keywords)`: `make_project` at tmp_path/p, on the PBS stand-in."""
    return functools.partial(make_project, tmp_path / "p", pbs)


@pytest.fixture
def new_cross_project(tmp_path: Path, pbs: tuple[Path, str]) -> Callable[..., Path]:
    """`new_cross_project(deps, extra="")`: `cross_project` (all five platforms) at tmp_path/p."""
    return functools.partial(cross_project, tmp_path / "p", pbs)


@pytest.fixture
def rtpure_project(tmp_path: Path, pbs: tuple[Path, str]) -> Path:
    """A fresh project (`make_project`, at tmp_path/p) whose variant needs rtpure alone."""
    return make_project(tmp_path / "p", pbs, ["rtpure==1.0"])


@pytest.fixture(scope="session")
def host_build(
    tmp_path_factory: pytest.TempPathFactory, pbs: tuple[Path, str], pkg_server: IndexServer
) -> Callable[..., Path]:
    """`host_build(variant, deps, extra="")`: the manifest of `variant`, in a project of its own
    needing `deps` (`extra` appended to its config), built for this machine in-process."""

    def build(variant: str, deps: list[str], extra: str = "") -> Path:
        root = tmp_path_factory.mktemp(variant)
        make_project(root, pbs, deps, variant=variant, platform=host_platform().value, extra=extra)
        return build_for_host(root, variant, pkg_server.index_url)

    return build
