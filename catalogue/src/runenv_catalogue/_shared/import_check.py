"""The import check, run as a script by a runtime's own interpreter (any Python 3):
`python -I -B import_check.py MODE MODULE...`; runenv's check and the catalogue's `check`
run this file.

One process imports everything (fast); each failure is caught and reported by name. `-B`: no
.pyc is written into the tree, which would make the archive differ between builds; the
shipped ones are read. With MODE "bytecode", every module loaded from a .py of the tree must
have a valid hash-based .pyc (the test importlib makes before using one): the shipped bytecode
is what runs, not a compile of its own. "bytecode-but-test-suites" exempts the modules of
packages' test suites, shipped as source (the rule of runenv's
`bytecode_compiler.is_test_suite`);
"-" checks imports only. Prints one line: `RUNENV-CHECK {"prefix", "failures", "no_bytecode"}`.
"""

# Any Python 3.6+ a runtime may have: annotations are quoted rather than taken from __future__,
# and nothing is imported but what the check needs (every module this script loads from the
# tree is checked for bytecode too).
# ruff: noqa: PTH123, PTH206

import importlib
import importlib.util
import json
import os
import sys
import sysconfig

# The names that make a module part of a test suite (runenv's `modules.is_test_suite` reads
# this set too).
TEST_SUITES = frozenset({"test", "tests", "_tests", "_umath_tests", "_multiarray_tests"})


def _test_suite(path: str, libs: "list[str]") -> bool:
    for lib in libs:
        if path.startswith(lib):
            return not TEST_SUITES.isdisjoint(path[len(lib) : -len(".py")].split(os.sep))
    return False


def _has_bytecode(spec: object, origin: str) -> bool:
    try:
        with open(origin, "rb") as f:
            data = f.read()
        # A module a custom loader respecced without `cached` (setuptools' distutils hack:
        # `distutils` is setuptools._distutils) was first loaded from its file's bytecode.
        with open(
            getattr(spec, "cached", None) or importlib.util.cache_from_source(origin), "rb"
        ) as f:
            head = f.read(16)
    except (OSError, TypeError):
        head = b""
    return (
        len(head) == 16
        and head[:4] == importlib.util.MAGIC_NUMBER
        and bool(head[4] & 1)
        and head[8:16] == importlib.util.source_hash(data)
    )


def main(mode: str, names: "list[str]") -> None:
    failures = {}  # type: dict[str, str]
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    no_bytecode = []  # type: list[str]
    root = os.path.realpath(sys.prefix) + os.sep
    libs = [os.path.realpath(sysconfig.get_path(k)) + os.sep for k in ("purelib", "stdlib")]
    for name, module in sorted(sys.modules.items()) if mode.startswith("bytecode") else ():
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None) or ""
        if not (origin.endswith(".py") and os.path.realpath(origin).startswith(root)):
            continue
        if mode == "bytecode-but-test-suites" and _test_suite(os.path.realpath(origin), libs):
            continue
        if not _has_bytecode(spec, origin):
            no_bytecode.append(name)
    result = {"prefix": sys.prefix, "failures": failures, "no_bytecode": no_bytecode}
    sys.stdout.write("RUNENV-CHECK " + json.dumps(result) + "\n")


if __name__ == "__main__":
    if not sys.flags.isolated and not getattr(sys.flags, "safe_path", False):
        # Run without -I (a block's command): the working folder first on the path, as `-c`
        # puts it, not this file's folder.
        sys.path[0] = ""
    main(sys.argv[1], sys.argv[2:])
