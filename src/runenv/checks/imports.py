"""The check stage, natively: import every top-level module with the runtime's interpreter.

The names come from `runenv.tree.modules.importable` (what the installed distributions' RECORDs
declare, namespace packages and `_`-prefixed modules included), test suites left out
(`runenv.tree.modules.skip_reason`: test suites, stray source-tree folders; the manifest says
which, `check.skipped`).

The tree is checked at a path other than the one it was built in, so a runtime that only works
where it was built fails here rather than on a user's machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runenv._subprocess import run
from runenv.errors import CheckError
from runenv.tree.modules import checked_and_skipped

# One process imports everything (fast); each failure is caught and reported by name.
# `-B`: no .pyc written into the tree, which would make the archive differ between builds; the
# shipped ones are read. With "bytecode" first, every module loaded from a .py of the tree must
# have a valid hash-based .pyc (the test importlib makes before using one): the shipped bytecode
# is what runs, not a compile of its own. "bytecode-but-test-suites" exempts the modules of
# packages' test suites, shipped as source (`bytecode.is_test_suite`, the same rule).
_IMPORT_SCRIPT = """
import importlib, importlib.util, json, os, sys, sysconfig
failures = {}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
no_bytecode = []
root = os.path.realpath(sys.prefix) + os.sep
libs = [os.path.realpath(sysconfig.get_path(k)) + os.sep for k in ("purelib", "stdlib")]
def test_suite(path):
    for lib in libs:
        if path.startswith(lib):
            names = {"test", "tests", "_tests", "_umath_tests", "_multiarray_tests"}
            return not names.isdisjoint(path[len(lib):-len(".py")].split(os.sep))
    return False
mode = sys.argv[1]
for name, module in sorted(sys.modules.items()) if mode.startswith("bytecode") else ():
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) or ""
    if not (origin.endswith(".py") and os.path.realpath(origin).startswith(root)):
        continue
    if mode == "bytecode-but-test-suites" and test_suite(os.path.realpath(origin)):
        continue
    try:
        with open(origin, "rb") as f:
            data = f.read()
        # A module a custom loader respecced without `cached` (setuptools' distutils hack:
        # `distutils` is setuptools._distutils) was first loaded from its file's bytecode.
        with open(spec.cached or importlib.util.cache_from_source(origin), "rb") as f:
            head = f.read(16)
    except (OSError, TypeError):
        head = b""
    if not (
        len(head) == 16 and head[:4] == importlib.util.MAGIC_NUMBER and head[4] & 1
        and head[8:16] == importlib.util.source_hash(data)
    ):
        no_bytecode.append(name)
print("RUNENV-CHECK " + json.dumps(
    {"prefix": sys.prefix, "failures": failures, "no_bytecode": no_bytecode}))
"""


@dataclass(frozen=True)
class CheckResult:
    prefix: str
    imported: tuple[str, ...]
    accepted_failures: dict[str, str]
    skipped: tuple[str, ...] = ()  # not imported (`modules.skip_reason`)


def import_check(
    root: Path,
    interpreter: Path,
    modules: Iterable[str],
    allowed: Mapping[str, str],
    *,
    timeout: float,
    log_file: Path | None = None,
    bytecode: bool = False,
    test_suites: bool = True,
    env: Mapping[str, str | None] | None = None,
    isolated: bool = True,
    cwd: Path | None = None,
) -> CheckResult:
    """Import `modules` with `interpreter` (isolated from the environment, unless `isolated` is
    False and `env` says how to run it); fail naming each module that does not import, and
    with `bytecode`, each module of the tree that was not loaded from its shipped `.pyc` (but
    those of packages' test suites, unless `test_suites` says they were compiled too).

    Test suites among `modules` (`modules.is_test_suite`: a top-level `tests` package a wheel
    ships by mistake) are not imported: they need their test runner, not the runtime; nor
    are stray source-tree folders (`modules.skip_reason`).
    """
    names, skipped = checked_and_skipped(modules)
    mode = "-" if not bytecode else "bytecode" if test_suites else "bytecode-but-test-suites"
    flags = ["-I", "-B"] if isolated else ["-B"]  # a block's command runs without -I
    out = run(
        [interpreter, *flags, "-c", _IMPORT_SCRIPT, mode, *names],
        what=f"import check of {root}",
        cwd=cwd or root,
        env=env,
        timeout=timeout,
        log_file=log_file,
    )
    line = next((ln for ln in out.splitlines() if ln.startswith("RUNENV-CHECK ")), None)
    if line is None:
        raise CheckError(f"import check: the interpreter printed no result:\n{out[-2000:]}")
    result = json.loads(line.removeprefix("RUNENV-CHECK "))
    prefix = str(result["prefix"])
    if Path(prefix).resolve() != root.resolve():
        raise CheckError(
            f"import check: the runtime at {root} reports sys.prefix {prefix}: not relocatable"
        )
    failures: dict[str, str] = result["failures"]
    refused = {m: err for m, err in failures.items() if m not in allowed}
    if refused:
        shown = "; ".join(f"{m}: {err}" for m, err in sorted(refused.items()))
        raise CheckError(
            f"import check failed for {len(refused)} module(s): {shown} "
            '(accept a known failure with [check] allowImportFailures = { module = "why" })'
        )
    stale: list[str] = result["no_bytecode"]
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise CheckError(
            f"import check: {len(stale)} module(s) of {root} have no valid bytecode and were "
            f"compiled on import: {shown} (was a .py written after the bytecode stage?)"
        )
    accepted = {m: allowed[m] for m in failures}
    imported = tuple(n for n in names if n not in failures)
    return CheckResult(prefix, imported, accepted, tuple(skipped))  # names, in order
