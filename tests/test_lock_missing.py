"""The missing-package policy at lock time: under `packages.resolution` without strictMissing,
a requirement uv finds no file of for the platform (or whose dependency has none, or which
needs a package the variant skips there) is left out of the lock with its reason, and the
build warns and records it, as it does for a package with no wheel it may not build; with
strictMissing the lock fails as before."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.dists import write_wheel
from support.index import IndexServer, serve, write_simple_pages
from support.project import (
    VARIANT,
    cli_stderr,
    make_project,
    manifest_of,
    run_unpacked,
)


def _wheel(files: Path, name: str, *requires: str, tag: str = "py3-none-any") -> None:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files_ = {f"{name}/__init__.py": f"VALUE = {name!r}\n".encode()}
    write_wheel(files, name, "1.0", files_, metadata=meta, tag=tag)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("missing-index")
    files = root / "files"
    _wheel(files, "rtkeep")
    _wheel(files, "rtwinonly", tag="py3-none-win_amd64")  # no file for linux-x64 at all
    _wheel(files, "rtuser", "rtwinonly>=1")  # needs it
    _wheel(files, "rtbase")
    _wheel(files, "rtneedsbase", "rtbase")  # needs a package the variant skips on linux-x64
    write_simple_pages(root)
    yield from serve(root)


POLICY = """
[packages.resolution]
strictMissing = {strict}
[packages.skip.rtbase]
linux-x64 = "not on Linux"
"""


def test_what_cannot_be_installed_is_left_out_with_its_reason(
    new_project: Callable[..., Path], tmp_path: Path, server: IndexServer
) -> None:
    deps = ["rtkeep==1.0", "rtwinonly==1.0", "rtuser==1.0", "rtneedsbase==1.0", "rtbase==1.0"]
    root = new_project(deps, extra=POLICY.format(strict="false"))
    said = [ln for ln in cli_stderr(root, server, "lock").splitlines() if ln.startswith("warning:")]
    assert sorted(ln.split(": ")[2] for ln in said) == [
        "rtneedsbase left out",
        "rtuser left out",
        "rtwinonly left out",
    ]
    built = cli_stderr(root, server, "build")
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    missing = lock["tool"]["runenv"]["missing"]
    assert set(missing) == {"rtwinonly", "rtuser", "rtneedsbase"}
    assert missing["rtwinonly"].startswith("no file for the platform (uv: rtwinonly==1.0 has no")
    assert missing["rtuser"].startswith("needs rtwinonly")
    assert "which has no file for the platform" in missing["rtuser"]
    assert missing["rtneedsbase"] == "needs rtbase, which is skipped on linux-x64"
    assert {p["name"] for p in lock["packages"]} == {"rtkeep"}
    warnings = [ln for ln in built.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 3 and any("rtuser skipped: needs rtwinonly" in w for w in warnings)
    skipped = {s["name"]: s["reason"] for s in manifest_of(root)["skipped"]}  # type: ignore[index,union-attr]
    assert set(skipped) == {"rtwinonly", "rtuser", "rtneedsbase", "rtbase"}
    assert run_unpacked(root, tmp_path / "rt", "import rtkeep; print(rtkeep.VALUE)") == "rtkeep"


def test_strict_missing_still_fails_the_lock(
    new_project: Callable[..., Path], tmp_path: Path, pbs: tuple[Path, str], server: IndexServer
) -> None:
    root = new_project(["rtuser==1.0"], extra=POLICY.format(strict="true"))
    err = cli_stderr(root, server, "lock", code=1)
    assert "cannot lock" in err and "rtwinonly" in err and "has no wheels" in err
    assert not (root / "versions" / VARIANT / "pylock.linux-x64.toml").exists()
    # A skipped package still required fails it too, naming both.
    root = make_project(
        tmp_path / "q", pbs, ["rtneedsbase==1.0"], extra=POLICY.format(strict="true")
    )
    err = cli_stderr(root, server, "lock", code=1)
    assert "rtbase is skipped on linux-x64 but required by rtneedsbase==1.0" in err
