"""The check of a wheelhouse runtime: the reference consumer's own steps, at a new path.

The Platforma backend runs a block in three steps, each with the runtime's `envVars`
(README, "Runtime layouts"):

1. `python -m venv ./venv` with `<root>/<binDir>` first on PATH;
2. in the venv, with `PYTHONHOME=<root>`, `PYTHONPATH=<root>/<binDir>/python_stdlib`,
   `VIRTUAL_ENV`, the venv's scripts folder first on PATH:
   `python -m pip install --timeout 600 --requirement requirements.txt
   --find-links <root>/packages/ --no-index`;
3. the block's command, with the same and the block's folder added to PYTHONPATH.

`check_wheelhouse` runs exactly these on a copy of the tree (so a runtime that only works
where it was built fails), installing the whole wheelhouse, then imports every top-level
module in step 3's environment. The machine's own pip configuration is shut out (`PIP_*`
variables dropped, `PIP_CONFIG_FILE` set to the null device): the backend's machines have
none, and a `find-links` from this machine's pip.conf would make a broken wheelhouse pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from runenv._subprocess import run
from runenv.checks.imports import CheckResult, import_check
from runenv.errors import CheckError
from runenv.install.wheelhouse import PACKAGES_DIR

PIP_TIMEOUT = "600"  # the consumer's own `--timeout` (pip's, per network operation)
INSTALL_TIMEOUT = 3600.0
"""The least time step 2 gets: the consumer bounds no install, and the whole wheelhouse of a
torch runtime (3 GB of wheels) takes minutes on a busy machine, above a config's 300 s."""


def base_environment(runtime_env: Mapping[str, str]) -> dict[str, str | None]:
    """This process's environment as `_subprocess.run` takes it, minus everything that would
    steer pip or Python from outside (None removes a variable), plus the runtime's env vars."""
    env: dict[str, str | None] = {
        k: None
        for k in os.environ
        if k.startswith("PIP_") or k in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONNOUSERSITE"] = "1"  # this machine's ~/.local packages are not the runtime's
    env.update(runtime_env)
    return env


def _path(first: Path, env: Mapping[str, str | None]) -> str:
    """`first`, then the PATH of `env` (a runtime's env vars may set one), else this one's."""
    rest = env.get("PATH") or os.environ.get("PATH", "")
    return os.pathsep.join([str(first), rest]) if rest else str(first)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links there
        shutil.copy2(src, dst)


def venv_scripts(venv: Path, windows: bool) -> Path:
    return venv / ("Scripts" if windows else "bin")


def make_block_venv(
    root: Path,
    bin_dir: PurePosixPath,
    runtime_env: Mapping[str, str],
    venv: Path,
    requirements: Path,
    *,
    windows: bool,
    timeout: float,
    log_file: Path | None = None,
) -> dict[str, str | None]:
    """Steps 1 and 2 for the runtime at `root`: the venv at `venv`, `requirements` installed
    from `<root>/packages/` offline. The environment of step 3 (without the block's folder)."""
    bin_path = root.joinpath(*bin_dir.parts)
    base = base_environment(runtime_env)
    python = shutil.which("python", path=str(bin_path))
    if python is None:
        raise CheckError(f"{root}: no python in {bin_dir.as_posix()}/ (the consumer runs it)")
    step1 = {**base, "PATH": _path(bin_path, base)}
    run([python, "-m", "venv", venv], what="step 1: python -m venv", cwd=venv.parent, env=step1,
        timeout=timeout, log_file=log_file)  # fmt: skip
    scripts = venv_scripts(venv, windows)
    step2 = {
        **base,
        "PYTHONHOME": str(root),
        "PYTHONPATH": str(bin_path / "python_stdlib"),
        "VIRTUAL_ENV": str(venv),
        "PATH": _path(scripts, base),
    }
    venv_python = shutil.which("python", path=str(scripts))
    if venv_python is None:
        raise CheckError(f"step 1 made no python in {scripts}")
    packages = f"{root / PACKAGES_DIR}{os.sep}"
    run(
        [venv_python, "-m", "pip", "install", "--timeout", PIP_TIMEOUT,
         "--requirement", requirements, "--find-links", packages, "--no-index"],
        what="step 2: pip install --no-index from the runtime's packages/",
        cwd=venv.parent, env=step2, timeout=max(timeout, INSTALL_TIMEOUT), log_file=log_file,
    )  # fmt: skip
    return step2


def check_wheelhouse(
    tree: Path,
    *,
    bin_dir: PurePosixPath,
    site_packages: PurePosixPath,
    runtime_env: Mapping[str, str],
    packages: Sequence[tuple[str, str]],
    modules: Sequence[str],
    allowed: Mapping[str, str],
    windows: bool,
    timeout: float,
    log_file: Path | None = None,
) -> CheckResult:
    """Steps 1-3 on a copy of `tree`: every `(name, version)` of the wheelhouse installed into a
    block venv, then every module in `modules` imported as a block would import it (the
    runtime's `site_packages`, relative to it and to the venv, appended to the path)."""
    # Beside the tree, so the copy can be hard links (a torch runtime is 3 GB): the steps only
    # add files to it, as `runenv check`'s own relocated copy relies on too.
    with tempfile.TemporaryDirectory(prefix=".tmp-consumer-", dir=tree.parent) as tmp:
        work = Path(tmp)
        root = work / "runtime"
        shutil.copytree(tree, root, symlinks=True, copy_function=_link_or_copy)
        block = work / "block"
        block.mkdir()
        requirements = block / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in packages), encoding="utf-8")
        venv = block / "venv"
        env = make_block_venv(
            root, bin_dir, runtime_env, venv, requirements,
            windows=windows, timeout=timeout, log_file=log_file,
        )  # fmt: skip
        # The runtime's site-packages after the venv's own, as the blocks that use what a
        # variant copies there append it (3d-structure-prediction: `sys.path.append`), so a
        # wheel of the venv wins over a copied module of the same name.
        (venv / site_packages / "runenv-check-runtime.pth").write_text(
            f"{root / site_packages}\n", encoding="utf-8"
        )
        step3 = {**env, "PYTHONPATH": os.pathsep.join([str(env["PYTHONPATH"]), str(block)])}
        python = venv_scripts(venv, windows) / ("python.exe" if windows else "python")
        return import_check(
            venv,
            python,
            modules,
            allowed,
            timeout=timeout,
            log_file=log_file,
            env=step3,
            isolated=False,
            cwd=block,
        )
