"""`venv DEST VARIANT -r FILE`: a block venv on top of an installed runtime, offline.

A wheelhouse runtime is used exactly as the reference system's consumer uses it (see the
README): (1) `python -m venv DEST` with `<root>/<bin_dir>` first on PATH and the runtime's
variables; (2) in that venv, with `PYTHONHOME=<root>`, `PYTHONPATH=<root>/<bin_dir>/python_stdlib`,
`VIRTUAL_ENV=DEST` and the venv's scripts first on PATH, `python -m pip install --timeout 600
--requirement FILE --find-links <root>/<wheelhouse>/ --no-index`. The machine's own pip
configuration is shut out (`PIP_CONFIG_FILE` is the null device, every other `PIP_*` dropped):
a `find-links` of its own would make a broken wheelhouse pass.

An installed-tree runtime already holds its packages: the venv sees them
(`--system-site-packages`, no pip of its own) and installs nothing, so every requirement of FILE,
with what it pulls in, is checked first against the distributions the runtime's own interpreter
reports, and any it does not meet are named before anything is made.

DEST is made in place (a venv's scripts and activation files name its path: one made elsewhere
and renamed would point at a folder that is gone) and is removed again when a step fails; a
marker inside it until the end tells a finished venv from one whose maker was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from runenv_catalogue._errors import RequirementsNotMet, VenvError
from runenv_catalogue._names import canonical_name
from runenv_catalogue._provision import UsageError, rmtree

if TYPE_CHECKING:  # the PEP 440/508 code loads only when a venv is checked (`_requirements`)
    import subprocess  # and subprocess when something runs

    from runenv_catalogue._requirements import Installed, Requirement

INSTALLED, WHEELHOUSE = "installed", "wheelhouse"
LAYOUTS = (INSTALLED, WHEELHOUSE)  # a catalogue entry without `layout` is an installed tree
INCOMPLETE = ".runenv-venv-incomplete"
VENV_TIMEOUT = 900.0
PIP_TIMEOUT = 3600.0  # a large wheelhouse (torch) takes minutes to install, never an hour
PIP_NETWORK_TIMEOUT = "600"  # the reference consumer's `--timeout` (nothing is fetched)

# Run by the runtime's own interpreter (`-I`: its own packages, nothing of the caller's): its
# marker environment (PEP 508) and every distribution it sees, the first one of a name winning
# as for imports.
_PROBE = """
import importlib.metadata as md, json, os, platform, sys
def fmt(v):
    s = f"{v.major}.{v.minor}.{v.micro}"
    return s if v.releaselevel == "final" else s + v.releaselevel[0] + str(v.serial)
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
dists = []
for d in md.distributions():
    name = d.metadata["Name"]
    if name:
        extras = d.metadata.get_all("Provides-Extra") or []
        dists.append({"name": name, "version": d.version, "requires": d.requires or [],
                      "extras": extras})
print("RUNENV-VENV " + json.dumps({"env": env, "dists": dists}))
"""


def venv_python(dest: Path) -> Path:
    """The interpreter of the venv at `dest` on this machine."""
    return dest / "Scripts" / "python.exe" if sys.platform == "win32" else dest / "bin" / "python"


def clean_environment(
    runtime_env: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`base` (default os.environ) without the machine's pip configuration (every `PIP_*`,
    `PIP_CONFIG_FILE` pointed at the null device) or a PYTHONHOME/PYTHONPATH of the caller's,
    plus the runtime's own variables."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.upper().startswith("PIP_") and k.upper() not in ("PYTHONHOME", "PYTHONPATH")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(runtime_env)
    return env


def _path_first(env: dict[str, str], *folders: Path) -> None:
    key = next((k for k in env if k.upper() == "PATH"), "PATH")
    rest = env.pop(key, "")
    env[key] = os.pathsep.join([*map(str, folders), *([rest] if rest else [])])


def _last_error(out: str) -> str:
    """pip's (or venv's) last `ERROR:` line, else its last line."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR:", "Error:"))]
    return (errors or lines or ["no output"])[-1]


