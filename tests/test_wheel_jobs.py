"""Wheel-only native jobs: `runenv wheels` builds a target's source wheels with an index, and
`runenv build --built-wheels` imports them, verified, so nothing compiles where the runtime is
built (a native build) and a cross build with a compiled sdist goes through.

The command runs for the host here (a real C-extension sdist, compiled by the test runtime);
for a foreign platform it cannot run on this machine, so the cross test writes the index with
the command's own writer (`built_wheels.write_index`) for a platform-tagged wheel it makes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv.ci.matrix import plan_target
from runenv.cli import main
from runenv.config.load import load_variant
from runenv.config.plan import Plan, make_plan
from runenv.fetch import wheels
from runenv.fetch.wheels import Artifact
from runenv.lock import resolve
from runenv.lock.pylock import read_lock
from runenv.platforms import Platform
from runenv.sources import built_wheels
from runenv.sources.wheel_cache import cache_key
from support.dists import write_wheel
from support.index import SRCONLY_HELLO, Index, IndexServer
from support.pbs import CPU_TYPE_ARM64, PY_XY, macho_header
from support.project import (
    VARIANT,
    build,
    manifest_of,
    run_unpacked,
)

CP = "cp" + PY_XY.replace(".", "")


def _main(root: Path, *args: str) -> int:
    return main(["-q", "--project", str(root), *args])


def _cache(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(path))
    return path


def _locked_source(root: Path, platform: Platform = Platform.LINUX_X64) -> tuple[Plan, Artifact]:
    """The variant's plan for `platform` and the one artifact its lock builds from source."""
    vc = load_variant(root, VARIANT)
    plan = make_plan(vc, platform)
    selected = wheels.select_for_plan(read_lock(resolve.lock_path(vc.folder, plan.platform)), plan)
    [source] = [a for a in selected.artifacts if a.from_source]
    return plan, source


@pytest.fixture
def wheels_out(
    new_project: Callable[..., Path],
    tmp_path: Path,
    pkg_server: IndexServer,
    pkg_index: Index,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Path]:
    """A project needing rtsrconly (sdist only, a C extension), locked, and the folder
    `runenv wheels` wrote for it on this host (in a cache of its own)."""
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel could be put in the test index")
    root = new_project(["rtsrconly==1.0"])
    _cache(monkeypatch, tmp_path / "native-cache")
    assert _main(root, "lock", VARIANT, "--index-url", pkg_server.index_url) == 0
    out = tmp_path / "built"
    url = pkg_server.index_url
    args = ("--platform", "host", "--out", str(out), "--index-url", url)
    assert _main(root, "wheels", VARIANT, *args) == 0
    return root, out


