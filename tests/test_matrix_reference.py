"""The planner honours the reference system's keys as the build does: a `buildWheel` recipe and
a `forceNoBinaryList` entry need the native runner (a wheels job); what `packages.resolution`
leaves out (no wheel, no permission to build, strictMissing false) does not."""

from __future__ import annotations

import re
from pathlib import Path

from runenv.ci.matrix import plan_targets, verify_entries, wheel_entries
from support.shipped import copy_shipped

REPO = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, config: str) -> Path:
    return copy_shipped(tmp_path, "3.12.10", name="3.12.10-ref", extra=config)


def _native(project: Path) -> dict[str, tuple[str, ...]]:
    return {t.platform.value: t.native_reasons for t in plan_targets(project) if t.native_reasons}


def test_a_build_wheel_recipe_needs_the_native_runner(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        '[packages.buildWheel.scipy.macosx-x64]\nreason = "patched"\n'
        'buildRequires = ["meson-python"]\n',
    )
    native = _native(project)
    assert list(native) == ["macosx-x64"]
    (why,) = native["macosx-x64"]
    assert why.startswith("scipy 1.15.3: forced to source (packages.buildWheel: patched)")
    targets = plan_targets(project)
    assert [e["platform"] for e in wheel_entries(targets)] == ["macosx-x64"]
    verified = {e["platform"] for e in verify_entries(targets)}
    assert {"macosx-x64", "macosx-aarch64"} <= verified


def test_force_no_binary_needs_every_runner_it_applies_to(tmp_path: Path) -> None:
    project = _project(tmp_path, '[packages.resolution]\nforceNoBinaryList = ["joblib"]\n')
    native = _native(project)
    assert sorted(native) == sorted(
        ["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
    )
    assert all(why[0].startswith("joblib 1.6.0: forced to source") for why in native.values())
    targets = plan_targets(project)
    # linux-x64 builds it on the Linux runner itself; the others get wheels jobs.
    foreign = ["linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
    assert [e["platform"] for e in wheel_entries(targets)] == foreign
    assert [e["platform"] for e in verify_entries(targets)] == foreign


def test_what_the_policy_leaves_out_does_not_make_a_target_native(tmp_path: Path) -> None:
    project = _project(tmp_path, "[packages.resolution]\nstrictMissing = false\n")
    win = project / "versions" / "3.12.10-ref" / "pylock.windows-x64.toml"
    text, n = re.subn(
        r'(name = "threadpoolctl"\n(?:.*\n)*?)wheels = \[.*\]\n', r"\1", win.read_text(), count=1
    )
    assert n == 1
    win.write_text(text)
    targets = {t.platform.value: t for t in plan_targets(project)}
    # threadpoolctl has no wheel for Windows now and the policy allows no source build: the
    # build leaves it out with a warning, so the target still cross-builds.
    assert targets["windows-x64"].cross and not targets["windows-x64"].native_reasons
    # Without a policy the same lock builds it from its sdist: native.
    (project / "versions" / "3.12.10-ref" / "config.toml").write_text(
        (REPO / "versions" / "3.12.10" / "config.toml").read_text()
    )
    (why,) = _native(project)["windows-x64"]
    assert why.startswith("threadpoolctl 3.8.0: no wheel for windows-x64")
