"""The importable top-level names of a runtime, read from what its distributions installed.

One rule for both places that need the list: the manifest records each package's names (from
the files its wheel wrote), and the import check imports every name that the RECORD of each
distribution in the tree declares, plus modules that copyFiles put in site-packages.

A package is a directory with an `__init__` module; a module is a `.py` file or an extension
(`.so`, `.pyd`); names starting with `_` count (`_cffi_backend`). A directory without
`__init__` is a namespace package (PEP 420): the search goes on below it to the first regular
packages and modules, named with dots (`google.protobuf`, `google._upb._message`). Importing
those imports the namespace too and runs the code that can fail; the namespace alone imports
whenever its directory exists, so it checks nothing. As for any package, deeper sub-packages
are not imported: they may need optional dependencies.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from runenv._shared.import_check import TEST_SUITES as TEST_SUITES
from runenv.install.installed import dist_infos, record_paths

_EXTENSION_SUFFIXES = (".so", ".pyd")

# TEST_SUITES (from the import check's script, which tolerates missing bytecode in them):
# module names that make a test suite, wherever they stand in a dotted name: the names the
# reference's checker skips (`*.tests`, `*._tests`, `*.test`, `*._umath_tests`,
# `*._multiarray_tests`), and a top-level `tests` folder that a wheel ships by mistake
# (olga 1.3.0's, whose modules import pytest).

STRAY_FOLDERS = frozenset({"scripts", "examples", "docs", "benchmarks"})
"""A source tree's folders that a wheel ships by mistake as top-level namespaces (no
`__init__.py`; setuptools' namespace discovery picks them up): olga 1.3.0's
`scripts/compare_pgen_values_with_ulp.py` is a developer's tool importing click, which olga
does not depend on. No library is imported as `scripts.x`; a regular package of such a name
(with `__init__.py`) is checked like any other."""

TEST_SUITE_REASON = "test suite"
STRAY_REASON = "a source tree's folder shipped as a top-level namespace (no __init__.py)"


def is_test_suite(module: str) -> bool:
    """Whether the dotted `module` is, or lies in, a test suite (`tests`, `pkg.tests.x`,
    `pkg._tests`, `numpy._core._umath_tests`; not `numpy.testing`, `pkg.mytests`).

    The one rule for both places that care: the import check does not import these names
    (a test suite needs its test runner, which the runtime need not ship), and the bytecode
    stage leaves their files as source unless `[build] compileTestBytecode = true`.
    """
    return not TEST_SUITES.isdisjoint(module.split("."))


def skip_reason(name: str) -> str | None:
    """Why the import check does not import the top-level `name` (`importable`), if it does
    not: a test suite, or a module below a stray top-level namespace (`scripts.tool`: a name
    with a dot is one, see `top_level`)."""
    if is_test_suite(name):
        return TEST_SUITE_REASON
    if "." in name and name.split(".", 1)[0] in STRAY_FOLDERS:
        return STRAY_REASON
    return None


def checked_and_skipped(names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """`names` split into those the import check imports and those it skips, with why."""
    checked: list[str] = []
    skipped: dict[str, str] = {}
    for name in sorted(set(names)):
        reason = skip_reason(name)
        if reason is None:
            checked.append(name)
        else:
            skipped[name] = reason
    return checked, skipped


def top_level(paths: Iterable[str]) -> tuple[str, ...]:
    """Importable top-level names among `paths` (relative to site-packages, `/`-separated).

    `.dist-info`, `.data`, `__pycache__`, `.pth` files, paths outside site-packages (`../`)
    and directories that are not identifiers (`numpy.libs`) give no name.
    """
    paths = list(paths)
    packages = {p.rpartition("/")[0] for p in paths if _module(p.rpartition("/")[2]) == "__init__"}
    names: set[str] = set()
    for path in paths:
        parts = path.split("/")
        if parts[0].endswith((".dist-info", ".data")):
            continue
        for depth in range(1, len(parts)):
            directory = parts[depth - 1]
            if not directory.isidentifier() or directory == "__pycache__":
                break
            if "/".join(parts[:depth]) in packages:
                names.add(".".join(parts[:depth]))
                break
        else:
            module = _module(parts[-1])
            if module and module != "__init__":
                names.add(".".join([*parts[:-1], module]))
    return tuple(sorted(names))


def importable(tree: Path, site_packages: str, copied: Iterable[str] = ()) -> list[str]:
    """Every top-level name of the runtime `tree` (test suites included: the import check
    skips those, `checked_and_skipped`).

    `site_packages` is relative to `tree`; `copied` are the files copyFiles wrote, relative to
    `tree` as the manifest lists them (those outside site-packages are not modules).
    """
    site = tree / site_packages
    names = {name for _, info in dist_infos(site) for name in top_level(record_paths(info))}
    prefix = site_packages.rstrip("/") + "/"
    names.update(top_level(p[len(prefix) :] for p in copied if p.startswith(prefix)))
    return sorted(names)


def _module(filename: str) -> str | None:
    """The module a file defines (`six.py`, `_foo.cpython-312-x86_64-linux-gnu.so`), if any."""
    if filename.endswith(".py"):
        stem = filename[:-3]
    elif filename.endswith(_EXTENSION_SUFFIXES):
        stem = filename.split(".", 1)[0]
        if stem.startswith("lib") and filename == f"{stem}.so":
            # `libfoo.so` without an ABI tag is a shared library a package loads, not a module
            # (extensions are `foo.cpython-312-...so` or `foo.abi3.so`; a bare `.so` named lib*
            # would fail an import that nobody makes).
            return None
    else:
        return None
    return stem if stem.isidentifier() else None
