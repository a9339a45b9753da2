"""The wheelhouse layout: a Python that makes venvs, plus `packages/` holding the locked wheels.

This is the runtime the reference system's consumer uses (README, "Runtime layouts"): nothing
is installed in it; a block makes a venv from `<root>/<binDir>/python` and installs its own
requirements offline with `pip install --no-index --find-links <root>/packages/`. So the
wheelhouse holds exactly the build's selected set for the platform, one file per package, all
wheels: the downloaded ones (verified against the lock when they were fetched) and the ones
runenv built from sdists and git commits, so a block never needs a compiler.

`<binDir>/python` exists on every platform. PBS puts the interpreter at `bin/python3` on
Linux and macOS (a relative link is added) and at the root as `python.exe` on Windows, where
the executable, its DLLs and `pythonw.exe` are copied into `<binDir>\\`: CPython's getpath
(Modules/getpath.py, "nt") searches upward from the executable's folder for `Lib\\os.py`, so
`bin\\python.exe` finds the root's standard library (and `DLLs\\`) with or without
`PYTHONHOME=<root>`; the DLL loader finds `python3X.dll` beside the executable.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import parse_wheel_filename

from runenv._cache import file_sha256
from runenv.config.plan import Plan
from runenv.errors import BuildError
from runenv.fetch.wheels import Artifact
from runenv.install.modules import top_level
from runenv.install.wheels import InstalledDist

PACKAGES_DIR = "packages"
"""The wheelhouse folder, relative to the root (the consumer's `--find-links <root>/packages/`)."""


def fill(
    tree: Path,
    artifacts: Sequence[Artifact],
    files: Mapping[str, Path],
    built: Mapping[str, Path],
) -> list[InstalledDist]:
    """Copy every selected package's wheel into `tree/packages/`, in the lock's order.

    `files` are the downloaded files by name (verified), `built` the wheels built from the
    sources by the source's file name. Copies, not links: a link would share the cache's inode
    (and change its ctime, which the cache's verified marker watches).
    """
    folder = tree / PACKAGES_DIR
    folder.mkdir()
    records: list[InstalledDist] = []
    for artifact in artifacts:
        wheel = built[artifact.filename] if artifact.from_source else files[artifact.filename]
        if not wheel.name.endswith(".whl"):
            raise BuildError(f"{artifact.name}: {wheel.name} is not a wheel: nothing to ship")
        dest = folder / wheel.name
        if dest.exists():
            raise BuildError(f"two locked packages give the same wheel {wheel.name}")
        shutil.copyfile(wheel, dest)
        sha256 = file_sha256(dest) if artifact.from_source else artifact.sha256
        name, version, _, _ = parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(dest) as zf:
            names = tuple(top_level(zf.namelist()))
        records.append(InstalledDist(str(name), str(version), wheel.name, sha256, names))
    return records


def link_python(tree: Path, plan: Plan) -> Path:
    """Make `<binDir>/python` (`python.exe` on Windows) in `tree`; its path."""
    bin_dir = tree.joinpath(*plan.bin_dir.parts)
    bin_dir.mkdir(parents=True, exist_ok=True)
    interpreter = tree.joinpath(*plan.interpreter.parts)
    if plan.platform.info.is_windows:
        # The executables and the DLLs beside them (python3.dll, python3X.dll, vcruntime).
        home = interpreter.parent
        for item in sorted(home.iterdir()):
            lower = item.name.lower()
            wanted = lower.endswith(".dll") or lower in ("python.exe", "pythonw.exe")
            if wanted and item.is_file() and not (bin_dir / item.name).exists():
                shutil.copy2(item, bin_dir / item.name)
        return bin_dir / "python.exe"
    link = bin_dir / "python"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(os.path.relpath(interpreter, bin_dir))
    return link