def _capture(
    args: Sequence[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`args` run with exactly `env` and no stdin, its output kept as text (bytes that do not
    decode replaced: a failing tool's message must still be shown)."""
    import subprocess  # not loaded by an install, which runs nothing

    return subprocess.run(
        list(args),
        env=dict(env),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _run(args: Sequence[str], env: Mapping[str, str], timeout: float, what: str) -> None:
    import subprocess

    try:
        done = _capture(args, env, timeout)
    except subprocess.TimeoutExpired:
        raise VenvError(f"{what}: still running after {timeout:.0f} s, stopped") from None
    except OSError as exc:
        raise VenvError(f"{what}: cannot run {args[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise VenvError(f"{what}: {_last_error(done.stderr + chr(10) + done.stdout)}")


def check_dest(dest: Path) -> None:
    """DEST is new or an empty folder; else UsageError (exit 2)."""
    if not dest.exists() and not dest.is_symlink():
        return
    if not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder: name a new or empty folder")
    if (dest / INCOMPLETE).exists():
        raise UsageError(
            f"{dest} holds a venv whose making did not finish (killed?): remove it and run again"
        )
    if any(dest.iterdir()):
        raise UsageError(f"{dest} exists and is not empty: name a new or empty folder")


@contextlib.contextmanager
def building(dest: Path) -> Iterator[None]:
    """Make `dest` (and missing parents); on any failure leave the disk as it was."""
    existed = dest.is_dir()
    top = dest
    while not top.parent.exists():
        top = top.parent
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / INCOMPLETE
    marker.write_text("runenv_catalogue venv: made until this file is gone\n", "utf-8")
    try:
        yield
    except BaseException:
        if existed:
            for child in list(dest.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    rmtree(child)
                else:
                    child.unlink()
        else:
            rmtree(top)
        raise
    marker.unlink()


def probe(python: Path, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, Installed]]:
    """The marker environment and the distributions (canonical name -> Installed) that the
    runtime's interpreter reports."""
    import subprocess

    try:
        done = _capture([str(python), "-I", "-c", _PROBE], env, VENV_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvError(f"cannot ask {python} for its packages: {exc}") from None
    line = next((x for x in done.stdout.splitlines() if x.startswith("RUNENV-VENV ")), None)
    if line is None:
        raise VenvError(f"cannot ask {python} for its packages: {_last_error(done.stderr)}")
    from runenv_catalogue._requirements import Installed  # an install needs none

    data = json.loads(line.removeprefix("RUNENV-VENV "))
    installed: dict[str, Installed] = {}
    for d in data["dists"]:
        installed.setdefault(
            canonical_name(d["name"]),
            Installed(d["name"], d["version"], tuple(d["requires"]), tuple(d["extras"])),
        )
    return {str(k): str(v) for k, v in data["env"].items()}, installed


def wheelhouse_venv(
    root: Path,
    bin_dir: PurePosixPath,
    wheelhouse: PurePosixPath,
    env: Mapping[str, str],
    dest: Path,
    requirements: Path,
    shown: str,
) -> dict[str, str]:
    """The reference consumer's steps 1 and 2 for the wheelhouse runtime at `root`: the venv
    `dest`, then `requirements` installed offline from the wheelhouse. `env` is the clean
    environment (`clean_environment`); returns step 2's, which step 3 (the block) extends."""
    bin_path = root.joinpath(*bin_dir.parts)
    wheels = root.joinpath(*wheelhouse.parts)
    python = bin_path / ("python.exe" if sys.platform == "win32" else "python")
    step1 = dict(env)
    _path_first(step1, bin_path)
    step2 = dict(env)
    step2["PYTHONHOME"] = str(root)
    step2["PYTHONPATH"] = str(bin_path / "python_stdlib")
    step2["VIRTUAL_ENV"] = str(dest)
    _path_first(step2, venv_python(dest).parent)
    _run([str(python), "-m", "venv", str(dest)], step1, VENV_TIMEOUT,
         f"{shown}: python -m venv {dest} failed")  # fmt: skip
    _run(
        [
            str(venv_python(dest)),
            "-m",
            "pip",
            "install",
            "--timeout",
            PIP_NETWORK_TIMEOUT,
            "--requirement",
            str(requirements),
            "--find-links",
            f"{wheels}{os.sep}",
            "--no-index",
        ],
        step2,
        PIP_TIMEOUT,
        f"{shown}: pip cannot install {requirements} from the runtime's wheelhouse "
        f"(nothing was left at {dest})",
    )
    return step2


def prepare(dest: Path, requirements: Path) -> tuple[Path, Path]:
    """DEST and FILE as absolute paths, once checked (before any download)."""
    dest, requirements = Path(dest).absolute(), Path(requirements).absolute()
    check_dest(dest)
    if not requirements.is_file():
        raise UsageError(f"{requirements}: no such requirements file")
    return dest, requirements


def installed_tree_venv(
    python: Path,
    scripts: Path,
    env: Mapping[str, str],
    dest: Path,
    requirements: Path,
    wanted: Sequence[Requirement],
    shown: str,
) -> None:
    """A block venv on an installed tree (its interpreter `python`): it sees the runtime's
    packages and installs nothing, so each of `wanted` (read from `requirements`) must be met
    by them first; RequirementsNotMet names the ones that are not, and nothing is made."""
    from runenv_catalogue._requirements import unmet  # an install needs none

    marker_env, installed = probe(python, env)
    problems = unmet(wanted, installed, marker_env)
    if problems:
        raise RequirementsNotMet(
            f"{shown} does not satisfy {requirements}: {'; '.join(problems)} (an installed-tree "
            f"runtime installs nothing into a block venv; nothing was made at {dest})"
        )
    env = dict(env)
    _path_first(env, scripts, python.parent)
    with building(dest):
        _run(
            [str(python), "-I", "-m", "venv", "--system-site-packages", "--without-pip", str(dest)],
            env,
            VENV_TIMEOUT,
            f"{shown}: python -m venv {dest} failed",
        )
