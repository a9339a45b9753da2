"""The rules runenv and the catalogue package share (`runenv_catalogue/_shared`, imported by
runenv as `runenv._shared`): one copy of each, standard library only, the same files on both
sides, and the host mapping they give."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import runenv_catalogue as rc
from runenv_catalogue import _catalogue

import runenv._shared
from runenv.errors import UsageError
from runenv.platforms import Platform, host_platform, platform_for

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "catalogue" / "src" / "runenv_catalogue" / "_shared"


def test_runenv_carries_every_shared_file_unchanged() -> None:
    """An editable install reads the catalogue's folder through the link, a wheel its copy:
    either way every module of the catalogue's `_shared` is there, byte for byte."""
    ours = Path(runenv._shared.__file__).parent
    names = sorted(p.name for p in SHARED.glob("*.py"))
    assert {"platforms.py", "tar_rules.py", "inputs.py", "redact.py", "import_check.py"} <= set(
        names
    )
    assert sorted(p.name for p in ours.glob("*.py")) == names
    for name in names:
        assert (ours / name).read_bytes() == (SHARED / name).read_bytes(), name


@pytest.mark.parametrize("path", sorted(SHARED.glob("*.py")), ids=lambda p: p.name)
def test_shared_modules_import_the_standard_library_and_each_other_only(path: Path) -> None:
    """They are imported under two package names: an absolute import of either package (or of
    anything not in the standard library) would work on one side only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            tops = [(node.module or "").split(".")[0]]
        else:
            continue
        for top in tops:
            assert top in sys.stdlib_module_names or top == "__future__", (path.name, top)


def test_the_import_check_script_parses_as_python_3_8() -> None:
    """It runs in the runtime's interpreter, whatever its version."""
    source = (SHARED / "import_check.py").read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 8))
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    assert runenv._shared.IMPORT_CHECK.name == "import_check.py"
    assert runenv._shared.IMPORT_CHECK.is_file()


HOSTS = {
    ("linux", "x86_64"): "linux-x64",
    ("linux", "X86_64"): "linux-x64",
    ("linux", "amd64"): "linux-x64",
    ("linux", "aarch64"): "linux-aarch64",
    ("linux", "arm64"): "linux-aarch64",
    ("darwin", "x86_64"): "macosx-x64",
    ("darwin", "arm64"): "macosx-aarch64",
    ("darwin", "ARM64"): "macosx-aarch64",
    ("win32", "AMD64"): "windows-x64",
    ("win32", "ARM64"): None,  # no Windows arm64 runtimes
    ("linux", "i686"): None,
    ("linux", "armv7l"): None,
    ("linux", "x64"): None,
    ("linux", "ppc64le"): None,
    ("linux", ""): None,
    ("cygwin", "x86_64"): None,
    ("freebsd14", "amd64"): None,
    ("emscripten", "wasm32"): None,
    ("", "x86_64"): None,
}


@pytest.mark.parametrize(("sys_platform", "machine"), sorted(HOSTS))
def test_host_mapping(sys_platform: str, machine: str) -> None:
    expected = HOSTS[sys_platform, machine]
    assert _catalogue.platform_for(sys_platform, machine) == expected
    assert platform_for(sys_platform, machine) == (None if expected is None else Platform(expected))


def test_this_machine_is_the_same_platform_for_both() -> None:
    ours: str | None
    try:
        ours = host_platform().value
    except UsageError:
        ours = None
    theirs: str | None
    try:
        theirs = rc.host_platform()
    except rc.UsageError:
        theirs = None
    assert theirs == ours
