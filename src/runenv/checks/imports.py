"""The check stage, natively: import every top-level module with the runtime's interpreter.

The names come from `runenv.install.modules.importable` (what the installed distributions' RECORDs
declare, namespace packages and `_`-prefixed modules included), test suites left out
(`runenv.install.modules.skip_reason`: test suites, stray source-tree folders; the manifest says
which, `check.skipped`).

The tree is checked at a path other than the one it was built in, so a runtime that only works
where it was built fails here rather than on a user's machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runenv._shared import IMPORT_CHECK
from runenv._subprocess import run
from runenv.errors import CheckError
from runenv.install.modules import checked_and_skipped

# The script (`runenv._shared.import_check`, the catalogue's `check` runs the same file): one
# process imports everything, each failure reported by name; `-B` writes no .pyc into the tree.
# With "bytecode" first, every module loaded from a .py of the tree must have been loaded from
# its shipped hash-based .pyc; "bytecode-but-test-suites" exempts the modules of packages' test
# suites, shipped as source (`bytecode_compiler.is_test_suite`, the same rule).


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
        [interpreter, *flags, IMPORT_CHECK, mode, *names],
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
