"""Test suites (and stray source-tree folders) a wheel ships are not import-checked, and the
manifest says so; a real module that fails still fails the build. Real wheels on a loopback
index, built into a runtime from the PBS stand-in, the archive unpacked and its interpreter run.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv._shared import IMPORT_CHECK
from runenv.install.modules import STRAY_REASON, is_test_suite, skip_reason
from support.dists import write_wheel
from support.index import IndexServer, write_simple_pages
from support.project import (
    SITE,
    VARIANT,
    archive_of,
    build,
    catalogue_check,
    manifest_of,
    run_unpacked,
)

TAG = sys.implementation.cache_tag

# olga 1.3.0's shape: a top-level `tests` folder (no __init__: each module is a top-level
# name) whose modules import pytest, which nothing installs; here a `test` package too.
_OLGA = {
    "rtolga/__init__.py": b"VALUE = 'olga'\n",
    "tests/test_sequence_generation.py": b"import rtpytest_not_installed\n",
    "test/__init__.py": b"import rtpytest_not_installed\n",
    # and a developer's script in a stray `scripts/` folder, importing click (not a dependency)
    "scripts/compare_pgen_values_with_ulp.py": b"import rtclick_not_installed\n",
}


@pytest.fixture
def server(tmp_path: Path) -> IndexServer:
    index = tmp_path / "index"
    write_wheel(index / "files", "rtolga", "1.0", _OLGA)
    broken = {
        "rtbroken/__init__.py": b"import rtmissing_dependency\n",
        # A regular package named like a stray folder is a package: checked.
        "docs/__init__.py": b"import rtmissing_dependency\n",
    }
    write_wheel(index / "files", "rtbroken", "1.0", broken)
    write_simple_pages(index)
    return IndexServer(index)


def test_shipped_test_suites_are_skipped_and_named_in_the_manifest(
    new_project: Callable[..., Path], tmp_path: Path, server: IndexServer
) -> None:
    root = new_project(["rtolga==1.0"])
    with server:
        assert build(root, server) == 0
    check = manifest_of(root)["check"]
    assert isinstance(check, dict)
    assert check["skipped"] == [
        {"module": "scripts.compare_pgen_values_with_ulp", "reason": STRAY_REASON},
        {"module": "test", "reason": "test suite"},
        {"module": "tests.test_sequence_generation", "reason": "test suite"},
    ]
    assert "rtolga" in check["modules"] and "rtcopied" in check["modules"]
    assert not [m for m in check["modules"] if is_test_suite(m)]
    # The bytecode stage follows the same rule: the suites ship as source.
    with tarfile.open(archive_of(root)) as tf:
        names = set(tf.getnames())
    assert f"{SITE}/tests/test_sequence_generation.py" in names
    assert f"{SITE}/tests/__pycache__/test_sequence_generation.{TAG}.pyc" not in names
    assert f"{SITE}/rtolga/__pycache__/__init__.{TAG}.pyc" in names
    assert run_unpacked(root, tmp_path / "rt", "import rtolga; print(rtolga.VALUE)") == "olga"
    # A verify job's check imports what the manifest lists: the suites are not among them.
    verified = catalogue_check(root / "dist" / f"runenv-{VARIANT}-linux-x64.json")
    assert verified.returncode == 0, verified.stderr


def test_a_real_module_that_fails_still_fails_the_build(
    new_project: Callable[..., Path], server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = new_project(["rtolga==1.0", "rtbroken==1.0"])
    with server:
        assert build(root, server) == 1
    err = capsys.readouterr().err
    assert "import check failed for 2 module(s): docs: ModuleNotFoundError" in err, err
    assert "; rtbroken: ModuleNotFoundError: No module named 'rtmissing_dependency'" in err
    assert "tests.test_sequence_generation" not in err and "scripts." not in err
    assert not archive_of(root).exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("tests.conftest", "test suite"),
        ("scripts.compare_pgen_values_with_ulp", STRAY_REASON),
        ("examples.demo", STRAY_REASON),
        ("scripts", None),  # a regular package (a namespace's names have a dot)
        ("rtolga", None),
        ("google.protobuf", None),
    ],
)
def test_what_the_check_skips_and_why(name: str, reason: str | None) -> None:
    assert skip_reason(name) == reason


@pytest.mark.parametrize(
    ("name", "suite"),
    [
        ("tests", True),
        ("test", True),
        ("tests.test_sequence_generation", True),
        ("pkg.tests", True),
        ("pkg._tests", True),
        ("numpy._core._umath_tests", True),
        ("numpy._core._multiarray_tests", True),
        ("numpy.testing", False),
        ("pkg.mytests", False),
        ("test_utils", False),
        ("google.protobuf", False),
    ],
)
def test_one_rule_names_test_suites(name: str, suite: bool) -> None:
    assert is_test_suite(name) is suite


def test_the_check_script_imports_from_the_working_folder_not_its_own(tmp_path: Path) -> None:
    """Run without -I (a block's command), the script has the working folder first on the
    path, as `python -c` had: not its own folder, whose module names would shadow the tree's."""
    (tmp_path / "here_only.py").write_text("")
    (tmp_path / "platforms.py").write_text("raise ImportError('the working folder one')\n")
    out = subprocess.run(
        [sys.executable, "-B", str(IMPORT_CHECK), "-", "here_only", "platforms"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"failures": {"platforms": "ImportError: the working folder one"}' in out
    isolated = subprocess.run(
        [sys.executable, "-I", "-B", str(IMPORT_CHECK), "-", "here_only"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"failures": {"here_only": "ModuleNotFoundError: ' in isolated
