"""`runenv import`: a reference-shaped checkout becomes versions/<variant>/, and then list,
config --platform (every platform) and lock work on the imported variants."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from runenv.cli import main
from runenv.platforms import ALL_PLATFORMS
from support.index import IndexServer
from support.reference import (
    PAYLOAD,
    VARIANTS,
    make_git_repo,
    write_reference_checkout,
)


def test_import_reference_checkout_then_list_and_config_every_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = write_reference_checkout(tmp_path / "runenv-python-3")
    project = tmp_path / "project"
    assert main(["--project", str(project), "import", str(checkout)]) == 0
    out = capsys.readouterr().out
    assert f"shared-config.json -> {project / 'shared-config.json'}" in out
    assert f"imported {len(VARIANTS)} variant(s)" in out
    assert "python-3.12.10-atls/config.json -> " in out and "(4 files)" in out

    # Byte for byte: the configs are the reference's own files.
    for name in VARIANTS:
        assert (project / "versions" / name / "config.json").read_bytes() == (
            checkout / f"python-{name}" / "config.json"
        ).read_bytes()
        # package.json comes along (its binDir and envVars shape the runtime), byte for byte.
        assert (project / "versions" / name / "package.json").read_bytes() == (
            checkout / f"python-{name}" / "package.json"
        ).read_bytes()
    for rel, text in PAYLOAD.items():
        assert (project / "versions" / "3.12.10-atls" / rel).read_text() == text

    assert main(["--project", str(project), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["variant"] for r in rows) == sorted(VARIANTS)
    for name in VARIANTS:
        for platform in ALL_PLATFORMS:
            args = ["--project", str(project), "config", name, "--platform", platform.value]
            assert main([*args, "--json"]) == 0, capsys.readouterr().err
            plan = json.loads(capsys.readouterr().out)
            assert plan["platform"] == platform.value
    # The atls payload lands in the linux-x64 plan's copies.
    main(["--project", str(project), "config", "3.12.10-atls", "--platform", "linux-x64", "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert [c["to"] for c in plan["copy_files"]] == ["bin", "lib/python3.12/site-packages"]

    # Importing again refuses to overwrite; --force replaces.
    assert main(["--project", str(project), "import", str(checkout)]) == 2
    assert "already exist: pass --force" in capsys.readouterr().err
    assert main(["--project", str(project), "import", str(checkout), "--force"]) == 0


def test_import_refuses_bad_checkout_and_leaves_project_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(json.dumps(VARIANTS["3.12.10-clustering"]))
    bad["packages"]["buildWheel"]["kalign-python"]["linux-aarch64"]["buildRequires"] = ["ninja>"]
    checkout = write_reference_checkout(tmp_path / "c", variants={"3.12.10-clustering": bad})
    project = tmp_path / "project"
    assert main(["--project", str(project), "import", str(checkout)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "python-3.12.10-clustering/config.json: "
        "packages.buildWheel.kalign-python.linux-aarch64.buildRequires[0]"
    ) in err
    assert not (project / "versions" / "3.12.10-clustering").exists()
    assert not (project / "shared-config.json").exists()
    assert [p.name for p in project.iterdir()] == []  # nothing written, not even versions/

    # A copyFiles source missing from the checkout is named too.
    checkout = write_reference_checkout(
        tmp_path / "c2", variants={"3.12.10-atls": VARIANTS["3.12.10-atls"]}
    )
    shutil.rmtree(checkout / "python-3.12.10-atls" / "macosx-aarch64" / "bin")
    assert main(["--project", str(project), "import", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert "packages.platformSpecific.macosx-aarch64.copyFiles[0].from" in err
    assert "macosx-aarch64/bin/ is not in the checkout" in err
    assert main(["--project", str(project), "import", str(tmp_path / "project")]) == 2
    assert "not a checkout of the reference system" in capsys.readouterr().err


def test_imported_variants_lock_for_every_platform(
    tmp_path: Path, ref_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "rtgit"
    commit = make_git_repo(repo)
    shared = {
        "registries": {"additional": []},
        "packages": {
            "dependencies": ["rtpure==1.0"],
            "resolution": {"allowSourceAll": False, "strictMissing": False, "onlyBinaryList": []},
        },
        "build": {"enableLogging": True, "parallelDownloads": False, "timeout": 300},
    }
    variants = {
        "3.12.10-pure": {"packages": {"dependencies": ["rtpure==1.0"], "overrides": {}}},
        "3.12.10-git": {
            "packages": {
                "dependencies": ["rtpure==1.0", f"git+{repo.as_uri()}@{commit[:7]}"],
                "noDeps": ["rtgit"],
                "skip": {},
                "platformSpecific": {},
                "resolution": {"allowSourceList": ["rtgit"]},
            }
        },
        "3.12.10-conflict": {
            "packages": {"dependencies": ["rtcudf==1.0", "rtarrow==2.0"], "overrides": {}}
        },
    }
    checkout = write_reference_checkout(tmp_path / "c", shared, variants)
    project = tmp_path / "project"
    assert main(["--project", str(project), "import", str(checkout)]) == 0
    capsys.readouterr()
    index = ["--index-url", ref_server.index_url]
    for name in ("3.12.10-pure", "3.12.10-git"):
        assert (
            main(["-q", "--project", str(project), "lock", name, "--platform", "all", *index]) == 0
        )
        for platform in ALL_PLATFORMS:
            lock = tomllib.loads(
                (project / "versions" / name / f"pylock.{platform.value}.toml").read_text()
            )
            names = {p["name"] for p in lock["packages"]}
            assert {"rtpure", "rtdep"} <= names
            if name.endswith("git"):
                entry = next(p for p in lock["packages"] if p["name"] == "rtgit")
                assert entry["vcs"]["commit-id"] == commit
    # The main-variant case: the pin conflicts; the message proposes the override, which works.
    args = ["-q", "--project", str(project), "lock", "3.12.10-conflict", "--platform", "linux-x64"]
    assert main([*args, *index]) == 1
    err = capsys.readouterr().err
    assert (
        'add "rtarrow": "2.0" to "packages" -> "overrides" in versions/3.12.10-conflict/config.json'
        in err
    )
    config = project / "versions" / "3.12.10-conflict" / "config.json"
    data = json.loads(config.read_text())
    data["packages"]["overrides"] = {"rtarrow": "2.0"}
    config.write_text(json.dumps(data))
    assert main([*args, *index]) == 0