def test_wheels_then_fresh_build_compiles_nothing_and_installs_those_bytes(
    tmp_path: Path,
    wheels_out: tuple[Path, Path],
    pkg_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, out = wheels_out
    index = json.loads((out / built_wheels.INDEX_NAME).read_text())
    assert (index["variant"], index["platform"]) == (VARIANT, "linux-x64")
    [entry] = index["wheels"]
    wheel = out / entry["wheel"]
    assert entry["package"] == "rtsrconly" and entry["version"] == "1.0"
    assert entry["wheel"].startswith(f"rtsrconly-1.0-{CP}-{CP}-linux_x86_64")
    assert entry["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert entry["size"] == wheel.stat().st_size
    plan, source = _locked_source(root)
    assert entry["source_sha256"] == source.sha256
    assert entry["cache_key"] == cache_key(source, plan)
    # The key CI caches this folder under, planned offline from the lock, is made of the very
    # cache keys the folder's wheels were built under (a compiled wheel: the platform's).
    planned = plan_target(root, VARIANT, Platform.LINUX_X64).wheels_key
    assert planned == built_wheels.wheels_key(plan, [source])
    assert [e["cache_key"] for e in index["wheels"]] == [cache_key(source, plan)]
    assert sorted(p.name for p in out.iterdir()) == sorted([entry["wheel"], "runenv-wheels.json"])

    # A fresh cache, and no C compiler: the build takes the wheel and compiles nothing.
    cache = _cache(monkeypatch, tmp_path / "fresh-cache")
    monkeypatch.setenv("CC", "/bin/false")
    assert build(root, pkg_server, "--locked", "--built-wheels", str(out)) == 0
    log = (root / "dist" / f"runenv-{VARIANT}-linux-x64.log").read_text()
    assert "_in_process" not in log  # no PEP 517 hook ran
    assert f"runenv: built wheel {entry['wheel']} (rtsrconly 1.0, sha256 {entry['sha256']}" in log
    [record] = [p for p in manifest_of(root)["packages"] if p["name"] == "rtsrconly"]  # type: ignore[union-attr]
    assert record["from_source"] is True
    assert (record["wheel"], record["sha256"]) == (entry["wheel"], entry["sha256"])
    [cached] = (cache / "built-wheels").rglob("*.whl")
    assert cached.read_bytes() == wheel.read_bytes()
    assert (
        run_unpacked(root, tmp_path / "moved", "import rtsrconly; print(rtsrconly.hello())")
        == SRCONLY_HELLO
    )


@pytest.fixture
def refused(
    tmp_path: Path,
    wheels_out: tuple[Path, Path],
    pkg_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[[int], str]:
    """`refused(code)` builds the project with wheels_out's folder into a fresh cache, asserts
    that it exits `code` with one line and leaves no built wheel in the cache; that line."""

    def run(code: int) -> str:
        root, out = wheels_out
        cache = _cache(monkeypatch, tmp_path / "fresh-cache")
        capsys.readouterr()
        assert build(root, pkg_server, "--locked", "--built-wheels", str(out)) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert not list((cache / "built-wheels").rglob("*.whl"))
        return err[0]

    return run


def test_flipped_byte_is_refused_and_nothing_published(
    wheels_out: tuple[Path, Path], refused: Callable[[int], str]
) -> None:
    root, out = wheels_out
    [entry] = json.loads((out / built_wheels.INDEX_NAME).read_text())["wheels"]
    wheel = out / entry["wheel"]
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    wheel.write_bytes(bytes(data))
    err = refused(1)
    assert f"{wheel}: sha256 " in err and "tampered with or corrupted" in err
    assert not (root / "dist").exists() or not list((root / "dist").glob("*.tar.gz"))


def test_entry_for_another_key_is_refused_naming_the_package(
    wheels_out: tuple[Path, Path], refused: Callable[[int], str]
) -> None:
    root, out = wheels_out
    path = out / built_wheels.INDEX_NAME
    index = json.loads(path.read_text())
    # The key a build of this source for another platform computes.
    plan, source = _locked_source(root)
    other = dataclasses.replace(plan, python_version="3.99.0")
    index["wheels"][0]["cache_key"] = cache_key(source, other)
    path.write_text(json.dumps(index))
    err = refused(2)
    assert "rtsrconly 1.0: built for another target, Python or recipe" in err
    assert "runenv wheels" in err


@pytest.mark.parametrize("hostile", ["link", "path", "other-target"])
def test_hostile_folder_is_refused(
    tmp_path: Path, wheels_out: tuple[Path, Path], refused: Callable[[int], str], hostile: str
) -> None:
    _, out = wheels_out
    path = out / built_wheels.INDEX_NAME
    index = json.loads(path.read_text())
    wheel = out / index["wheels"][0]["wheel"]
    if hostile == "link":  # the named file is a link (to the very bytes): not followed
        real = tmp_path / "elsewhere.whl"
        wheel.rename(real)
        wheel.symlink_to(real)
        expected = f"{wheel}: a link, not the wheel itself"
    elif hostile == "path":  # a name with a folder in it
        index["wheels"][0]["wheel"] = "../" + wheel.name
        path.write_text(json.dumps(index))
        expected = "is not a plain file name"
    else:  # an index for another platform: named, never silently ignored
        index["platform"] = "macosx-aarch64"
        path.write_text(json.dumps(index))
        expected = f"wheels of {VARIANT} macosx-aarch64 (rtsrconly), a target this build"
    assert expected in refused(2)


def test_wheels_runs_from_the_committed_lock_only(
    new_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = new_project(["rtsrconly==1.0"])
    out = tmp_path / "out"
    assert _main(root, "wheels", VARIANT, "--platform", "host", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "pylock.linux-x64.toml: there is none yet and --locked forbids re-locking" in err
    assert not out.exists() and not (root / "versions" / VARIANT / "pylock.linux-x64.toml").exists()


def test_wheels_refuses_a_foreign_platform(
    new_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = new_project(["rtsrconly==1.0"])
    config = root / "versions" / VARIANT / "config.toml"
    config.write_text(config.read_text().replace('platforms = ["linux-x64"]\n', ""))
    out = tmp_path / "out"
    assert _main(root, "wheels", VARIANT, "--platform", "macosx-aarch64", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "runs on a macosx-aarch64 machine" in err and "macos-15" in err
    assert not out.exists()


def test_cross_build_with_a_compiled_sdist_goes_through_with_its_built_wheel(
    new_cross_project: Callable[..., Path],
    tmp_path: Path,
    pkg_server: IndexServer,
    cold_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = new_cross_project(["rtsrconly==1.0", "rtpure==1.0"])
    target = ("--platform", "macosx-aarch64")
    assert build(root, pkg_server, *target) == 1
    assert "rtsrconly 1.0 on macosx-aarch64: no wheel" in capsys.readouterr().err

    # What `runenv wheels` writes on a macos-15 runner: a platform-tagged wheel and its index.
    plan, source = _locked_source(root, Platform.MACOSX_AARCH64)
    so = f"rtsrconly/_impl.cpython-{CP[2:]}-darwin.so"
    macho = macho_header(CPU_TYPE_ARM64)
    made = write_wheel(
        tmp_path / "made",
        "rtsrconly",
        "1.0",
        {"rtsrconly/__init__.py": b"from rtsrconly._impl import hello\n", so: macho},
        tag=f"{CP}-{CP}-macosx_11_0_arm64",
        purelib=False,
    )  # fmt: skip
    out = tmp_path / "built"
    out.mkdir()
    built_wheels.write_index(out, plan, [(source, made)])

    assert build(root, pkg_server, *target, "--locked", "--built-wheels", str(out)) == 0
    manifest = json.loads((root / "dist" / f"runenv-{VARIANT}-macosx-aarch64.json").read_text())
    [record] = [p for p in manifest["packages"] if p["name"] == "rtsrconly"]
    assert record["from_source"] is True and record["wheel"] == made.name
    assert record["sha256"] == hashlib.sha256(made.read_bytes()).hexdigest()
    with tarfile.open(root / "dist" / f"runenv-{VARIANT}-macosx-aarch64.tar.gz") as tf:
        names = tf.getnames()
    assert any(n.endswith(so) for n in names), names
