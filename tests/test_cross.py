"""Cross builds of all five platforms from this host, the audit, and native source builds."""

from __future__ import annotations

import json
import shutil
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.checks.audit import audit_binaries, audit_wheel_tags
from runenv.cli import main
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.install.wheels import install_wheels
from runenv.platforms import ALL_PLATFORMS, Platform
from runenv.tree.binaries import identify
from support.index import SRCONLY_HELLO, Index, IndexServer
from support.pbs import PY_VERSION, PY_XY, elf_header, foreign_pbs_archive, macho_fat
from support.project import (
    SITE,
    VARIANT,
    build,
    cross_project,
    manifest_of,
    run_unpacked,
)

# What rtnative (a C extension, built or fetched for the platform) answers when it imports.
ANSWER = "import rtnative; print(rtnative.answer())"


def runenv_gets(server: IndexServer, filename: str) -> int:
    """GET requests for `filename` made by runenv's own client (not uv's)."""
    return sum(
        1
        for r in server.request_log(f"files/{filename}")
        if r.method == "GET" and r.headers.get("user-agent", "").startswith("runenv/")
    )


def test_all_five_platforms_from_one_host(
    new_cross_project: Callable[..., Path],
    tmp_path: Path,
    pkg_server: IndexServer,
    cold_cache: Path,
) -> None:
    root = new_cross_project(["rtpure==1.0", "rtnative==1.0"])
    pure = "rtpure-1.0-py3-none-any.whl"
    hits = runenv_gets(pkg_server, pure)
    assert build(root, pkg_server, "--platform", "all") == 0
    # The pure wheel every platform shares was downloaded once (uv reads metadata on its own).
    assert runenv_gets(pkg_server, pure) == hits + 1
    for plat in ALL_PLATFORMS:
        manifest = json.loads((root / "dist" / f"runenv-{VARIANT}-{plat}.json").read_text())
        names = {p["name"] for p in manifest["packages"]}
        expected = {"rtpure", "rtdep", "rtnative"} | ({"rtwin"} if plat.info.is_windows else set())
        assert names == expected, plat
        native = next(p for p in manifest["packages"] if p["name"] == "rtnative")
        assert native["wheel"].endswith(
            {
                Platform.LINUX_X64: "manylinux_2_17_x86_64.whl",
                Platform.LINUX_AARCH64: "manylinux_2_17_aarch64.whl",
                Platform.MACOSX_X64: "macosx_10_9_x86_64.whl",
                Platform.MACOSX_AARCH64: "macosx_11_0_arm64.whl",
                Platform.WINDOWS_X64: "win_amd64.whl",
            }[plat]
        )

    win = root / "pydist" / VARIANT / "windows-x64"
    assert (win / "Lib" / "site-packages" / "rtpure" / "__init__.py").is_file()
    # Bytecode for the foreign tree, compiled by the host's runtime of the same version.
    tag = f"cpython-{PY_XY.replace('.', '')}"
    assert (
        win / "Lib" / "site-packages" / "rtpure" / "__pycache__" / f"__init__.{tag}.pyc"
    ).is_file()
    assert (win / "Lib" / "__pycache__" / f"os.{tag}.pyc").is_file()
    bytecode = json.loads((root / "dist" / f"runenv-{VARIANT}-windows-x64.json").read_text())[
        "bytecode"
    ]
    assert bytecode["compiled"] and "runtime for this host" in bytecode["compiler"]
    assert (
        win
        / "Lib"
        / "site-packages"
        / "rtnative"
        / f"_native.cp{PY_XY.replace('.', '')}-win_amd64.pyd"
    ).is_file()
    launcher = win / "Scripts" / "rtpure-hello.exe"
    assert launcher.read_bytes()[:2] == b"MZ"
    assert identify(launcher) is not None and identify(launcher).format == "PE"  # type: ignore[union-attr]
    assert sorted(p.name for p in (win / "Scripts").iterdir()) == ["rtpure-hello.exe"]
    assert not (win / "lib").exists() and not (win / "bin" / "rtpure-hello").exists()

    mac = root / "pydist" / VARIANT / "macosx-aarch64"
    so = next((mac / "lib" / f"python{PY_XY}" / "site-packages" / "rtnative").glob("*.so"))
    assert identify(so).archs == ("aarch64",)  # type: ignore[union-attr]
    script = (mac / "bin" / "rtpure-hello").read_text()
    assert script.startswith("#!/bin/sh") and str(root) not in script

    # The host's runtime runs after moving it elsewhere.
    assert run_unpacked(root, tmp_path / "moved", ANSWER) == "42"


