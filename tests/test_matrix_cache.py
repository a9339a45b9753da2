"""Wheels kept in CI's cache between runs: each wheels target has a key computed offline from its
committed lock and plan (`built_wheels.wheels_key`) that changes when the wheels it builds would,
and `runenv matrix --cached-wheels` drops the wheels jobs whose key CI's cache holds while the
build entries still name the keys to restore."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from runenv.ci.estimate import estimate
from runenv.ci.matrix import (
    CACHE_PREFIX,
    all_keys,
    build_entries,
    key_field,
    parse_cached_keys,
    plan_target,
    plan_targets,
    wheel_entries,
)
from runenv.ci.render import matrix_data
from runenv.config.load import load_variant
from runenv.config.plan import Plan, make_plan
from runenv.errors import UsageError
from runenv.fetch import wheels
from runenv.lock import resolve
from runenv.lock.pylock import read_lock
from runenv.platforms import Platform
from runenv.sources import wheel_cache
from runenv.sources.built_wheels import wheels_key
from support.cli import run_main
from support.shipped import TWO_SOURCE_BUILDS, copy_shipped

REPO = Path(__file__).resolve().parents[1]
ATLS = "3.12.10-atls"  # compiles freesasa and builds pdbfixer on both its platforms
MAC = Platform.MACOSX_AARCH64


def _copy(tmp_path: Path, name: str = ATLS) -> Path:
    """A project holding the shipped atls variant (as `name`), its locks as committed."""
    return copy_shipped(tmp_path, ATLS, name=name)


def _key(project: Path, platform: Platform = MAC, variant: str = ATLS) -> str:
    return plan_target(project, variant, platform).wheels_key


def _edit_lock(project: Path, platform: Platform, package: str, sha256: str) -> None:
    """Replace the first sha256 of `package` in the variant's lock for `platform`."""
    path = project / "versions" / ATLS / f"pylock.{platform.value}.toml"
    text, n = re.subn(
        rf'(name = "{package}"\n(?:.*\n)*?.*?sha256 = ")[0-9a-f]{{64}}"',
        rf'\g<1>{sha256}"',
        path.read_text(),
        count=1,
    )
    assert n == 1
    path.write_text(text)


def _sources(platform: Platform) -> tuple[Plan, list[wheels.Artifact]]:
    vc = load_variant(REPO, ATLS)
    plan = make_plan(vc, platform)
    selected = wheels.select_for_plan(read_lock(resolve.lock_path(vc.folder, platform)), plan)
    return plan, [a for a in selected.artifacts if a.from_source]


def test_the_key_is_the_build_cache_keys_of_the_target_sources() -> None:
    plan, sources = _sources(MAC)
    assert sorted(a.name for a in sources) == ["freesasa", "pdbfixer"]
    key = _key(REPO)
    assert re.fullmatch(r"[0-9a-f]{64}", key) and key == wheels_key(plan, sources)
    assert wheels_key(plan, list(reversed(sources))) == key  # the order of the lock is not in it
    assert _key(REPO) == key  # planned again: the same
    # A target without source builds has none.
    assert plan_target(REPO, "3.12.10", MAC).wheels_key == ""


def test_the_key_holds_for_the_same_lock_and_config_anywhere(tmp_path: Path) -> None:
    key, linux = _key(REPO), _key(REPO, Platform.LINUX_X64)
    project = _copy(tmp_path)
    assert _key(project) == key and _key(project, Platform.LINUX_X64) == linux
    # What does not decide the source wheels leaves it alone: a wheel-only package's file, a
    # config key the source builds do not read.
    _edit_lock(project, MAC, "certifi", "0" * 64)
    with (project / "versions" / ATLS / "config.toml").open("a") as fh:
        fh.write('\nallowImportFailures = { "not_there" = "a test" }\n')  # into its [check]
    assert _key(project) == key


def test_the_key_changes_with_the_sdist(tmp_path: Path) -> None:
    key, linux = _key(REPO), _key(REPO, Platform.LINUX_X64)
    project = _copy(tmp_path)
    _edit_lock(project, MAC, "freesasa", "1" * 64)
    assert _key(project) != key
    assert _key(project, Platform.LINUX_X64) == linux  # its own lock is unchanged


def test_the_key_changes_with_the_platform_python_and_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, sources = _sources(MAC)
    key = wheels_key(plan, sources)
    # The same sources for another platform, another Python, another macOS floor.
    assert wheels_key(make_plan(load_variant(REPO, ATLS), Platform.LINUX_X64), sources) != key
    assert wheels_key(dataclasses.replace(plan, python_version="3.12.11"), sources) != key
    assert wheels_key(dataclasses.replace(plan, macos=(12, 0)), sources) != key
    # runenv's own build recipe.
    monkeypatch.setattr(wheel_cache, "BUILD_RECIPE", wheel_cache.BUILD_RECIPE + 1)
    assert wheels_key(plan, sources) != key
    monkeypatch.undo()
    assert wheels_key(plan, sources) == key
    # A buildWheel recipe for one of the sources, in the variant's config.
    project = _copy(tmp_path / "recipe")
    with (project / "versions" / ATLS / "config.toml").open("a") as fh:
        fh.write(
            '\n[packages.buildWheel.freesasa.macosx-aarch64]\nreason = "patched"\n'
            'buildRequires = ["cython<3"]\n'
        )
    assert _key(project) != key
    # Another variant with the same lock: its index names that variant, so another folder.
    other = _copy(tmp_path / "renamed", "3.12.10-atls2")
    assert _key(other, variant="3.12.10-atls2") != key


