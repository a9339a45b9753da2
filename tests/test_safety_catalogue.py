"""Hostile manifests (issue 22, items 4 and 8): the consumer's `check` never runs a program
outside the archive, and `runenv catalogue` never builds a wheel its own code cannot read."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from runenv._cache import Cache
from runenv.commands.catalogue import build_catalogue
from runenv.config.load import load_variant
from runenv.errors import BuildError
from runenv.pipeline.build import build_target
from runenv.pipeline.context import BuildOptions
from runenv.platforms import host_platform
from support.index import IndexServer
from support.project import VARIANT, catalogue_check, make_project

REPO = Path(__file__).resolve().parents[1]
HOST = host_platform()


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, pbs: tuple[Path, str], pkg_server: IndexServer
) -> Path:
    """A project with one variant built for the host, and the catalogue project beside it."""
    root = make_project(tmp_path_factory.mktemp("hostile") / "p", pbs, ["rtpure==1.0"])
    shutil.copytree(
        REPO / "catalogue", root / "catalogue", ignore=shutil.ignore_patterns("__pycache__", ".*")
    )
    options = BuildOptions(
        dist=root / "dist", pydist=root / "pydist", default_index=pkg_server.index_url
    )
    build_target(load_variant(root, VARIANT), HOST, options, Cache.default())
    return root


def _copy(built: Path, dest: Path, **changes: Any) -> Path:
    """The build's manifest and archive in `dest`, the manifest with `changes`."""
    dest.mkdir(parents=True)
    stem = f"runenv-{VARIANT}-{HOST.value}"
    shutil.copy2(built / "dist" / f"{stem}.tar.gz", dest / f"{stem}.tar.gz")
    manifest = json.loads((built / "dist" / f"{stem}.json").read_text())
    manifest.update(changes)
    (dest / f"{stem}.json").write_text(json.dumps(manifest))
    return dest / f"{stem}.json"


FAKE_CHECK = """#!/bin/sh
echo ran > "$(dirname "$0")/ran-outside"
printf 'RUNENV-CHECK {"prefix": "%s", "failures": {}, "no_bytecode": []}\\n' "$PWD"
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in")
@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_the_consumer_check_never_runs_an_interpreter_outside_the_archive(
    built: Path, tmp_path: Path, how: str
) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text(FAKE_CHECK)
    evil.chmod(0o755)
    # The unpacked runtime lands in <work tmp>/runenv-check-*/unpacked-elsewhere: ../ from
    # there far enough reaches / and then the script.
    interpreter = str(evil) if how == "absolute" else "../" * 40 + str(evil).lstrip("/")
    manifest = _copy(built, tmp_path / "d", interpreter=interpreter)
    proc = catalogue_check(manifest)
    assert not (tmp_path / "ran-outside").exists()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ok" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and manifest.name in lines[0] and "the runtime" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_manifest_listing_the_archive_twice_as_parts_is_refused(
    built: Path, tmp_path: Path
) -> None:
    stem = f"runenv-{VARIANT}-{HOST.value}"
    manifest = json.loads((built / "dist" / f"{stem}.json").read_text())
    whole = {"name": f"{stem}.tar.gz", "size": manifest["size"], "sha256": manifest["sha256"]}
    dist = _copy(built, tmp_path / "d", parts=[whole, whole]).parent
    with pytest.raises(BuildError, match=r"listed twice \(or is the archive\)"):
        build_catalogue(dist, "https://h", version="1", project=built, out=tmp_path / "w")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("variant", "../../evil", "not a variant name"),
        ("variant", f"{VARIANT}\n", "not a variant name"),
        ("interpreter", "/usr/bin/python3", "relative path"),
        ("site_packages", "lib/../../x", "'..'"),
        ("python_version", "3.12.10\n", "not a version"),
    ],
)
def test_manifest_fields_that_would_break_or_escape_are_refused(
    built: Path, tmp_path: Path, key: str, value: str, said: str
) -> None:
    dist = _copy(built, tmp_path / "d", **{key: value}).parent
    with pytest.raises(BuildError, match=said):
        build_catalogue(dist, "https://h", version="1", project=built, out=tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_a_catalogue_its_own_reader_refuses_is_never_built(built: Path, tmp_path: Path) -> None:
    """runenv reads `bin\\python3` as bin/python3; the catalogue refuses a backslash. The
    catalogue's own reader, run on the staged catalogue.json, stops the build."""
    dist = _copy(built, tmp_path / "d", interpreter="bin\\python3").parent
    with pytest.raises(BuildError, match="catalogue's own check"):
        build_catalogue(dist, "https://h", version="1", project=built, out=tmp_path / "w")
    assert not (tmp_path / "w").exists()
