"""A checkout of the reference system built in place: outputs where its `package.json` and its
`.gitignore` expect them, nothing else in the checkout changed, bad `package.json` refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runenv.cli import main
from support.index import IndexServer
from support.pbs import PY_VERSION
from support.reference import package_json

VARIANT = f"{PY_VERSION}-blocks"
# The reference checkout's own .gitignore (platforma-open/runenv-python-3).
GITIGNORE = "build/\npydist/\nnode_modules/\ndist/\n.turbo\n.cache/\n*.tar.gz\n*.tgz\n*.zip\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def checkout(tmp_path: Path, pbs: tuple[Path, str]) -> Path:
    """A committed reference-shaped checkout (runenv-python-3/) whose variant pins the PBS
    stand-in."""
    root = tmp_path / "runenv-python-3"
    folder = root / f"python-{VARIANT}"
    (folder / "linux-x64" / "bin").mkdir(parents=True)
    (folder / "linux-x64" / "bin" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    config = {
        "platforms": ["linux-x64"],
        "python": {"archives": {"linux-x64": {"url": pbs[0].as_uri(), "sha256": pbs[1]}}},
        "packages": {
            "dependencies": ["rtpure==1.0"],
            "copyFiles": [{"from": "linux-x64/bin/", "to": "bin/"}],
        },
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "package.json").write_text(json.dumps(package_json(VARIANT, config), indent=2))
    (root / "shared-config.json").write_text('{"build": {"timeout": 300}}\n')
    (root / "package.json").write_text('{"name": "runenv-python-3", "private": true}\n')
    (root / "pnpm-workspace.yaml").write_text(f"packages:\n  - python-{VARIANT}\n")
    (root / ".gitignore").write_text(GITIGNORE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "checkout")
    return root


def test_built_in_place_from_the_root_and_from_the_variant_folder(
    checkout: Path,
    pkg_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = checkout
    monkeypatch.chdir(root)
    assert main(["-q", "build", VARIANT, "--index-url", pkg_server.index_url]) == 0
    folder = root / f"python-{VARIANT}"
    tree = folder / "pydist" / "linux-x64"  # the package.json's root, which pl-pkg packs
    assert (tree / "bin" / "python").exists() and (tree / "bin" / "tool.sh").is_file()
    assert sorted(p.name.split("-")[0] for p in (tree / "packages").iterdir()) == [
        "rtdep",
        "rtpure",
    ]
    manifest = json.loads((root / "dist" / f"runenv-{VARIANT}-linux-x64.json").read_text())
    assert manifest["layout"] == "wheelhouse"
    assert manifest["runtime_env"] == {"PYTHONUNBUFFERED": "1"}  # package.json's envVars
    assert not (folder / "dist").exists()  # the variant's dist/ is what npm publishes
    # Nothing else in the checkout changed: only the lock is new.
    status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status == [f"?? python-{VARIANT}/pylock.linux-x64.toml"]

    # From inside the variant folder, naming nothing (the package.json build script).
    monkeypatch.chdir(folder / "linux-x64")
    capsys.readouterr()
    assert main(["build", "--index-url", pkg_server.index_url]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("artifact_change", "expected"),
    [
        (None, "declares no artifact of type environment with runtime python"),
        ({"roots": {"linux-x64": "../elsewhere"}}, "must stay inside the variant folder"),
        ({"roots": {"linux-x64": "/abs/root"}}, "must be a relative path"),
        ({"binDir": "bin/../../x"}, "must stay inside the variant folder"),
        ({"envVars": ["NO_EQUALS_SIGN"]}, "is not NAME=value"),
    ],
)
def test_bad_package_json_is_one_line_and_nothing_written(
    checkout: Path,
    capsys: pytest.CaptureFixture[str],
    artifact_change: dict[str, object] | None,
    expected: str,
) -> None:
    root = checkout
    path = root / f"python-{VARIANT}" / "package.json"
    data = json.loads(path.read_text())
    if artifact_change is None:
        del data["block-software"]
    else:
        data["block-software"]["entrypoints"]["main"]["environment"]["artifact"].update(
            artifact_change
        )
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["--project", str(root), "build", VARIANT]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"python-{VARIANT}/package.json" in err[0] and expected in err[0]
    status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status == [f" M python-{VARIANT}/package.json"]  # the test's own edit, nothing else


def test_platforms_are_the_package_json_roots_unless_the_config_names_them(checkout: Path) -> None:
    from runenv.config.load import load_variant
    from runenv.platforms import Platform

    root = checkout
    folder = root / f"python-{VARIANT}"
    config = json.loads((folder / "config.json").read_text())
    del config["platforms"]
    (folder / "config.json").write_text(json.dumps(config))
    data = package_json(VARIANT, {"platforms": ["macosx-aarch64", "linux-x64"]})
    (folder / "package.json").write_text(json.dumps(data))
    vc = load_variant(root, VARIANT)
    assert vc.platforms == (Platform.LINUX_X64, Platform.MACOSX_AARCH64)
    assert vc.folder == folder
