"""The reference system's keys at work in real builds on the loopback index: the resolution
policy (warnings, manifest `skipped`, strictMissing), buildWheel recipes, noDeps, git
dependencies, uv overrides with the conflict paragraph, and pure-Python sdists in cross builds."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv.cli import main
from support.index import IndexServer
from support.project import (
    SITE,
    VARIANT,
    cli_stderr,
    manifest_of,
    run_python,
    run_unpacked,
    unpack,
)
from support.reference import make_git_repo


def config_toml(root: Path) -> Path:
    return root / "versions" / VARIANT / "config.toml"


def test_policy_skips_with_a_warning_and_records_it(
    new_project: Callable[..., Path], ref_server: IndexServer
) -> None:
    extra = "[packages.resolution]\nstrictMissing = false\nonlyBinaryList = ['rtpuresrc']\n"
    root = new_project(["rtpure==1.0", "rtsrconly==1.0", "rtpuresrc==1.0"], extra=extra)
    err = cli_stderr(root, ref_server, "build")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err
    assert any(
        "linux-x64: rtsrconly skipped: no wheel for linux-x64" in w
        and "packages.resolution does not allow building it from source" in w
        for w in warnings
    ), warnings
    assert any("rtpuresrc skipped" in w and "onlyBinaryList" in w for w in warnings), warnings
    manifest = manifest_of(root)
    skipped = {s["name"]: s["reason"] for s in manifest["skipped"]}  # type: ignore[index,union-attr]
    assert "does not allow building" in skipped["rtsrconly"]
    assert "onlyBinaryList" in skipped["rtpuresrc"]
    installed = {p["name"] for p in manifest["packages"]}  # type: ignore[index,union-attr]
    assert installed == {"rtpure", "rtdep"}

    # strictMissing: the same build fails, naming the package and the platform.
    text = config_toml(root).read_text().replace("strictMissing = false", "strictMissing = true")
    config_toml(root).write_text(text)
    err = cli_stderr(root, ref_server, "build", code=1)
    assert "strictMissing" in err and "rtsrconly" in err and "linux-x64" in err


def test_build_wheel_recipe_installs_build_requires_and_passes_config_settings(
    new_project: Callable[..., Path], tmp_path: Path, ref_server: IndexServer
) -> None:
    extra = (
        "[packages.resolution]\nstrictMissing = true\n"
        "[packages.buildWheel.rtrecipe.linux-x64]\nreason = 'sdist only'\n"
        "buildRequires = ['rtdep==1.0']\n"
        "configSettings = ['mode=fast', 'flag=a', 'flag=b']\n"
    )
    root = new_project(["rtrecipe==1.0"], extra=extra)
    cli_stderr(root, ref_server, "build")
    manifest = manifest_of(root)
    record = next(p for p in manifest["packages"] if p["name"] == "rtrecipe")  # type: ignore[index,union-attr]
    assert record["from_source"] is True
    runtime = unpack(root / "dist" / f"runenv-{VARIANT}-linux-x64.tar.gz", tmp_path / "u")
    built = json.loads(
        run_python(
            runtime,
            "import importlib.resources as r; print(r.files('rtrecipe').joinpath('built.json')"
            ".read_text())",
        )
    )
    assert built == {"settings": {"mode": "fast", "flag": ["a", "b"]}, "rtdep": "rtdep 1.0"}


def test_git_dependency_locked_to_full_commit_built_and_no_deps(
    new_project: Callable[..., Path], tmp_path: Path, ref_server: IndexServer
) -> None:
    repo = tmp_path / "rtgit-src"
    commit = make_git_repo(repo)
    dep = f"git+{repo.as_uri()}@{commit[:7]}"
    extra = "[packages.resolution]\nallowSourceList = ['rtgit_src']\nstrictMissing = true\n"
    root = new_project(["rtpure==1.0", dep], extra=extra)
    text = (
        config_toml(root)
        .read_text()
        .replace("[packages]\n", "[packages]\nnoDeps = ['rtgit-src']\n")
    )
    config_toml(root).write_text(text)
    cli_stderr(root, ref_server, "build")
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    entry = next(p for p in lock["packages"] if p["name"] == "rtgit")
    assert entry["vcs"]["commit-id"] == commit
    # noDeps: rtgit's own rtdep>=1 is not resolved; rtdep is there only through rtpure.
    names = {p["name"] for p in lock["packages"]}
    assert names == {"rtgit", "rtpure", "rtdep"}
    assert run_unpacked(root, tmp_path / "u", "import rtgit; print(rtgit.FROM)") == "git rtgit"
    record = next(p for p in manifest_of(root)["packages"] if p["name"] == "rtgit")  # type: ignore[index,union-attr]
    assert record["from_source"] is True

    # Without rtpure, noDeps leaves rtdep out altogether.
    text = config_toml(root).read_text().replace('"rtpure==1.0", ', "")
    config_toml(root).write_text(text)
    cli_stderr(root, ref_server, "lock")
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    assert {p["name"] for p in lock["packages"]} == {"rtgit"}


def test_git_dependency_refused_where_policy_forbids_source(
    new_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dep = "git+https://git.example.com/org/rtgit.git@e0548be"
    extra = "[packages.resolution]\nallowSourceList = ['other']\n"
    root = new_project([dep], extra=extra)
    assert main(["--project", str(root), "config", VARIANT, "--platform", "linux-x64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"versions/{VARIANT}/config.toml: packages.dependencies: {dep}" in err
    assert "add rtgit to packages.resolution.allowSourceList" in err


def test_git_dependency_over_loopback_http(
    new_project: Callable[..., Path], tmp_path: Path, ref_server: IndexServer
) -> None:
    """The same git dependency served by a dumb-HTTP git server on 127.0.0.1."""
    import subprocess

    from support.http import LoopbackServer

    commit = make_git_repo(tmp_path / "work" / "rtgit")
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(tmp_path / "work" / "rtgit"), served / "rtgit.git"],
        check=True,
    )
    subprocess.run(["git", "-C", served / "rtgit.git", "update-server-info"], check=True)
    with LoopbackServer(served) as git_server:
        dep = f"rtgit @ git+{git_server.url}/rtgit.git@{commit}"
        root = new_project([dep])
        cli_stderr(root, ref_server, "lock")
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    entry = next(p for p in lock["packages"] if p["name"] == "rtgit")
    assert entry["vcs"]["commit-id"] == commit
    assert {p["name"] for p in lock["packages"]} == {"rtgit", "rtdep"}


def test_conflict_paragraph_then_override_resolves(
    new_project: Callable[..., Path], tmp_path: Path, ref_server: IndexServer
) -> None:
    root = new_project(["rtcudf==1.0", "rtarrow==2.0"])
    err = cli_stderr(root, ref_server, "lock", code=1).strip()
    assert len(err.splitlines()) == 1, err
    assert "rtcudf==1.0 needs rtarrow>=1.0,<2, but the variant pins rtarrow==2.0" in err
    assert (
        f'add rtarrow = "2.0" under [packages.overrides] in versions/{VARIANT}/config.toml' in err
    )
    assert err.endswith("with it the lock succeeds (runenv resolved it)")

    text = config_toml(root).read_text() + '[packages.overrides]\nrtarrow = "2.0"\n'
    config_toml(root).write_text(text)
    cli_stderr(root, ref_server, "build")
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    assert lock["tool"]["runenv"]["overrides"] == ["rtarrow==2.0"]
    versions = {p["name"]: p["version"] for p in lock["packages"]}
    assert versions == {"rtcudf": "1.0", "rtarrow": "2.0"}
    runtime = unpack(root / "dist" / f"runenv-{VARIANT}-linux-x64.tar.gz", tmp_path / "u")
    assert run_python(runtime, "import rtcudf, rtarrow; print(rtarrow.VERSION)") == "2.0"


def test_pure_sdist_built_once_on_host_for_every_platform(
    new_cross_project: Callable[..., Path],
    tmp_path: Path,
    ref_server: IndexServer,
    cold_cache: Path,
) -> None:
    commit = make_git_repo(tmp_path / "rtgit")  # a pure git dependency goes the same way
    deps = ["rtpure==1.0", "rtpuresrc==1.0", f"rtgit @ git+{(tmp_path / 'rtgit').as_uri()}"]
    root = new_cross_project(deps)
    cli_stderr(root, ref_server, "build", "--platform", "all")
    wheels: dict[str, set[str]] = {"rtpuresrc": set(), "rtgit": set()}
    for manifest_path in (root / "dist").glob("*.json"):
        manifest = json.loads(manifest_path.read_text())
        for name, expected in (("rtpuresrc", "rtpuresrc-1.0"), ("rtgit", "rtgit-0.3")):
            record = next(p for p in manifest["packages"] if p["name"] == name)
            assert record["from_source"] is True
            assert record["wheel"] == f"{expected}-py3-none-any.whl"
            wheels[name].add(record["sha256"])
    assert len(list((root / "dist").glob("*.json"))) == 5
    # One wheel each, built once, shared by every platform.
    assert {k: len(v) for k, v in wheels.items()} == {"rtpuresrc": 1, "rtgit": 1}
    built = list(cold_cache.rglob("rtpuresrc-1.0-py3-none-any.whl"))
    assert len(built) == 1, built
    assert len(list(cold_cache.rglob("rtgit-0.3-py3-none-any.whl"))) == 1
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.macosx-x64.toml").read_text())
    assert next(p for p in lock["packages"] if p["name"] == "rtgit")["vcs"]["commit-id"] == commit
    win = root / "pydist" / VARIANT / "windows-x64" / "Lib" / "site-packages" / "rtpuresrc"
    assert (win / "__init__.py").is_file()
    assert SITE  # the host runtime was checked by import on this machine


def test_compiled_sdist_still_needs_native_runner(
    new_cross_project: Callable[..., Path], ref_server: IndexServer
) -> None:
    root = new_cross_project(["rtpuresrc==1.0", "rtsrconly==1.0"])
    err = cli_stderr(root, ref_server, "build", "--platform", "linux-aarch64", code=1)
    assert "cross build for linux-aarch64 needs 1 source build(s)" in err
    assert "rtsrconly 1.0 on linux-aarch64" in err and "rtpuresrc" not in err


@pytest.mark.network
def test_real_sdist_only_pure_package_builds_every_platform_from_linux(
    new_cross_project: Callable[..., Path],
    tmp_path: Path,
    cold_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python-louvain 0.16 ships no wheel at all (the reference builds it on four runners)."""
    monkeypatch.setenv("RUNENV_INDEX_URL", "")
    extra = "[packages.resolution]\nallowSourceList = ['python-louvain']\nstrictMissing = true\n"
    root = new_cross_project(["python-louvain==0.16"], extra)
    assert main(["-q", "--project", str(root), "build", VARIANT, "--platform", "all"]) == 0
    shas = set()
    for manifest_path in sorted((root / "dist").glob("*.json")):
        manifest = json.loads(manifest_path.read_text())
        record = next(p for p in manifest["packages"] if p["name"] == "python-louvain")
        assert record["from_source"] is True and record["wheel"].endswith("-py3-none-any.whl")
        shas.add(record["sha256"])
    assert len(shas) == 1
    runtime = unpack(root / "dist" / f"runenv-{VARIANT}-linux-x64.tar.gz", tmp_path / "u")
    code = (
        "import community as c, networkx as n; print(len(c.best_partition(n.karate_club_graph())))"
    )
    assert run_python(runtime, code) == "34"


@pytest.mark.network
def test_real_pypi_conflict_paragraph_and_its_override(
    new_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uv's real wording, from PyPI: requests 2.32.3 wants urllib3>=1.21.1,<3."""
    monkeypatch.setenv("RUNENV_INDEX_URL", "")
    root = new_project(["requests==2.32.3", "urllib3==1.20"])
    args = ["-q", "--project", str(root), "lock", VARIANT]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "requests==2.32.3 needs urllib3>=1.21.1,<3, but the variant pins urllib3==1.20" in err
    assert 'add urllib3 = "1.20" under [packages.overrides]' in err
    config_toml(root).write_text(
        config_toml(root).read_text() + '[packages.overrides]\nurllib3 = "1.20"\n'
    )
    assert main(args) == 0
    lock = tomllib.loads((root / "versions" / VARIANT / "pylock.linux-x64.toml").read_text())
    assert {p["name"]: p["version"] for p in lock["packages"]}["urllib3"] == "1.20"
    assert lock["tool"]["runenv"]["overrides"] == ["urllib3==1.20"]
