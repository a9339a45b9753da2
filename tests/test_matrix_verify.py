"""The verify job's check, on a real archive built for the host: `python -m runenv_catalogue
check MANIFEST` from the catalogue's source alone (as CI runs it, nothing installed) verifies
the archive (or its parts), unpacks it at a new path and imports what the build's own import
check imported, with the same script; a failing module, a tampered archive are refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runenv.artifact.parts import publish_parts
from runenv.install.modules import importable
from runenv.platforms import host_platform
from support.pbs import PY_VERSION
from support.project import catalogue_check

REPO = Path(__file__).resolve().parents[1]
HOST = host_platform()
VARIANT = f"{PY_VERSION}-verify"


@pytest.fixture(scope="module")
def built(host_build: Callable[..., Path]) -> Path:
    """The manifest of a variant built for the host (its archive beside it)."""
    allow = '[check]\nallowImportFailures = { "not_there" = "a test" }\n'
    return host_build(VARIANT, ["rtdep==1.0", "rtpure==1.0"], allow)


def _copy(built: Path, dest: Path) -> tuple[Path, dict[str, Any]]:
    shutil.copytree(built.parent, dest, ignore=shutil.ignore_patterns("*.log"))
    path = dest / built.name
    return path, json.loads(path.read_text())


def test_the_manifest_records_what_the_import_check_imports(built: Path) -> None:
    m = json.loads(built.read_text())
    tree = built.parents[1] / "pydist" / VARIANT / HOST.value
    assert m["check"]["modules"] == importable(tree, m["site_packages"], m["copied_files"])
    assert {"rtdep", "rtpure"} <= set(m["check"]["modules"])
    assert m["check"]["allowed_failures"] == {"not_there": "a test"}


def test_check_passes_on_the_archive_and_on_its_parts(built: Path, tmp_path: Path) -> None:
    ok = catalogue_check(built)
    assert ok.returncode == 0, ok.stderr
    m = json.loads(built.read_text())
    n = len(m["check"]["modules"])
    assert ok.stdout.strip() == (
        f"ok: {VARIANT} {HOST.value}: archive whole, verified, unpacked at a new path, "
        f"{n} modules imported"
    )
    manifest, m = _copy(built, tmp_path / "dist")
    publish_parts(manifest, m["size"] // 2 + 1)
    (manifest.parent / m["archive"]).unlink()
    parts = catalogue_check(manifest)
    assert parts.returncode == 0, parts.stderr
    assert "archive joined from 2 parts" in parts.stdout


def test_check_refuses_a_module_that_does_not_import_unless_allowed(
    built: Path, tmp_path: Path
) -> None:
    manifest, m = _copy(built, tmp_path / "dist")
    m["check"]["modules"] += ["not_there", "also_missing"]
    manifest.write_text(json.dumps(m))
    bad = catalogue_check(manifest)
    assert bad.returncode == 1
    assert "import check failed for 1 module(s): also_missing: ModuleNotFoundError" in bad.stderr
    assert "not_there" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    m["check"]["allowed_failures"]["also_missing"] = "known"
    manifest.write_text(json.dumps(m))
    ok = catalogue_check(manifest)
    assert ok.returncode == 0 and "2 allowed failure(s)" in ok.stdout


def test_check_refuses_a_tampered_archive_before_unpacking(built: Path, tmp_path: Path) -> None:
    manifest, m = _copy(built, tmp_path / "dist")
    archive = manifest.parent / m["archive"]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    bad = catalogue_check(manifest)
    assert bad.returncode == 1 and "sha256 mismatch" in bad.stderr
    del m["check"]
    manifest.write_text(json.dumps(m))
    old = catalogue_check(manifest)
    assert old.returncode == 2 and "check.modules" in old.stderr