def test_cached_wheels_drop_exactly_the_listed_entries(tmp_path: Path) -> None:
    """Two targets with wheels jobs; one key cached: its job goes, the other stays, and the
    build entry still names both keys to restore."""
    root = copy_shipped(tmp_path, "3.12.10", extra=TWO_SOURCE_BUILDS)
    targets = plan_targets(root)
    keys = {t.platform: t.wheels_key for t in targets if t.wheel_job}
    assert set(keys) == {Platform.MACOSX_X64, Platform.WINDOWS_X64}
    first = matrix_data(root)
    assert [e["wheels_key"] for e in first["wheels"]["include"]] == [
        keys[Platform.MACOSX_X64],
        keys[Platform.WINDOWS_X64],
    ]
    unrelated = "f" * 64
    data = matrix_data(root, {keys[Platform.WINDOWS_X64], unrelated})
    assert data["wheels"]["include"] == wheel_entries(targets, {keys[Platform.WINDOWS_X64]})
    assert [e["platform"] for e in data["wheels"]["include"]] == ["macosx-x64"]
    assert [e["platform"] for e in data["cached_wheels"]] == ["windows-x64"]
    assert data["cached_wheels"][0]["wheels_key"] == keys[Platform.WINDOWS_X64]
    # The build entries are the same either way: each names the key to restore per platform.
    assert data["build"] == first["build"]
    [build] = data["build"]["include"]
    assert build == build_entries(targets)[0]
    assert build["wheels"] == "macosx-x64 windows-x64"
    for platform, key in keys.items():
        assert build[key_field(platform)] == key
    assert build[key_field(Platform.MACOSX_AARCH64)] == build[key_field(Platform.LINUX_AARCH64)]
    assert build[key_field(Platform.LINUX_AARCH64)] == ""
    assert data["verify"] == first["verify"]
    # Every key cached: no wheels job at all.
    none = matrix_data(root, all_keys(targets))
    assert none["wheels"] == {"include": []} and len(none["cached_wheels"]) == 2
    # The estimate counts only the wheels jobs left, and all native with the same cache.
    est, first_est = data["estimate"], first["estimate"]
    assert est == estimate(targets, cached={keys[Platform.WINDOWS_X64]})
    assert (est["wheels_cached"], first_est["wheels_cached"]) == (1, 0)
    assert est["plan"]["windows"]["jobs"] == first_est["plan"]["windows"]["jobs"] - 1
    assert est["plan"]["macos"] == first_est["plan"]["macos"]
    assert est["all_native"]["windows"]["minutes"] < first_est["all_native"]["windows"]["minutes"]
    assert est["all_native"]["macos"] == first_est["all_native"]["macos"]


def test_the_cached_keys_file_takes_bare_keys_and_cache_keys() -> None:
    a, b = "a" * 64, "0123456789abcdef" * 4
    text = f"{CACHE_PREFIX}{a}\n\n  {b}  \n{a}\n"
    assert parse_cached_keys(text, "keys.txt") == {a, b}
    assert parse_cached_keys("", "keys.txt") == frozenset()
    for bad in ("runenv-wheels-" + a, a.upper(), a[:-1], f"{CACHE_PREFIX}{a} extra"):
        with pytest.raises(UsageError, match=r"^keys\.txt: line 2: .* is not a wheels key"):
            parse_cached_keys(f"{b}\n{bad}\n", "keys.txt")


def _runenv(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_main("--project", str(REPO), "matrix", *args, stdin=stdin)


def test_matrix_command_with_cached_wheels(tmp_path: Path) -> None:
    key = _key(REPO)
    listing = tmp_path / "cached.txt"
    listing.write_text(f"{CACHE_PREFIX}{key}\n{CACHE_PREFIX}{'e' * 64}\n")
    result = _runenv("--json", "--cached-wheels", str(listing))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(matrix_data(REPO, {key})))
    assert data["wheels"] == {"include": []}
    assert [(e["variant"], e["platform"]) for e in data["cached_wheels"]] == [(ATLS, MAC.value)]
    [atls] = [b for b in data["build"]["include"] if b["variant"] == ATLS]
    assert atls["wheels"] == MAC.value and atls[key_field(MAC)] == key
    assert data["estimate"]["wheels_cached"] == 1

    piped = _runenv("--json", "--cached-wheels", "-", stdin=listing.read_text())
    assert piped.returncode == 0 and piped.stdout == result.stdout

    table = _runenv("--cached-wheels", str(listing))
    assert table.returncode == 0, table.stderr
    out = table.stdout
    skipped = out.split("wheels jobs skipped")[1].split("\n\n")[0]
    assert ATLS in skipped and key[:16] in skipped
    assert out.split("wheels jobs skipped")[0].splitlines()[1] == "(none)"
    assert "estimated minutes with the wheels CI has cached (1 of 2 targets" in out
    assert out.count("macOS + Windows billed minutes:") == 1

    bad = tmp_path / "bad.txt"
    bad.write_text("not-a-key\n")
    refused = _runenv("--cached-wheels", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"runenv: error: {bad}: line 1: 'not-a-key' is not a")
    assert len(refused.stderr.strip().splitlines()) == 1
    missing = _runenv("--json", "--cached-wheels", str(tmp_path / "absent.txt"))
    assert missing.returncode == 2 and "absent.txt: cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stdout == ""