def test_audit_fails_build_on_planted_wrong_arch_binary(
    new_cross_project: Callable[..., Path],
    pkg_server: IndexServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = new_cross_project(["rtpure==1.0"])
    planted = root / "versions" / VARIANT / "files" / "site" / "_planted.so"
    planted.write_bytes(elf_header())  # aarch64 ELF, shipped into every tree by copyFiles
    assert build(root, pkg_server, "--platform", "linux-x64", "--platform", "macosx-x64") == 1
    err = capsys.readouterr().err
    assert f"{SITE}/_planted.so: ELF for aarch64, but linux-x64 needs ELF for x86_64" in err
    assert "_planted.so: ELF for aarch64, but macosx-x64 needs Mach-O for x86_64" in err
    assert not list((root / "dist").glob("*.tar.gz")) if (root / "dist").exists() else True
    assert not (root / "pydist" / VARIANT / "linux-x64").exists()


def test_audit_accepts_universal2_and_refuses_wrong_tags(tmp_path: Path, pkg_index: Index) -> None:
    root = cross_project(tmp_path / "p", pbs_dummy(tmp_path), [])
    vc = load_variant(root, VARIANT)
    plan = make_plan(vc, Platform.MACOSX_X64)
    tree = tmp_path / "tree"
    wheel = pkg_index.path(
        f"rtnative-1.0-cp{PY_XY.replace('.', '')}-cp{PY_XY.replace('.', '')}-macosx_11_0_arm64.whl"
    )
    install_wheels(tree, [wheel], Platform.MACOSX_X64, PY_VERSION)
    problems = audit_binaries(tree, plan) + audit_wheel_tags(tree / plan.site_packages, plan)
    assert any("rtnative" in p and "Mach-O for aarch64" in p for p in problems), problems
    assert any(
        p.startswith("rtnative-1.0.dist-info: wheel tags") and "macosx_11_0_arm64" in p
        for p in problems
    ), problems
    # A universal2 binary holds both architectures and fits either Mac.
    fat = tree / plan.site_packages / "rtnative" / "_fat.so"
    fat.write_bytes(macho_fat([0x01000007, 0x0100000C]))
    assert not [p for p in audit_binaries(tree, plan) if "_fat.so" in p]


def pbs_dummy(tmp_path: Path) -> tuple[Path, str]:
    return foreign_pbs_archive(Platform.LINUX_AARCH64, tmp_path / "dummy")


def test_source_build_native_cached_and_runs(
    new_project: Callable[..., Path],
    tmp_path: Path,
    pkg_server: IndexServer,
    pkg_index: Index,
    cold_cache: Path,
) -> None:
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel could be put in the test index")
    root = new_project(["rtsrconly==1.0"])
    assert build(root, pkg_server) == 0
    record = next(p for p in manifest_of(root)["packages"] if p["name"] == "rtsrconly")  # type: ignore[union-attr]
    assert record["from_source"] is True
    assert (
        run_unpacked(root, tmp_path / "moved", "import rtsrconly; print(rtsrconly.hello())")
        == SRCONLY_HELLO
    )
    built = list((cold_cache / "built-wheels").rglob("*.whl"))
    assert len(built) == 1
    log = root / "dist" / f"runenv-{VARIANT}-linux-x64.log"
    assert "_in_process" in log.read_text()  # the PEP 517 hooks ran

    # Outputs removed, caches kept: the second build compiles nothing.
    assert main(["-q", "--project", str(root), "clean", VARIANT]) == 0
    assert build(root, pkg_server) == 0
    assert "_in_process" not in log.read_text()
    assert list((cold_cache / "built-wheels").rglob("*.whl")) == built


def test_a_native_source_build_gives_the_same_library_twice(
    new_project: Callable[..., Path],
    pkg_server: IndexServer,
    pkg_index: Index,
    cold_cache: Path,
) -> None:
    """The compiler writes the folder it builds in, a random temp folder, into the library
    (DWARF's comp_dir: the stand-in's CFLAGS carry -g). Mapped to a fixed name, the sdist
    built again, in a cache that lost its wheel, gives the same library byte for byte."""
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel could be put in the test index")
    root = new_project(["rtsrconly==1.0"])
    assert build(root, pkg_server) == 0
    site = root / "pydist" / VARIANT / "linux-x64" / SITE / "rtsrconly"
    libraries = sorted(site.glob("_impl*.so"))
    assert len(libraries) == 1
    first = libraries[0].read_bytes()
    assert b"/runenv-sdist/src/" in first  # the folder, written in, under its mapped name

    assert main(["-q", "--project", str(root), "clean", VARIANT]) == 0
    shutil.rmtree(cold_cache / "built-wheels")
    assert build(root, pkg_server) == 0
    log = root / "dist" / f"runenv-{VARIANT}-linux-x64.log"
    assert "_in_process" in log.read_text()  # compiled again, in another temp folder
    assert libraries[0].read_bytes() == first
    # The interpreter's own flags (-O3, -g...) are still there: setuptools replaces them with
    # CFLAGS from the environment, but adds CPPFLAGS, which carries the mapping.
    assert f"{sysconfig.get_config_var('CFLAGS')} -ffile-prefix-map=" in log.read_text()


def test_force_source_takes_sdist_even_with_a_wheel(
    new_project: Callable[..., Path], tmp_path: Path, pkg_server: IndexServer, pkg_index: Index
) -> None:
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel could be put in the test index")
    extra = '[packages.forceSource.rtnative]\nlinux-x64 = "test: build it here"\n'
    root = new_project(["rtnative==1.0"], extra=extra)
    assert build(root, pkg_server) == 0
    record = next(p for p in manifest_of(root)["packages"] if p["name"] == "rtnative")  # type: ignore[union-attr]
    assert record["from_source"] is True
    assert "manylinux" not in record["wheel"]
    assert run_unpacked(root, tmp_path / "moved", ANSWER) == "42"


def test_failing_source_build_shows_tail_and_log(
    new_project: Callable[..., Path],
    pkg_server: IndexServer,
    pkg_index: Index,
    cold_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel could be put in the test index")
    monkeypatch.setenv("CC", "/bin/false")  # the C compiler fails
    root = new_project(["rtsrconly==1.0"])
    assert build(root, pkg_server) == 1
    err = capsys.readouterr().err
    assert "build rtsrconly 1.0 from source: failed with exit code 1" in err
    assert err.count("build rtsrconly 1.0 from source") == 1
    # The log it names is the failed attempt's, which stays (a good build's log is .log).
    log = root / "dist" / f"runenv-{VARIANT}-linux-x64.attempt.log"
    assert f"full log: {log}" in err and "rtsrconly" in log.read_text()
    assert not (root / "dist" / f"runenv-{VARIANT}-linux-x64.tar.gz").exists()


def test_cross_build_needing_native_source_fails_first_and_leaves_nothing(
    new_cross_project: Callable[..., Path],
    pkg_server: IndexServer,
    cold_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = '[packages.forceSource.rtnative]\nwindows-x64 = "vendor patch"\n'
    root = new_cross_project(["rtsrconly==1.0", "rtnative==1.0"], extra)
    sdist_hits = runenv_gets(pkg_server, "rtsrconly-1.0.tar.gz")
    assert build(root, pkg_server, "--platform", "windows-x64") == 1
    err = capsys.readouterr().err
    assert "rtsrconly 1.0 on windows-x64: no wheel" in err
    assert "rtnative 1.0 on windows-x64: forced to source (vendor patch)" in err
    assert err.count("must be built from source on a native windows-x64 runner") == 2
    # Only the sources were fetched, to try them on the host (their wheels are not
    # py3-none-any); the interpreter and the other wheels were not.
    assert runenv_gets(pkg_server, "rtsrconly-1.0.tar.gz") == sdist_hits + 1
    assert not (cold_cache / "python").exists() or not any(
        (cold_cache / "python").rglob("*.tar.gz")
    )
    assert not (root / "dist").exists() or not any((root / "dist").glob("*.tar.gz"))
    assert not (root / "pydist" / VARIANT / "windows-x64").exists()


def test_cache_object_default_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "c"))
    assert Cache.default().root == tmp_path / "c"
