"""The build hash: made of a named set of inputs, and it changes exactly when the output would.

A `Plan` field must be hashed (a `BuildInputs` field of the same name) or listed, with the
reason, in `PLAN_FIELDS_NOT_HASHED`; a field added to the plan without either fails here.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from runenv.artifact.manifest import PLAN_FIELDS_NOT_HASHED, BuildInputs
from runenv.config.dependency import parse_git
from runenv.config.load import load_variant
from runenv.config.plan import BuildRecipe, CopyStep, Plan, SourcePolicy, make_plan
from runenv.config.schema import Layout
from runenv.platforms import Platform

PYTHON_SHA = "a" * 64
LOCK = b"lock-version = '1.0'\n"
MTIME = 315532800
NOT_FROM_PLAN = {"python_sha256", "lock_sha256", "source_date_epoch"}


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """A plan made from a real variant config, every hashed setting given a value."""
    folder = tmp_path / "versions" / "3.12.10-h"
    (folder / "files" / "bin").mkdir(parents=True)
    tool = folder / "files" / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    (folder / "files" / "extra.txt").write_text("extra\n")
    (tmp_path / "shared-config.toml").write_text("")
    (folder / "config.toml").write_text(
        textwrap.dedent(
            """\
            platforms = ["linux-x64", "macosx-aarch64"]
            [registries]
            additional = ["https://extra.example/simple"]
            [packages]
            dependencies = ["rtpure==1.0", "rtnative==1.0", "gone==1.0"]
            overrides = { rtdep = "1.0" }
            [packages.skip.gone]
            linux-x64 = "not on Linux"
            [packages.forceSource.rtnative]
            linux-x64 = "patched"
            [[packages.copyFiles]]
            from = "files/"
            to = "share/"
            [runtime]
            env = { RT_MODE = "ABI" }
            [check]
            allowImportFailures = { rtnative = "needs a GPU" }
            """
        )
    )
    return make_plan(load_variant(tmp_path, "3.12.10-h"), Platform.LINUX_X64)


def digest(
    plan: Plan, *, python_sha: str = PYTHON_SHA, lock: bytes = LOCK, mtime: int = MTIME
) -> str:
    return BuildInputs.of(plan, python_sha, lock, mtime).digest()


def other_values(plan: Plan, tmp_path: Path) -> dict[str, Any]:
    """For each Plan field, a different value (same type) to put in its place."""
    elsewhere = tmp_path / "other-files"
    elsewhere.mkdir()
    (elsewhere / "other.txt").write_text("other\n")
    return {
        "variant": "3.12.10-other",
        "platform": Platform.MACOSX_AARCH64,
        "python_version": "3.12.11",
        "requirements": ("rtpure==2.0",),
        "overrides": ("rtdep==2.0",),
        "no_deps": frozenset({"rtpure"}),
        "git": (parse_git("rtgit @ git+https://git.example.com/org/rtgit.git@v1"),),
        "policy": SourcePolicy(strict_missing=True),
        "build_wheel": {"rtpure": BuildRecipe("no wheel", ("setuptools",), (("k", "v"),))},
        "skipped": {"gone": "another reason"},
        "force_source": {"rtpure": "patched"},
        "copy_files": (CopyStep(elsewhere, PurePosixPath("share")),),
        "registries": ("https://other.example/simple",),
        "runtime_env": {"RT_MODE": "API"},
        "allow_import_failures": {},
        "glibc": (2, 17),
        "macos": (12, 0),
        "timeout": plan.timeout + 1,
        "parallel_downloads": not plan.parallel_downloads,
        "enable_logging": not plan.enable_logging,
        "compile_bytecode": not plan.compile_bytecode,
        "compile_test_bytecode": not plan.compile_test_bytecode,
        "layout": Layout.WHEELHOUSE,
        "bin_dir": PurePosixPath("pybin"),
        "root": tmp_path / "elsewhere-root",
    }


def test_every_plan_field_is_hashed_or_excluded_with_a_reason() -> None:
    plan_fields = {f.name for f in dataclasses.fields(Plan)}
    hashed = {f.name for f in dataclasses.fields(BuildInputs)} - NOT_FROM_PLAN
    excluded = set(PLAN_FIELDS_NOT_HASHED)
    assert not hashed & excluded, "a field cannot be both hashed and excluded"
    missing = plan_fields - hashed - excluded
    assert not missing, (
        f"Plan fields {sorted(missing)} are neither hashed (BuildInputs) nor excluded "
        "(PLAN_FIELDS_NOT_HASHED, with why they cannot change the output)"
    )
    assert hashed | excluded == plan_fields, "BuildInputs names a field the plan lacks"
    assert all(len(why) > 20 for why in PLAN_FIELDS_NOT_HASHED.values())


def test_each_hashed_field_changes_the_hash_and_no_excluded_one_does(
    plan: Plan, tmp_path: Path
) -> None:
    base = digest(plan)
    assert digest(plan) == base  # stable
    values = other_values(plan, tmp_path)
    assert set(values) == {f.name for f in dataclasses.fields(Plan)}, "give every field a value"
    for name, value in values.items():
        assert getattr(plan, name) != value, name
        changed = digest(dataclasses.replace(plan, **{name: value}))
        if name in PLAN_FIELDS_NOT_HASHED:
            assert changed == base, f"{name} is excluded but changes the hash"
        else:
            assert changed != base, f"{name} is hashed but does not change the hash"


def test_inputs_outside_the_plan_change_the_hash(plan: Plan) -> None:
    base = digest(plan)
    assert digest(plan, python_sha="b" * 64) != base
    assert digest(plan, lock=LOCK + b"# changed\n") != base
    assert digest(plan, mtime=MTIME + 1) != base


def test_copied_files_are_hashed_by_content_not_by_location(plan: Plan, tmp_path: Path) -> None:
    base = digest(plan)
    (source,) = {step.source for step in plan.copy_files}
    moved = tmp_path / "moved"
    source.rename(moved)
    relocated = dataclasses.replace(
        plan, copy_files=tuple(CopyStep(moved, s.dest) for s in plan.copy_files)
    )
    assert digest(relocated) == base  # the same files from another folder
    (moved / "extra.txt").write_text("edited\n")
    edited = digest(relocated)
    assert edited != base
    (moved / "bin" / "tool").chmod(0o644)
    not_executable = digest(relocated)
    assert not_executable not in (base, edited)  # the exec bit is shipped too
    (moved / "bin" / "new").write_text("new\n")
    assert digest(relocated) not in (base, edited, not_executable)


def test_the_plan_of_a_changed_reason_rebuilds_only_where_the_reason_is_shipped(
    plan: Plan,
) -> None:
    base = digest(plan)
    # A skip's reason is in the manifest; a forced source build's reason is not.
    assert digest(dataclasses.replace(plan, skipped={"gone": "changed"})) != base
    assert digest(dataclasses.replace(plan, force_source={"rtnative": "changed"})) == base
