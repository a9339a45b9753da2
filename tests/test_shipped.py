"""Every shipped variant builds for this machine from its committed lock, and its archive imports.

A shipped variant that stops building (a file gone from PyPI, a stale lock, a module that no
longer imports) fails here instead of for its first user. GitHub is out of reach, so each build
uses a python-build-standalone-shaped archive that `scripts/standin_pbs.py` makes from a local
interpreter of the variant's X.Y (on PATH, else under pyenv); without one the variant skips and
says which Python to install.

The `3.12.10-atls` build downloads about 3 GB (torch with its CUDA wheels) and takes minutes,
so it also carries the `heavy` marker: `-m "not heavy"` leaves it out of a quick local run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.config.project import list_variants
from runenv.install.modules import importable
from runenv.lock.pylock import read_lock
from runenv.lock.resolve import lock_path
from runenv.platforms import host_platform

REPO = Path(__file__).resolve().parent.parent
HOST = host_platform()
# Variants whose host build is too big to run on every quick local test run (see above).
HEAVY = {"3.12.10-atls"}
# Beyond importing: what a variant is for, run from the unpacked archive with its bin/ first on
# PATH (as `runenv_catalogue run` does). ANARCI numbers a heavy chain through the hmmscan on
# PATH, which is where the hmmer wheel's own console script would lose every alignment.
SMOKE = {
    "3.12.10-atls": (
        "from anarci import anarci\n"
        "seq = ('EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDN'\n"
        "       'SKNTLYLQMNSLRAEDTAVYYCAK')\n"
        "numbered, details, _ = anarci([('h', seq)], scheme='imgt', output=False)\n"
        "assert numbered[0] is not None, details\n"
        "print(details[0][0]['chain_type'], len(numbered[0][0][0]))\n"
    )
}


def find_python(x_y: str) -> Path | None:
    """A working CPython `x_y` on this machine: pythonX.Y on PATH, else the newest pyenv one."""
    candidates: list[Path] = []
    on_path = shutil.which(f"python{x_y}")
    if on_path:
        candidates.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(pyenv.glob(f"versions/{x_y}.*/bin/python{x_y}"), reverse=True)
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"
    for cand in candidates:
        try:
            out = subprocess.run(
                [str(cand), "-c", probe], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        words = out.stdout.split(maxsplit=1)
        if out.returncode == 0 and words and words[0] == x_y:
            return Path(words[1].strip())
    return None


def shipped() -> list[object]:
    """One pytest param per shipped variant, the heavy ones marked so."""
    params: list[object] = []
    for name in list_variants(REPO):
        marks = [pytest.mark.heavy] if name in HEAVY else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def scratch_project(dest: Path, variant: str, pins: str) -> Path:
    """A copy of the project's configs and locks in which `variant` uses the stand-in archives.

    `pins` is the `[python.archives.*]` TOML that standin_pbs.py writes: appended to a TOML
    config, merged into a JSON one.
    """
    dest.mkdir(parents=True)
    for shared in ("shared-config.toml", "shared-config.json"):
        if (REPO / shared).is_file():
            shutil.copy2(REPO / shared, dest / shared)
    shutil.copytree(REPO / "versions", dest / "versions")
    folder = dest / "versions" / variant
    toml_config, json_config = folder / "config.toml", folder / "config.json"
    if toml_config.is_file():
        toml_config.write_text(toml_config.read_text(encoding="utf-8") + "\n" + pins, "utf-8")
    else:
        data = json.loads(json_config.read_text(encoding="utf-8"))
        archives = data.setdefault("python", {}).setdefault("archives", {})
        archives.update(tomllib.loads(pins)["python"]["archives"])
        json_config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return dest


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, removed afterwards: pytest keeps three runs' temp folders, and an atls build
    leaves about 10 GB there (archive, unpacked tree, the copy unpacked for the test)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("variant", shipped())
def test_shipped_variant_builds_for_host_and_imports(variant: str, workdir: Path) -> None:
    vc = load_variant(REPO, variant)
    if HOST not in vc.platforms:
        pytest.skip(f"{variant} is not built for {HOST} (its platforms: {vc.platforms})")
    x_y = ".".join(vc.python_version.split(".")[:2])
    python = find_python(x_y)
    if python is None:
        pytest.skip(
            f"no Python {x_y} on PATH (python{x_y}) or under pyenv (~/.pyenv/versions/{x_y}.*): "
            f"the stand-in runtime for {variant} is made from one; install it to run this test"
        )
    assert lock_path(REPO / "versions" / variant, HOST).is_file(), (
        f"{variant}: no committed lock for {HOST}; run `runenv lock {variant} --platform all`"
    )

    pbs = workdir / "pbs"
    subprocess.run(
        [python, REPO / "scripts" / "standin_pbs.py", pbs, "--version", vc.python_version],
        check=True,
        capture_output=True,
    )
    pins = (pbs / "pins.toml").read_text(encoding="utf-8")
    root = scratch_project(workdir / "project", variant, pins)

    env = {**os.environ, "RUNENV_INDEX_URL": ""}
    cmd = [sys.executable, "-m", "runenv", "-q", "--project", str(root), "build", variant]
    proc = subprocess.run(
        [*cmd, "--platform", "host", "--locked"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, f"runenv build {variant} failed:\n{proc.stderr[-4000:]}"

    # The archive, unpacked somewhere else, is the runtime a user gets: import from there.
    stem = root / "dist" / f"runenv-{variant}-{HOST}"
    runtime = workdir / "unpacked"
    runtime.mkdir()
    subprocess.run(["tar", "xzf", f"{stem}.tar.gz", "-C", str(runtime)], check=True)
    manifest = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
    interpreter = runtime / manifest["interpreter"]

    # Every top-level requirement and every locked package is in the archive.
    installed = {canonicalize_name(p["name"]) for p in manifest["packages"]}
    plan = make_plan(vc, HOST)
    wanted = {canonicalize_name(Requirement(r).name) for r in plan.requirements}
    locked = read_lock(lock_path(REPO / "versions" / variant, HOST))
    missing = (wanted | {canonicalize_name(p.name) for p in locked.packages}) - installed
    assert not missing, f"{variant}: locked but not in the archive: {sorted(missing)}"

    modules = importable(runtime, manifest["site_packages"], manifest["copied_files"])
    allowed = plan.allow_import_failures
    script = (
        "import importlib, sys, json\n"
        "bad = {}\n"
        "for m in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except BaseException as e:\n"
        "        bad[m] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps({'prefix': sys.prefix, 'bad': bad}))\n"
    )
    out = subprocess.run(
        [interpreter, "-I", "-c", script, *modules],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=workdir,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["prefix"]).resolve() == runtime.resolve()
    refused = {m: e for m, e in result["bad"].items() if m not in allowed}
    assert not refused, f"{variant}: modules that do not import from the archive: {refused}"
    assert modules, f"{variant}: nothing to import in {manifest['site_packages']}"

    if variant in SMOKE:
        bin_dir = interpreter.parent
        smoke_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        smoke = subprocess.run(
            [interpreter, "-I", "-c", SMOKE[variant]],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=workdir,
            env=smoke_env,
        )
        assert smoke.returncode == 0, f"{variant} smoke run failed:\n{smoke.stderr[-4000:]}"
        assert smoke.stdout.split()[0] == "H", smoke.stdout
