"""`check MANIFEST`: the import check of a native build, run on an archive built elsewhere.

A cross-built runtime (macOS or Windows, built on Linux) cannot be import-checked where it was
built. CI runs this on its native runner, from a checkout, with nothing installed: the archive
beside the manifest (or its parts) is verified and unpacked at a new path exactly as `install`
does, then its interpreter imports the modules the build recorded (`check.modules` in the
manifest: every top-level name in site-packages) with the script runenv's import check runs
(`_shared/import_check.py`, one file). It passes when every module imports, bar the recorded
`allowed_failures`, the runtime reports its new folder as `sys.prefix` (so it is
relocatable), and, when the manifest says bytecode is in, every module of the tree was loaded
from its shipped `.pyc`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from runenv_catalogue import _inputs
from runenv_catalogue._provision import CatalogueError, Part, UsageError, provision
from runenv_catalogue._shared import IMPORT_CHECK
from runenv_catalogue._venv import clean_environment, venv_python, wheelhouse_venv

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
        wheelhouse = _wheelhouse(shown, m)
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
        failures = _import(shown, python, modules, allowed, mode, cwd=root, prefix=root)
        if wheelhouse is not None:
            failures.update(_consumer_check(shown, m, root, Path(tmp), wheelhouse, allowed))
            modules = [*modules, *wheelhouse[2]]
    how = f"joined from {len(parts)} parts" if use_parts else "whole"
    accepted = f", {len(failures)} allowed failure(s)" if failures else ""
    return (
        f"ok: {m.get('variant')} {m.get('platform')}: archive {how}, verified, unpacked at a "
        f"new path, {len(modules) - len(failures)} modules imported{accepted}"
    )


def _wheelhouse(
    shown: str, m: dict[str, Any]
) -> tuple[PurePosixPath, PurePosixPath, list[str]] | None:
    """A wheelhouse manifest's `bin_dir`, `wheelhouse` folder and `check.block_modules`, each
    path inside the archive's root; None for an installed tree."""
    if m.get("layout", "installed") == "installed":
        return None
    if m.get("layout") != "wheelhouse":
        raise UsageError(f"{shown}: unknown layout {m.get('layout')!r}")
    paths = []
    for key in ("bin_dir", "wheelhouse"):
        try:
            paths.append(_inputs.relative(m[key]))
        except _inputs.Refused as exc:
            raise UsageError(f"{shown}: {key}: {exc}: not a manifest runenv wrote") from None
    return paths[0], paths[1], [str(x) for x in m["check"].get("block_modules", [])]


def _consumer_check(
    shown: str,
    m: dict[str, Any],
    root: Path,
    work: Path,
    wheelhouse: tuple[PurePosixPath, PurePosixPath, list[str]],
    allowed: dict[str, str],
) -> dict[str, str]:
    """A wheelhouse as its consumer uses it: steps 1-2 install every wheel of the manifest into
    a block venv from the wheelhouse, offline, with this machine's pip configuration shut out;
    step 3 imports the wheels' modules there. The failures allowed, by module."""
    bin_dir, folder, block_modules = wheelhouse
    try:  # the python step 1 runs: a file of the runtime, no link out of it
        python = _inputs.inside(root, bin_dir / ("python.exe" if os.name == "nt" else "python"))
    except _inputs.Refused as exc:
        raise CheckFailed(f"{shown}: bin_dir: {exc}") from None
    if not python.is_file():
        raise CheckFailed(f"{shown}: bin_dir: {bin_dir}/python is not a file of the runtime")
    block = work / "block"
    block.mkdir()
    requirements = block / "requirements.txt"
    pins = [f"{p['name']}=={p['version']}\n" for p in m["packages"]]
    requirements.write_text("".join(pins), encoding="utf-8")
    env = clean_environment({str(k): str(v) for k, v in (m.get("runtime_env") or {}).items()})
    venv = block / "venv"
    try:
        step2 = wheelhouse_venv(root, bin_dir, folder, env, venv, requirements, shown)
    except CatalogueError as exc:
        raise CheckFailed(str(exc)) from None
    # The runtime's site-packages after the venv's own, as blocks that use what a variant
    # copies there append it (runenv's check does the same: `runenv.checks.consumer`).
    try:
        site = _inputs.relative(m["site_packages"])
    except _inputs.Refused as exc:
        raise UsageError(f"{shown}: site_packages: {exc}: not a manifest runenv wrote") from None
    pth = venv.joinpath(*site.parts, "runenv-check-runtime.pth")
    pth.write_text(f"{root.joinpath(*site.parts)}\n", encoding="utf-8")
    step3 = dict(step2)
    step3["PYTHONPATH"] = os.pathsep.join([step2["PYTHONPATH"], str(block)])
    return _import(
        shown, venv_python(venv), block_modules, allowed, "-", cwd=block, prefix=venv, env=step3
    )


def _import(
    shown: str,
    python: Path,
    modules: list[str],
    allowed: dict[str, str],
    mode: str,
    *,
    cwd: Path,
    prefix: Path,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Import `modules` with `python` (isolated unless `env` says how a block runs it); the
    failures `allowed` accepts. CheckFailed for any other, or a `sys.prefix` other than
    `prefix` (not relocatable)."""
    flags = ["-I", "-B"] if env is None else ["-B"]
    try:
        out = subprocess.run(
            [str(python), *flags, str(IMPORT_CHECK), mode, *sorted(set(modules))],
            cwd=cwd,
            env=env,
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
    if Path(result["prefix"]).resolve() != prefix.resolve():
        raise CheckFailed(
            f"{shown}: the runtime unpacked at {prefix} reports sys.prefix "
            f"{result['prefix']}: not relocatable"
        )
    failures: dict[str, str] = result["failures"]
    refused = {k: v for k, v in failures.items() if k not in allowed}
    if refused:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
        raise CheckFailed(f"{shown}: import check failed for {len(refused)} module(s): {listed}")
    stale: list[str] = result.get("no_bytecode", [])
    if stale:
        more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
        raise CheckFailed(
            f"{shown}: {len(stale)} module(s) have no valid shipped bytecode and were "
            f"compiled on import: {', '.join(stale[:5])}{more}"
        )
    return failures
