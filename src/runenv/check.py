"""The check stage, natively: import every top-level module with the runtime's interpreter.

The names come from `runenv.modules.importable` (what the installed distributions' RECORDs
declare, namespace packages and `_`-prefixed modules included).

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

# One process imports everything (fast); each failure is caught and reported by name.
# `-B`: no .pyc written into the tree, which would make the archive differ between builds.
_IMPORT_SCRIPT = """
import importlib, json, sys
failures = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
print("RUNENV-CHECK " + json.dumps({"prefix": sys.prefix, "failures": failures}))
"""


@dataclass(frozen=True)
class CheckResult:
    prefix: str
    imported: tuple[str, ...]
    accepted_failures: dict[str, str]


def import_check(
    root: Path,
    interpreter: Path,
    modules: Iterable[str],
    allowed: Mapping[str, str],
    *,
    timeout: float,
    log_file: Path | None = None,
) -> CheckResult:
    """Import `modules` with `interpreter`; fail naming each module that does not import."""
    names = sorted(set(modules))
    out = run(
        [interpreter, "-I", "-B", "-c", _IMPORT_SCRIPT, *names],
        what=f"import check of {root}",
        cwd=root,
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
    accepted = {m: allowed[m] for m in failures}
    return CheckResult(prefix, tuple(n for n in names if n not in failures), accepted)
