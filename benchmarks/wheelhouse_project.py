"""The wheelhouse benchmark's throwaway project: each workload's variant with the stand-in PBS
pinned and `[runtime] layout` set, its lock brought up to date, and the PBS tree the
reference method starts from."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.log import BenchError, log
from benchmarks.machine import (
    compile_runenv,
    cpu_model,
    find_python312,
    git_state,
    host_key,
    memory_gb,
)
from benchmarks.project import PBS_VERSION, mirrored, requirements_of, runenv_cmd, write_standin
from benchmarks.runner import Run, call, clean_env, first_line, run
from benchmarks.trash import rmtree

WORKLOADS = {"3.12.10": "3.12.10", "atls": "3.12.10-atls"}
BUILD_TIMEOUT = 3600.0  # seconds for one runenv build or one pip download of torch
# Appended to each variant's throwaway config: the layout measured, and a per-step timeout
# (shared-config's 300 s) that lets the consumer check's `pip install` of torch finish on a
# loaded 2-core machine; it changes no work.
LAYOUT_TOML = '[runtime]\nlayout = "{layout}"\n\n[build]\ntimeout = 1800\n'


class Workload:
    """One variant in the throwaway project, its lock and what the reference downloads."""

    def __init__(self, key: str, project: Path, host: str, config_text: str) -> None:
        self.key = key
        self.variant = WORKLOADS[key]
        self.project = project
        self.host = host
        self.config = project / "versions" / self.variant / "config.toml"
        self.config_text = config_text  # without the layout table
        self.lock_file = self.config.parent / f"pylock.{host}.toml"
        self.requirements: list[str] = []

    def set_layout(self, layout: str) -> None:
        text = self.config_text.rstrip("\n") + "\n\n" + LAYOUT_TOML.format(layout=layout)
        self.config.write_text(text, encoding="utf-8")

    def outputs(self) -> list[Path]:
        return [self.project / "dist", self.project / "pydist"]

    def archive(self) -> Path:
        return self.project / "dist" / f"runenv-{self.variant}-{self.host}.tar.gz"

    def tree(self) -> Path:
        return self.project / "pydist" / self.variant / self.host

    def from_source(self) -> set[str]:
        config = tomllib.loads(self.config_text)
        resolution = config.get("packages", {}).get("resolution", {})
        return {n.lower() for n in resolution.get("forceNoBinaryList", [])}

    def build(self, cache: Path, what: str) -> Run:
        """`runenv build` of the variant for the host with `cache` as runenv's cache, timed."""
        env = clean_env() | {"RUNENV_CACHE_DIR": str(cache)}
        cmd = runenv_cmd(self.project, "build", self.variant, "--platform", self.host)
        return run(cmd, env=env, what=what, timeout=BUILD_TIMEOUT)


def prepare(
    args: argparse.Namespace, work: Path, base_url: str, mirror: Path
) -> tuple[list[Workload], Path, dict[str, Any]]:
    """The workloads, locked; the unpacked PBS tree (`python/`); what the results say of the
    machine and the tools."""
    env = clean_env()
    py312 = find_python312(args.python)
    host = host_key()
    if host != "linux-x64":
        raise BenchError(
            f"the measurement is of linux-x64 (the reference's wheels); this is {host}"
        )
    compile_runenv(env)
    log("writing the stand-in PBS archives")
    pins_text, pins = write_standin(py312, mirror, base_url)
    host_archive = mirrored(mirror, pins[host])

    project = work / "project"
    project.mkdir()
    shutil.copy2(REPO / "shared-config.toml", project / "shared-config.toml")
    keys = ["3.12.10"] + (["atls"] if args.atls_runs else [])
    workloads = []
    setup_env = env | {"RUNENV_CACHE_DIR": str(work / "cache-setup")}
    for key in keys:
        variant = WORKLOADS[key]
        shutil.copytree(REPO / "versions" / variant, project / "versions" / variant)
        config = project / "versions" / variant / "config.toml"
        text = config.read_text(encoding="utf-8").rstrip("\n")
        text += "\n\n# stand-in PBS archives, served on 127.0.0.1 by the benchmark\n" + pins_text
        w = Workload(key, project, host, text)
        w.set_layout("wheelhouse")
        w.requirements = requirements_of(project, variant, host, setup_env)
        log(f"{key}: bringing the lock up to date (untimed): {' '.join(w.requirements)}")
        lock = runenv_cmd(project, "lock", variant)
        call(lock, env=setup_env, what="runenv lock", timeout=BUILD_TIMEOUT)
        workloads.append(w)
    rmtree(work / "cache-setup")

    pbs = work / "pbs"
    pbs.mkdir()
    call(["tar", "xzf", host_archive, "-C", pbs], env=clean_env(runtime=True), what="tar xzf")
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host_platform": host,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "runenv": first_line([sys.executable, "-m", "runenv", "--version"]),
        "runenv_commit": git_state(),
        "pip": first_line([sys.executable, "-m", "pip", "--version"]).split(" from ")[0],
        "tar": first_line(["tar", "--version"]),
        "gzip": first_line(["gzip", "--version"]),
        "runtime_python": f"stand-in PBS {PBS_VERSION}, made of {py312}",
        "index": "https://pypi.org/simple (default)",
        "variant_toml_appended": LAYOUT_TOML.format(layout="wheelhouse"),
    }
    return workloads, pbs / "python", info
