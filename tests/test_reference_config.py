"""The reference system's config keys: accepted as it writes them, refused when malformed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from runenv.cli import main
from runenv.config.dependency import parse_git
from runenv.config.load import load_variant
from runenv.platforms import ALL_PLATFORMS
from support.reference import SHARED, VARIANTS, write_reference_checkout


def placed(
    tmp_path: Path,
    shared: dict[str, Any] | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The reference configs (by default the real ones) placed as they are: shared-config.json
    and versions/<v>/."""
    checkout = write_reference_checkout(tmp_path / "checkout", shared, variants)
    root = tmp_path / "project"
    (root / "versions").mkdir(parents=True)
    shutil.copy(checkout / "shared-config.json", root / "shared-config.json")
    for folder in checkout.glob("python-*"):
        shutil.copytree(folder, root / "versions" / folder.name.removeprefix("python-"))
    return root


def test_every_reference_variant_loads_and_plans_every_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = placed(tmp_path)
    for variant in VARIANTS:
        vc = load_variant(root, variant)
        for platform in ALL_PLATFORMS:
            code = main(["--project", str(root), "config", variant, "--platform", platform.value])
            assert code == 0, capsys.readouterr().err
        assert vc.config.packages.resolution is not None
    capsys.readouterr()


def _variant(tmp_path: Path, packages: dict[str, object]) -> Path:
    shared = {"packages": {"dependencies": ["rtpure==1.0"]}}
    config = {"packages": {"dependencies": ["rtpure==1.0", "rtdep==1.0"], **packages}}
    return write_reference_checkout(tmp_path, shared, {"3.12.10": config})


@pytest.mark.parametrize(
    ("packages", "key", "words"),
    [
        (
            {"resolution": {"allowSourceList": ["rtpure"]}, "platformSpecific": {"linux-x86": {}}},
            "packages.platformSpecific",
            "unknown platform key 'linux-x86'",
        ),
        (
            {"buildWheel": {"rtpure": {"macos-arm": {"reason": "x"}}}},
            "packages.buildWheel.rtpure",
            "unknown platform key 'macos-arm'",
        ),
        (
            {"buildWheel": {"rtpure": {"linux-x64": {"buildRequires": ["setuptools>="]}}}},
            "packages.buildWheel.rtpure.linux-x64.buildRequires[0]",
            "'setuptools>=' is not a requirement",
        ),
        (
            {"buildWheel": {"rtpure": {"linux-x64": {"configSettings": ["verbose"]}}}},
            "packages.buildWheel.rtpure.linux-x64.configSettings",
            "key=value",
        ),
        (
            {"dependencies": ["git+https://github.com/org/repo.git@"]},
            "packages.dependencies[0]",
            "malformed git URL",
        ),
        (
            {"dependencies": ["git+ftp://example.com/org/repo.git@v1"]},
            "packages.dependencies[0]",
            "malformed git URL",
        ),
        ({"noDeps": ["rtnative"]}, "packages.noDeps[0]", "rtnative is not a dependency"),
        (
            {"resolution": {"strictMissing": "yes"}},
            "packages.resolution.strictMissing",
            "valid boolean",
        ),
        (
            {"resolution": {"allowSourceLists": ["rtpure"]}},
            "packages.resolution.allowSourceLists",
            "unknown key",
        ),
    ],
)
def test_bad_new_keys_are_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    packages: dict[str, object],
    key: str,
    words: str,
) -> None:
    checkout = _variant(tmp_path / "c", packages)
    root = tmp_path / "p"
    (root / "versions" / "3.12.10").mkdir(parents=True)
    shutil.copy(checkout / "python-3.12.10" / "config.json", root / "versions" / "3.12.10")
    code = main(["--project", str(root), "config", "3.12.10"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("runenv: versions/3.12.10/config.json") or "config.json" in err
    assert key in err and words in err, err


def test_git_dependency_forms() -> None:
    bare = parse_git("git+https://github.com/alchemab/parapred-pytorch.git@e0548be")
    assert (bare.name, bare.url, bare.rev) == (
        "parapred-pytorch",
        "https://github.com/alchemab/parapred-pytorch.git",
        "e0548be",
    )
    named = parse_git("parapred @ git+file:///srv/git/repo@main")
    assert (named.name, named.url, named.rev, named.named) == (
        "parapred",
        "file:///srv/git/repo",
        "main",
        True,
    )


def test_shared_resolution_lists_union_and_platform_booleans_win(tmp_path: Path) -> None:
    shared = json.loads(json.dumps(SHARED))
    variant = {
        "packages": {
            "dependencies": ["rtpure==1.0"],
            "resolution": {"allowSourceList": ["Rt_Pure"], "strictMissing": True},
            "platformSpecific": {
                "windows-x64": {"resolution": {"strictMissing": False, "onlyBinaryList": ["X_y"]}}
            },
        }
    }
    root = placed(tmp_path, shared, {"3.12.10": variant})
    from runenv.config.plan import make_plan
    from runenv.platforms import Platform

    vc = load_variant(root, "3.12.10")
    linux = make_plan(vc, Platform.LINUX_X64).policy
    windows = make_plan(vc, Platform.WINDOWS_X64).policy
    assert linux is not None and windows is not None
    assert linux.allow == {"sccoda", "rt-pure"}
    assert linux.only_binary == {"numpy", "scipy"}
    assert windows.only_binary == {"numpy", "scipy", "x-y"}
    assert (linux.strict_missing, windows.strict_missing) == (True, False)


def test_build_wheel_recipe_replaced_whole_and_force_lists_reach_the_plan(tmp_path: Path) -> None:
    from runenv.config.plan import make_plan
    from runenv.platforms import Platform

    recipe = {"reason": "shared", "buildRequires": ["setuptools", "wheel"]}
    shared = {
        "packages": {
            "dependencies": ["rtpure==1.0"],
            "buildWheel": {"rtnative": {"linux-x64": recipe, "windows-x64": recipe}},
            "resolution": {"forceNoBinaryList": ["RT_Pure"]},
        }
    }
    variant = {
        "packages": {
            "buildWheel": {
                "rtnative": {"linux-x64": {"reason": "mine", "configSettings": ["a=1", "a=2"]}}
            }
        }
    }
    root = placed(tmp_path, shared, {"3.12.10": variant})
    vc = load_variant(root, "3.12.10")
    linux = make_plan(vc, Platform.LINUX_X64)
    windows = make_plan(vc, Platform.WINDOWS_X64)
    # The variant's linux-x64 recipe replaced the shared one whole: no build requirements left.
    assert linux.build_wheel["rtnative"].build_requires == ()
    assert linux.build_wheel["rtnative"].settings() == {"a": ["1", "2"]}
    assert windows.build_wheel["rtnative"].build_requires == ("setuptools", "wheel")
    assert linux.force_source == {
        "rtnative": "packages.buildWheel: mine",
        "rt-pure": "packages.resolution.forceNoBinaryList",
    }
    assert "rtnative" not in make_plan(vc, Platform.MACOSX_X64).force_source
