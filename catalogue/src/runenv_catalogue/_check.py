"""`check MANIFEST`: the import check of a native build, run on an archive built elsewhere.

A cross-built runtime (macOS or Windows, built on Linux) cannot be import-checked where it was
built. CI runs this on its native runner, from a checkout, with nothing installed: the archive
beside the manifest (or its parts) is verified and unpacked at a new path exactly as `install`
does, then its interpreter imports the modules the build recorded (`check.modules` in the
manifest: every top-level name in site-packages) with the same script as runenv's import
check. It passes when every module imports, bar the recorded `allowed_failures`, the runtime
reports its new folder as `sys.prefix` (so it is relocatable), and, when the manifest says
bytecode is in, every module of the tree was loaded from its shipped `.pyc`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from runenv_catalogue import _inputs
from runenv_catalogue._provision import CatalogueError, Part, UsageError, provision

# Kept identical to runenv's (`runenv.check._IMPORT_SCRIPT`; a test compares them): one
# process imports everything, each failure caught and reported by name; `-B` writes no .pyc.
# With "bytecode" first, every module loaded from a .py of the tree must have had a valid
# hash-based .pyc: the shipped bytecode is what runs, not a compile of its own (but the modules
# of packages' test suites, with "bytecode-but-test-suites", when the manifest says so).
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
            return not {"test", "tests"}.isdisjoint(path[len(lib):].split(os.sep)[1:-1])
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
TIMEOUT = 900.0


class CheckFailed(CatalogueError):
    """The runtime does not pass the import check."""


def _load(manifest_path: Path) -> dict[str, Any]:
    try:
        data = _inputs.read_json(manifest_path)
    except OSError as exc:
        raise UsageError(f"{manifest_path}: not a readable manifest ({exc.strerror})") from None
    except ValueError as exc:  # bad JSON, a repeated key, too deep, too large, not a file
        raise UsageError(f"{manifest_path}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{manifest_path}: not a manifest")
    return data


def _file_name(value: object) -> str:
    """A file beside the manifest: one plain path component."""
    path = _inputs.relative(value)
    if len(path.parts) != 1:
        raise _inputs.Refused(f"{value!r} is not a file name beside the manifest")
    return path.name


def check_archive(manifest_path: Path, work: Path | None = None) -> str:
    """Verify, unpack (under `work`, else a temp folder) and import-check the archive that
    `manifest_path` describes; return a one-line summary. CheckFailed names what failed."""
    m = _load(manifest_path)
    shown = manifest_path.name
    try:
        sha256, size = str(m["sha256"]), int(m["size"])
        archive = manifest_path.parent / _file_name(m["archive"])
        interpreter = _inputs.relative(m["interpreter"])
        modules = [str(x) for x in m["check"]["modules"]]
        bytecode = bool((m.get("bytecode") or {}).get("compiled"))
        # "source": packages' test suites were left uncompiled on purpose (older manifests
        # have no such key: everything was compiled)
        test_suites = (m.get("bytecode") or {}).get("test_suites", "compiled") == "compiled"
        allowed = {str(k): str(v) for k, v in m["check"]["allowed_failures"].items()}
    except _inputs.Refused as exc:
        raise UsageError(f"{shown}: {exc}: not a manifest runenv wrote") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError(
            f"{shown}: needs sha256, size, archive, interpreter and check.modules / "
            "check.allowed_failures (a manifest of runenv 0.x with the check recorded)"
        ) from None
    try:
        parts = [
            Part(
                str(manifest_path.parent / _file_name(p["name"])), int(p["size"]), str(p["sha256"])
            )
            for p in m.get("parts") or ()
        ]
    except _inputs.Refused as exc:
        raise UsageError(f"{shown}: parts: {exc}: not a manifest runenv wrote") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError(f"{shown}: parts: each needs a name, a size and a sha256") from None
    use_parts = bool(parts) and not archive.exists()  # a release's assets: the parts only
    with tempfile.TemporaryDirectory(prefix="runenv-check-", dir=work) as tmp:
        root = Path(tmp) / "unpacked-elsewhere"
        provision(str(archive), sha256, size, root, interpreter, parts=parts if use_parts else ())
        try:  # walked with lstat: a link in the runtime may not lead out of it
            python = _inputs.inside(root, interpreter)
        except _inputs.Refused as exc:
            raise CheckFailed(f"{shown}: interpreter: {exc}") from None
        if not python.is_file():
            raise CheckFailed(f"{shown}: interpreter: {interpreter} is not a file of the runtime")
        mode = "-" if not bytecode else "bytecode" if test_suites else "bytecode-but-test-suites"
        try:
            out = subprocess.run(
                [str(python), "-I", "-B", "-c", _IMPORT_SCRIPT, mode, *sorted(set(modules))],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CheckFailed(f"{shown}: cannot run {python}: {exc}") from None
        line = next((x for x in out.stdout.splitlines() if x.startswith("RUNENV-CHECK ")), None)
        if line is None:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CheckFailed(f"{shown}: the interpreter printed no result: {tail[0]}")
        result = json.loads(line.removeprefix("RUNENV-CHECK "))
        if Path(result["prefix"]).resolve() != root.resolve():
            raise CheckFailed(
                f"{shown}: the runtime unpacked at {root} reports sys.prefix "
                f"{result['prefix']}: not relocatable"
            )
        failures: dict[str, str] = result["failures"]
        refused = {k: v for k, v in failures.items() if k not in allowed}
        if refused:
            listed = "; ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
            raise CheckFailed(
                f"{shown}: import check failed for {len(refused)} module(s): {listed}"
            )
        stale: list[str] = result.get("no_bytecode", [])
        if stale:
            more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
            raise CheckFailed(
                f"{shown}: {len(stale)} module(s) have no valid shipped bytecode and were "
                f"compiled on import: {', '.join(stale[:5])}{more}"
            )
    how = f"joined from {len(parts)} parts" if use_parts else "whole"
    accepted = f", {len(failures)} allowed failure(s)" if failures else ""
    return (
        f"ok: {m.get('variant')} {m.get('platform')}: archive {how}, verified, unpacked at a "
        f"new path, {len(modules) - len(failures)} modules imported{accepted}"
    )
