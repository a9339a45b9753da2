"""The throwaway project a benchmark builds: the stand-in PBS archives on the loopback mirror,
a copy of the checkout's shared config and variant with the archives pinned, its locks brought
up to date (untimed), and the runtimes the baselines start from."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.log import BenchError, log
from benchmarks.machine import (
    compile_runenv,
    cpu_model,
    find_python312,
    find_uv,
    git_state,
    host_key,
    memory_gb,
)
from benchmarks.runner import call, clean_env, first_line, succeeds
from benchmarks.trash import copy_tree, rmtree

PBS_VERSION = "3.12.10"  # the Python version the stand-in PBS archives claim to be
WORKLOADS: dict[str, dict[str, Any]] = {
    "3.12.10": {
        "variant": "3.12.10",
        "imports": ["pandas", "scipy.stats", "sklearn.ensemble"],
    },
    # torch 2.7.0 with CUDA and ImmuneBuilder: about 3 GB of wheels. The reference system's
    # start-up measure also imports openmm, pdbfixer, anarci, transformers and Bio; those the
    # variant does not ship are left out of the import (and named in the results).
    "atls": {
        "variant": "3.12.10-atls",
        "imports": [
            "ImmuneBuilder",
            "torch",
            "openmm",
            "pdbfixer",
            "anarci",
            "transformers",
            "Bio",
        ],
    },
}


# The stand-in's archives are made by this command (the one the README documents).
STANDIN = REPO / "scripts" / "standin_pbs.py"


def runenv_cmd(project: Path, *args: object, index_url: str | None = None) -> list[object]:
    """`python -m runenv --project PROJECT ARGS [--index-url URL]` with the running Python."""
    extra = ["--index-url", index_url] if index_url else []
    return [sys.executable, "-m", "runenv", "--project", project, *args, *extra]


def write_standin(py312: Path, mirror: Path, base_url: str) -> tuple[str, dict[str, Any]]:
    """The five stand-in PBS archives written into `mirror` (served at `base_url`): the text
    of their pins (TOML to append to a variant's config) and the pins by platform."""
    call(
        [py312, STANDIN, mirror, "--version", PBS_VERSION, "--base-url", base_url],
        env=clean_env(runtime=True),
        what="standin_pbs.py",
        timeout=900,
    )
    pins_text = (mirror / "pins.toml").read_text(encoding="utf-8")
    return pins_text, tomllib.loads(pins_text)["python"]["archives"]


def mirrored(mirror: Path, pin: dict[str, Any]) -> Path:
    """Where a pinned archive lies in the mirror (its URL's last two parts)."""
    return mirror.joinpath(*pin["url"].split("/")[-2:])


def requirements_of(project: Path, variant: str, host: str, env: dict[str, str]) -> list[str]:
    """The variant's requirements, as `runenv config --json` plans them for `host`."""
    out = call(runenv_cmd(project, "config", variant, "--platform", host, "--json"),
               env=env, what="runenv config")  # fmt: skip
    try:
        plan = json.loads(out)
    except ValueError:
        raise BenchError(f"runenv config --json printed more than JSON: {out[:300]}") from None
    return list(plan["requirements"])


@dataclass
class Setup:
    """What the measurements of one run share: the project, its lock, the runtimes, the tools."""

    variant: str  # the workload's variant, whose progress lines cut runenv's stages
    work: Path
    project: Path
    host: str
    requirements: list[str]
    lock_file: Path
    lock_bytes: bytes
    bare_runtime: Path  # python/ unpacked from the stand-in host archive
    pip_runtime: Path  # the same, with pip
    uv: str
    index_url: str | None
    info: dict[str, Any]
    imports: list[str]  # the start-up measure's modules
    install_lock: bool  # uv by hand installs the locked versions, not the requirements

    def runenv(self, *args: object) -> list[object]:
        """A runenv command on the project, with the run's index if one was given."""
        return runenv_cmd(self.project, *args, index_url=self.index_url)

    def outputs(self) -> list[Path]:
        """What a build writes into the project (removed before a cold or warm build)."""
        return [self.project / "dist", self.project / "pydist"]


def prepare(args: argparse.Namespace, work: Path, base_url: str, mirror: Path) -> Setup:
    """Make the project, lock it, unpack the host runtime and a copy of it with pip (untimed)."""
    variant = WORKLOADS[args.workload]["variant"]
    env = clean_env()
    py312 = find_python312(args.python)
    log(f"runtime made of {py312}")
    host = host_key()
    runenv_version = call(
        [sys.executable, "-m", "runenv", "--version"], env=env, what="runenv --version"
    ).strip()
    compile_runenv(env)

    log("writing the stand-in PBS archives (five platforms)")
    pins_text, pins = write_standin(py312, mirror, base_url)
    if host not in pins:
        raise BenchError(f"this machine ({host}) is not one of runenv's platforms")
    host_archive = mirrored(mirror, pins[host])

    # The throwaway project: shared config + the variant, its archives pinned to the mirror.
    project = work / "project"
    project.mkdir()
    for name in ("shared-config.toml", "shared-config.json"):
        if not (args.project / name).exists():
            continue
        shutil.copy2(args.project / name, project / name)
    variant_dir = project / "versions" / variant
    shutil.copytree(args.project / "versions" / variant, variant_dir)
    config = variant_dir / "config.toml"
    text = config.read_text(encoding="utf-8")
    if args.variant_toml:  # e.g. "[build]\ncompileBytecode = false", said in the results
        text = text.rstrip("\n") + "\n\n" + args.variant_toml.replace("\\n", "\n") + "\n"
    config.write_text(
        text.rstrip("\n") + "\n\n# stand-in PBS archives, "
        "served on 127.0.0.1 by the benchmark\n" + pins_text,
        encoding="utf-8",
    )
    setup_env = env | {"RUNENV_CACHE_DIR": str(work / "cache-setup")}
    requirements = requirements_of(project, variant, host, setup_env)
    log(f"packages: {' '.join(requirements)}; bringing the locks up to date (untimed)")
    extra = ["--index-url", args.index_url] if args.index_url else []
    lock = runenv_cmd(project, "lock", variant, "--platform", "all", index_url=args.index_url)
    call(lock, env=setup_env, what="runenv lock")
    rmtree(work / "cache-setup")
    lock_file = variant_dir / f"pylock.{host}.toml"

    log("unpacking the host runtime; bootstrapping pip into a copy (untimed)")
    bare = work / "runtime-bare"
    bare.mkdir()
    renv = clean_env(runtime=True)
    call(["tar", "xzf", host_archive, "-C", bare], env=renv, what="tar xzf")
    bare_python = bare / "python" / "bin" / "python3"
    runtime_version = call(
        [bare_python, "-c", "import ssl, sys, zlib; print(sys.version.split()[0])"],
        env=renv,
        what="runtime smoke test",
    ).strip()
    with_pip = work / "runtime-pip"
    copy_tree(bare, with_pip)
    pip_python = with_pip / "python" / "bin" / "python3"
    if not succeeds([pip_python, "-m", "pip", "--version"], env=renv, what="pip --version"):
        # The stand-in leaves ensurepip out of the stdlib; real PBS archives ship it (and pip).
        stdlib = call(
            [py312, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            env=renv,
            what="stdlib path",
        ).strip()
        xy = call(
            [pip_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            env=renv,
            what="runtime version",
        ).strip()
        dest = with_pip / "python" / "lib" / f"python{xy}" / "ensurepip"
        if not dest.exists():
            shutil.copytree(Path(stdlib) / "ensurepip", dest)
        call([pip_python, "-m", "ensurepip", "--default-pip"], env=renv, what="ensurepip")
    pip_cache = work / "pip-cache-setup"
    call(
        [pip_python, "-m", "pip", "install", "--upgrade", "pip", *extra],
        env=renv | {"PIP_CACHE_DIR": str(pip_cache)},
        what="pip upgrade",
    )
    rmtree(pip_cache)
    pip_version = call(
        [pip_python, "-m", "pip", "--version"], env=renv, what="pip --version"
    ).split()[1]
    uv = find_uv()

    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host_platform": host,
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "python_running_runenv": sys.version.split()[0],
        "runtime_python": f"{runtime_version} (stand-in for {PBS_VERSION}, made of {py312})",
        "runenv": runenv_version,
        "runenv_commit": git_state(),
        "uv": first_line([uv, "--version"]),
        "pip": pip_version,
        "tar": first_line(["tar", "--version"]),
        "gzip": first_line(["gzip", "--version"]),
        "variant": variant,
        "requirements": requirements,
        "variant_toml_appended": args.variant_toml or "",
        "locked_packages": lock_file.read_text(encoding="utf-8").count("[[packages]]"),
        "index": args.index_url or "https://pypi.org/simple (default)",
        "python_mirror": "stand-in PBS archives on 127.0.0.1 (pinned by sha256)",
    }
    return Setup(
        variant,
        work,
        project,
        host,
        requirements,
        lock_file,
        lock_file.read_bytes(),
        bare,
        with_pip,
        uv,
        args.index_url,
        info,
        list(WORKLOADS[args.workload]["imports"]),
        args.workload == "atls",
    )
