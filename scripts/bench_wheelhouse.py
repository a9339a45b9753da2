"""Benchmark runenv's wheelhouse layout against the reference method for it (issue 23).

Run it from a checkout, with runenv installed in the running Python (`pip install -e .`):

    python scripts/bench_wheelhouse.py [--runs 3] [--atls-runs 1] [--out docs/]

The reference system's builder fills a runtime's `packages/` with `pip download`, one package
at a time, and `pl-pkg` packs the root with `tar` at gzip level 9. This script times, in one
run on one machine, with interleaved rounds (runenv, reference method, runenv, ...):

- runenv **cold**: `runenv build VARIANT --platform linux-x64` of the variant with
  `[runtime] layout = "wheelhouse"`, from an empty runenv cache, no outputs, the lock committed;
- runenv **warm**: the same again, its cache kept, its outputs removed;
- reference method **cold**: for each package of runenv's lock (the same versions),
  `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
  manylinux2014_x86_64 [--platform <the locked wheel's tags>] NAME==VERSION -d ROOT/packages`
  (an sdist, `--no-binary=:all:`, for a package runenv builds from source: the reference's
  builder ships its sdist), from an empty pip cache, then `tar -C ROOT -cf - . | gzip -9`;
  ROOT starts as the unpacked PBS tree (copied in, untimed);
- reference method **warm**: the same with the pip cache of its cold run kept;
- a **block venv** for the reference workload (steps 1-2 of the consumer, README "Runtime
  layouts"): `python -m venv ./venv` with `<root>/bin` first on PATH, then `python -m pip
  install --timeout 600 --requirement requirements.txt --find-links <root>/packages/
  --no-index` in it, from runenv's archive unpacked at a new path, and the same from the
  reference method's .tgz;
- the archive bytes of both layouts: an `installed` build of the same variant (once, after the
  rounds, from the last round's cache) beside the wheelhouse archive and the reference's .tgz.

Workloads: `3.12.10` (pandas, numpy, scipy, scikit-learn), `--runs` rounds; `atls` (the
`3.12.10-atls` variant: torch with CUDA, about 3 GB of wheels), `--atls-runs` rounds (0 skips it).
The interpreter is a stand-in PBS archive (`scripts/standin_pbs.py`) made of a local CPython
3.12 and served on 127.0.0.1; packages come from PyPI. The machine's pip configuration is shut
out of every pip call (`PIP_CONFIG_FILE=/dev/null`, no `PIP_*` variable).

Writes `OUT/benchmarks-wheelhouse.json` (every raw timing, the load average at each
measurement; rewritten after each round) and `OUT/benchmarks-wheelhouse.md`.
`--render-only` re-renders the Markdown from the JSON. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
from bench import (
    TRASH,
    BenchError,
    Recorder,
    clean_env,
    compile_runenv,
    cpu_model,
    find_python312,
    first_line,
    git_state,
    host_key,
    log,
    memory_gb,
    rmtree,
    run,
    serve,
    stage_times,
    summarize,
    tree_bytes,
)

REPO = Path(__file__).resolve().parents[1]
PBS_VERSION = "3.12.10"
WORKLOADS = {"3.12.10": "3.12.10", "atls": "3.12.10-atls"}
BUILD_TIMEOUT = 3600.0  # seconds for one runenv build or one pip download of torch
TARGETS = {"cold": 0.3, "warm": 0.1}  # issue 23: runenv / reference method, at most
# Appended to each variant's throwaway config: the layout measured, and a per-step timeout
# (shared-config's 300 s) that lets the consumer check's `pip install` of torch finish on a
# loaded 2-core machine; it changes no work.
LAYOUT_TOML = '[runtime]\nlayout = "{layout}"\n\n[build]\ntimeout = 1800\n'
REFERENCE_PLATFORM = "manylinux2014_x86_64"


# --- pure parts: the verdicts and the Markdown (tests/test_bench_wheelhouse.py) -------------


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (or b is zero)."""
    return a / b if a is not None and b else None


def verdict(value: float | None, target: float | None) -> str:
    """'met' when `value` <= `target`, 'missed' above it, '' without a target, 'n/a' without a
    value."""
    if target is None:
        return ""
    if value is None:
        return "n/a"
    return "met" if value <= target else "missed"


def _median(data: dict[str, Any], name: str) -> float | None:
    entry = data.get(name)
    if not entry or not entry.get("runs"):
        return None
    return float(statistics.median(entry["runs"]))


def _first(data: dict[str, Any], name: str, key: str) -> float | None:
    values = data.get(name, {}).get(key)
    if isinstance(values, list):
        return float(statistics.median(values)) if values else None
    return float(values) if values is not None else None


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: per workload, cold and warm (with the issue's targets), the archive bytes of
    both layouts against the reference's .tgz, and the block venv."""
    out: list[dict[str, Any]] = []
    for name, workload in result.get("workloads", {}).items():
        data = workload.get("measurements", {})
        n = workload.get("runs", 0)
        for kind in ("cold", "warm"):
            mine, ref = _median(data, f"runenv_{kind}"), _median(data, f"reference_{kind}")
            value = ratio(mine, ref)
            out.append(
                {
                    "what": f"{name}: {kind} build ({n} round{'s' * (n != 1)}, medians)",
                    "runenv": mine,
                    "reference": ref,
                    "unit": "s",
                    "ratio": value,
                    "target": TARGETS[kind],
                    "verdict": verdict(value, TARGETS[kind]),
                }
            )
        ref_bytes = _first(data, "reference_cold", "archive_bytes")
        for layout, key in (("wheelhouse", "runenv_cold"), ("installed", "runenv_installed")):
            mine_bytes = _first(data, key, "archive_bytes")
            out.append(
                {
                    "what": f"{name}: archive bytes, {layout} layout",
                    "runenv": mine_bytes,
                    "reference": ref_bytes,
                    "unit": "B",
                    "ratio": ratio(mine_bytes, ref_bytes),
                    "target": None,
                    "verdict": "",
                }
            )
        if "block_venv" in data:
            mine, ref = _median(data, "block_venv"), _median(data, "block_venv_reference")
            out.append(
                {
                    "what": f"{name}: block venv (steps 1-2), from the unpacked archive",
                    "runenv": mine,
                    "reference": ref,
                    "unit": "s",
                    "ratio": ratio(mine, ref),
                    "target": None,
                    "verdict": "",
                }
            )
    return out


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "B":
        return f"{value / 1e6:,.1f} MB"
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def cell(text: str) -> str:
    """`text` for a Markdown table cell: a `|` in it would end the cell."""
    return text.replace("|", "\\|")


def load_range(entry: dict[str, Any]) -> str:
    loads = [x for x in entry.get("load", []) if x is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


LABELS = {
    "runenv_cold": "runenv cold",
    "runenv_warm": "runenv warm",
    "reference_cold": "reference method cold",
    "reference_warm": "reference method warm",
    "block_venv": "block venv from runenv's archive",
    "block_venv_reference": "block venv from the reference's .tgz",
    "runenv_installed": "runenv installed layout (archive bytes; warm cache)",
}


def markdown(result: dict[str, Any]) -> str:
    """benchmarks-wheelhouse.md: the table first, then each measurement's rounds and parts."""
    m = result["machine"]
    lines = [
        "# Wheelhouse layout: runenv against the reference method (issue 23)",
        "",
        f"Measured {m['date']} on runenv {m.get('runenv_commit', '?')}, linux-x64, by "
        f"`{' '.join(['python scripts/bench_wheelhouse.py', result.get('argv', '')]).strip()}`.",
        "",
        f"Machine: {m.get('cpu', '?')}, **{m.get('cores', '?')} cores**, "
        f"{m.get('memory_gb', '?')} GB; shared with other work: **load average "
        f"{m.get('load_start', '?')} at the start, {m.get('load_end', '?')} at the end** "
        "(1/5/15 min); each measurement's 1-minute load is listed below.",
        "",
        "| measurement | runenv | reference method | ratio | target | met/missed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result.get("rows") or rows(result):
        value = row["ratio"]
        target = row["target"]
        lines.append(
            f"| {cell(row['what'])} | {fmt(row['runenv'], row['unit'])} | "
            f"{fmt(row['reference'], row['unit'])} | "
            f"{'n/a' if value is None else f'{value:.2f}x'} | "
            f"{'' if target is None else f'<= {target:g}x'} | {row['verdict']} |"
        )
    lines += ["", *result.get("notes", [])]
    for name, workload in result.get("workloads", {}).items():
        lines += [
            "",
            f"## {name} (variant `{workload['variant']}`, {workload['locked']} locked packages, "
            f"{workload['runs']} round{'s' * (workload['runs'] != 1)})",
            "",
            "| measurement | rounds (s) | median | load (1 min) | parts (medians, s) |",
            "|---|---|---:|---|---|",
        ]
        for key, entry in workload["measurements"].items():
            parts = cell(
                ", ".join(
                    f"{k} {statistics.median(v):.1f}" for k, v in entry.get("parts", {}).items()
                )
            )
            rounds = " / ".join(f"{x:.1f}" for x in entry.get("runs", []))
            med = statistics.median(entry["runs"]) if entry.get("runs") else None
            lines.append(
                f"| {LABELS.get(key, key)} | {rounds} | {fmt(med, 's')} | "
                f"{load_range(entry)} | {parts} |"
            )
        for key, entry in workload["measurements"].items():
            for note in entry.get("notes", []):
                lines.append(f"\n- {LABELS.get(key, key)}: {note}")
    lines += [
        "",
        "## How it was measured",
        "",
        "See the docstring of `scripts/bench_wheelhouse.py`. Tools: "
        + ", ".join(str(m[k]) for k in ("runenv", "pip", "tar", "gzip") if k in m)
        + f"; runtime Python {m.get('runtime_python', '?')}; index {m.get('index', 'PyPI')}.",
        "Raw timings: `docs/benchmarks-wheelhouse.json`.",
        "",
    ]
    return "\n".join(lines)


# --- setup -----------------------------------------------------------------------------------


def reference_env() -> dict[str, str]:
    """No PIP_* (transport settings included) but PIP_CONFIG_FILE, the null device: no pip.conf
    either, as on the reference's and the consumer's machines; no PYTHON* setting."""
    env = {k: v for k, v in clean_env(runtime=True).items() if not k.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull}


def download_commands(
    lock: dict[str, Any], from_source: set[str], dest: Path, cache: Path
) -> list[list[str]]:
    """One `pip download` per locked package, as the reference's builder runs them: the exact
    version, no dependencies, a binary for Python 3.12 on manylinux (the platforms of the
    locked wheel added: pip does not widen `manylinux_2_28` to older tags), or the sdist for a
    package runenv builds from source."""
    from packaging.utils import parse_wheel_filename

    commands = []
    for pkg in lock["packages"]:
        name, version = pkg["name"], pkg["version"]
        base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                "--cache-dir", str(cache), "--no-deps", "-d", str(dest)]  # fmt: skip
        wheels = pkg.get("wheels") or []
        if name in from_source or not wheels:
            commands.append([*base, "--no-binary=:all:", f"{name}=={version}"])
            continue
        platforms = [REFERENCE_PLATFORM]
        for wheel in wheels:
            filename = wheel["url"].rsplit("/", 1)[-1]
            for tag in parse_wheel_filename(filename)[3]:
                if tag.platform != "any" and tag.platform not in platforms:
                    platforms.append(tag.platform)
        flags = [f"--platform={p}" for p in platforms]
        commands.append(
            [*base, "--only-binary=:all:", "--python-version=3.12", *flags, f"{name}=={version}"]
        )
    return commands


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

    def build(self, cache: Path, what: str) -> bench.Run:
        env = clean_env() | {"RUNENV_CACHE_DIR": str(cache)}
        cmd = [sys.executable, "-m", "runenv", "--project", self.project, "build", self.variant]
        return run([*cmd, "--platform", self.host], env=env, what=what, timeout=BUILD_TIMEOUT)


def prepare(
    args: argparse.Namespace, work: Path, base_url: str, mirror: Path
) -> tuple[list[Workload], Path, dict[str, Any]]:
    env = clean_env()
    py312 = find_python312(args.python)
    host = host_key()
    if host != "linux-x64":
        raise BenchError(
            f"the measurement is of linux-x64 (the reference's wheels); this is {host}"
        )
    compile_runenv(env)
    log("writing the stand-in PBS archives")
    run(
        [py312, REPO / "scripts" / "standin_pbs.py", mirror, "--version", PBS_VERSION,
         "--base-url", base_url],
        env=clean_env(runtime=True), what="standin_pbs.py", timeout=900,
    )  # fmt: skip
    pins_text = (mirror / "pins.toml").read_text(encoding="utf-8")
    pins = tomllib.loads(pins_text)["python"]["archives"]
    host_archive = mirror.joinpath(*pins[host]["url"].split("/")[-2:])

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
        plan = json.loads(
            run(
                [sys.executable, "-m", "runenv", "--project", project, "config", variant,
                 "--platform", host, "--json"],
                env=setup_env, what="runenv config",
            ).stdout
        )  # fmt: skip
        w.requirements = list(plan["requirements"])
        log(f"{key}: bringing the lock up to date (untimed): {' '.join(w.requirements)}")
        run(
            [sys.executable, "-m", "runenv", "--project", project, "lock", variant],
            env=setup_env, what="runenv lock", timeout=BUILD_TIMEOUT,
        )  # fmt: skip
        workloads.append(w)
    rmtree(work / "cache-setup")

    pbs = work / "pbs"
    pbs.mkdir()
    run(["tar", "xzf", host_archive, "-C", pbs], env=clean_env(runtime=True), what="tar xzf")
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


# --- the measurements ------------------------------------------------------------------------


def runenv_build(w: Workload, rec: Recorder, cache: Path, kind: str, i: int) -> None:
    for path in w.outputs():
        rmtree(path)
    bench.VARIANT = w.variant  # stage_times reads the variant's progress lines by it
    result = w.build(cache, f"runenv {kind} build")
    states = [line.split(":", 1)[0] for line in result.stdout.splitlines() if ":" in line]
    archive = w.archive()
    packages = w.tree() / "packages"
    rec.add(
        f"runenv_{kind}",
        result.seconds,
        stage_times(result),
        memory=result,
    )
    entry = rec.data[f"runenv_{kind}"]
    entry.setdefault("archive_bytes", []).append(archive.stat().st_size)
    entry.setdefault("tree_bytes", []).append(tree_bytes(w.tree()))
    entry["wheelhouse_files"] = sorted(p.name for p in packages.iterdir())
    if any(s != "built" for s in states):
        rec.note(f"runenv_{kind}", f"expected 'built', runenv said {result.stdout.strip()!r}")
    log(f"{w.key} round {i}: runenv {kind} {result.seconds:.1f} s")


def reference(
    w: Workload, rec: Recorder, pbs: Path, work: Path, pip_cache: Path, kind: str, i: int
) -> Path:
    """The reference method into a fresh root; the .tgz it made (the caller discards it)."""
    d = work / f"reference-{w.key}-{kind}-{i}"
    rmtree(d)
    root = d / "root"
    shutil.copytree(pbs, root, symlinks=True)  # the PBS tree: untimed, as in the reference
    packages = root / "packages"
    env = reference_env()
    lock = tomllib.loads(w.lock_file.read_text(encoding="utf-8"))
    downloads = 0.0
    for cmd in download_commands(lock, w.from_source(), packages, pip_cache):
        downloads += run(cmd, env=env, what=cmd[-1], timeout=BUILD_TIMEOUT).seconds
    out = d / "out.tgz"
    pack = run(
        ["sh", "-c", 'tar -C "$1" -cf - . | gzip -9 > "$2"', "sh", root, out],
        env=env,
        what="tar | gzip -9",
        timeout=BUILD_TIMEOUT,
    )
    parts = {"pip download (one per package)": downloads, "tar | gzip -9": pack.seconds}
    rec.add(f"reference_{kind}", downloads + pack.seconds, parts)
    entry = rec.data[f"reference_{kind}"]
    entry.setdefault("archive_bytes", []).append(out.stat().st_size)
    entry.setdefault("tree_bytes", []).append(tree_bytes(root))
    entry["packages"] = sorted(p.name for p in packages.iterdir())
    log(f"{w.key} round {i}: reference method {kind} {downloads + pack.seconds:.1f} s")
    rmtree(root)
    return out


def block_venv(w: Workload, rec: Recorder, archive: Path, work: Path, name: str, i: int) -> None:
    """Steps 1-2 of the consumer on `archive` unpacked at a new path, timed apart."""
    d = work / f"{name}-{i}"
    rmtree(d)
    root = d / "runtime"
    root.mkdir(parents=True)
    base = reference_env()
    run(["tar", "xzf", archive, "-C", root], env=base, what="tar xzf (untimed)")
    found = sorted(root.glob("**/packages"), key=lambda p: len(p.parts))
    if not found:
        raise BenchError(f"no packages/ in {archive}")
    root = found[0].parent
    block = d / "block"
    block.mkdir()
    (block / "requirements.txt").write_text("".join(f"{r}\n" for r in w.requirements))
    path = os.environ.get("PATH", "")
    step1 = run(
        ["python", "-m", "venv", "./venv"],
        env=base | {"PATH": f"{root / 'bin'}{os.pathsep}{path}"},
        what="step 1: python -m venv",
        cwd=block,
    )
    venv = block / "venv"
    step2_env = base | {
        "PYTHONHOME": str(root),
        "PYTHONPATH": str(root / "bin" / "python_stdlib"),
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{path}",
    }
    step2 = run(
        ["python", "-m", "pip", "install", "--timeout", "600", "--requirement",
         "requirements.txt", "--find-links", f"{root / 'packages'}/", "--no-index"],
        env=step2_env, what="step 2: pip install --no-index", cwd=block, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    parts = {"step 1: python -m venv": step1.seconds, "step 2: pip install": step2.seconds}
    rec.add(name, step1.seconds + step2.seconds, parts)
    log(f"{w.key} round {i}: {name} {step1.seconds + step2.seconds:.1f} s")
    rmtree(d)


def measure_round(w: Workload, rec: Recorder, pbs: Path, work: Path, i: int, last: bool) -> None:
    """runenv cold, reference cold, runenv warm, reference warm (+ the block venvs)."""
    cache = work / f"cache-{w.key}-{i}"
    pip_cache = work / f"pip-cache-{w.key}-{i}"
    runenv_build(w, rec, cache, "cold", i)
    ref_tgz = reference(w, rec, pbs, work, pip_cache, "cold", i)
    if w.key == "3.12.10":
        block_venv(w, rec, w.archive(), work, "block_venv", i)
        block_venv(w, rec, ref_tgz, work, "block_venv_reference", i)
    rmtree(ref_tgz.parent)
    runenv_build(w, rec, cache, "warm", i)
    ref_tgz = reference(w, rec, pbs, work, pip_cache, "warm", i)
    rmtree(ref_tgz.parent)
    rmtree(pip_cache)
    if last:  # the installed layout's archive, from this round's cache (untimed comparison)
        w.set_layout("installed")
        try:
            for path in w.outputs():
                rmtree(path)
            bench.VARIANT = w.variant
            result = w.build(cache, "runenv installed build")
            rec.add("runenv_installed", result.seconds, stage_times(result), memory=result)
            entry = rec.data["runenv_installed"]
            entry.setdefault("archive_bytes", []).append(w.archive().stat().st_size)
            entry.setdefault("tree_bytes", []).append(tree_bytes(w.tree()))
            log(f"{w.key}: installed layout archive {w.archive().stat().st_size / 1e6:.1f} MB")
        finally:
            w.set_layout("wheelhouse")
    for path in w.outputs():
        rmtree(path)
    rmtree(cache)


# --- main ------------------------------------------------------------------------------------


CHECK_STAGE = "checking and packing"  # runenv's progress line for the audit, checks and pack


def notes(result: dict[str, Any]) -> list[str]:
    """What the table does not say: what each method does, and where the time went."""
    out = [
        "- runenv's times include fetching, verifying and unpacking the interpreter (served on "
        "127.0.0.1), the stdlib's bytecode, the audit, the import check and the consumer "
        "check (steps 1-2 installing the whole wheelhouse into a venv at a new path, then "
        "every module imported); the reference method's start from the PBS tree already "
        "copied into its root (untimed) and check nothing.",
        "- The reference method downloads the sdist of a package runenv builds into a wheel "
        "(the reference's builder ships it as it is: a block then needs a compiler).",
    ]
    for name, workload in result.get("workloads", {}).items():
        data = workload.get("measurements", {})
        cold = data.get("runenv_cold", {})
        stage = cold.get("parts", {}).get(CHECK_STAGE)
        if stage and cold.get("runs"):
            share = statistics.median(stage)
            total = statistics.median(cold["runs"])
            venv = data.get("block_venv", {}).get("runs")
            alone = (
                f"; steps 1-2 alone, from the unpacked archive, took {statistics.median(venv):.1f} "
                "s in the same rounds"
                if venv
                else ""
            )
            out.append(
                f"- {name}: of runenv's cold build ({total:.1f} s, median), "
                f"'{CHECK_STAGE}' took {share:.1f} s ({share / total:.0%}): the audit, the "
                "import check and the consumer check (the root copied, steps 1-2 installing "
                "the whole wheelhouse, every module imported), with the pack beside them"
                f"{alone}. A warm build of an identical variant reuses the archive its cold "
                "build checked (kept in runenv's cache) and checks nothing again."
            )
        if name == "atls":
            out.append(
                "- atls: runenv's `3.12.10-atls` variant: the reference's dependencies plus "
                "`anarci` and `hmmer`, which replace the binaries the reference copies in (see "
                "its config.toml); both methods fetch the same locked versions."
            )
        pairs = []
        for kind in ("cold", "warm"):
            mine = data.get(f"runenv_{kind}", {}).get("runs", [])
            theirs = data.get(f"reference_{kind}", {}).get("runs", [])
            if mine and theirs:
                each = " / ".join(f"{a / b:.2f}x" for a, b in zip(mine, theirs, strict=False))
                pairs.append(f"{kind} {each}")
        if pairs:
            out.append(
                f"- {name}: each round's own ratio (runenv / reference method, the two measured "
                f"minutes apart): {'; '.join(pairs)}."
            )
        mine_files = set(data.get("runenv_cold", {}).get("wheelhouse_files", []))
        ref_files = set(data.get("reference_cold", {}).get("packages", []))
        trees = [_first(data, k, "tree_bytes") for k in ("runenv_cold", "reference_cold")]
        if mine_files and ref_files and None not in trees:
            same = (
                "the same files"
                if mine_files == ref_files
                else f"{len(mine_files & ref_files)} files in common; only runenv's: "
                f"{', '.join(sorted(mine_files - ref_files))}; only the reference's: "
                f"{', '.join(sorted(ref_files - mine_files))}"
            )
            out.append(
                f"- {name}: `packages/` holds {same}; the unpacked roots are "
                f"{trees[0] / 1e6:,.1f} MB (runenv's, with the standard library's bytecode) and "
                f"{trees[1] / 1e6:,.1f} MB (the reference's)."
            )
        ref = [data.get(f"reference_{k}", {}).get("parts", {}) for k in ("cold", "warm")]
        key = "pip download (one per package)"
        if all(key in p for p in ref):
            c, w = (statistics.median(p[key]) for p in ref)
            out.append(
                f"- {name}: the reference method's downloads took {c:.1f} s cold and {w:.1f} s "
                "with pip's cache kept (pip still asks the index for every package, and starts "
                "once per package); its `tar | gzip -9` is the same both times."
            )
    return out


def write(result: dict[str, Any], out: Path) -> None:
    result["rows"] = rows(result)
    result["notes"] = notes(result)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (out / "benchmarks-wheelhouse.json").write_text(text, encoding="utf-8")
    (out / "benchmarks-wheelhouse.md").write_text(markdown(result), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of the 3.12.10 workload (3)")
    parser.add_argument("--atls-runs", type=int, default=1, help="rounds of atls (1; 0 skips)")
    parser.add_argument("--python", help="a CPython 3.12 to make the stand-in PBS of")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where results go")
    parser.add_argument("--work", type=Path, help="parent of the work folder (default: temp)")
    parser.add_argument("--render-only", action="store_true", help="re-render the Markdown")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if args.render_only:
        result = json.loads((out / "benchmarks-wheelhouse.json").read_text(encoding="utf-8"))
        write(result, out)
        return 0
    if args.runs < 1 or args.atls_runs < 0:
        parser.error("--runs must be at least 1, --atls-runs at least 0")
    work = Path(tempfile.mkdtemp(prefix="runenv-bench-wh-", dir=args.work))
    TRASH.root = work / "trash"
    log(f"work folder {work}; load average {os.getloadavg()}, {os.cpu_count()} cores")
    started = time.monotonic()
    shown = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--render-only"]
    recorders: dict[str, Recorder] = {}
    result: dict[str, Any] = {"schema": 1, "issue": 23, "argv": " ".join(shown)}
    try:
        mirror = work / "mirror"
        mirror.mkdir()
        with serve(mirror, 4 * 3600.0) as base_url:
            workloads, pbs, info = prepare(args, work, base_url, mirror)
            result["machine"] = info
            TRASH.removed_at = time.monotonic()  # the setup removed files: wait as after any
            rounds = {"3.12.10": args.runs, "atls": args.atls_runs}
            # The reference workload's rounds first, then atls: a failure in the torch-sized
            # one (disk, network) leaves the other's figures written.
            for w in workloads:
                rec = recorders.setdefault(w.key, Recorder())
                for i in range(1, rounds[w.key] + 1):
                    log(f"{w.key} round {i}/{rounds[w.key]}; load average {os.getloadavg()}")
                    try:
                        measure_round(w, rec, pbs, work, i, last=i == rounds[w.key])
                    except BenchError as exc:
                        if w.key == "3.12.10":
                            raise
                        log(f"{w.key} round {i} failed: {exc}")
                        result.setdefault("failures", []).append(f"{w.key} round {i}: {exc}")
                        break
                    summarize(rec.data)
                    lock = tomllib.loads(w.lock_file.read_text(encoding="utf-8"))
                    result.setdefault("workloads", {})[w.key] = {
                        "variant": w.variant,
                        "requirements": w.requirements,
                        "locked": len(lock["packages"]),
                        "runs": i,
                        "measurements": rec.data,
                    }
                    result["machine"]["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
                    result["wall_seconds"] = round(time.monotonic() - started, 1)
                    write(result, out)  # after each round: a later failure keeps these
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in result.get("rows", []):
        value = row["ratio"]
        print(
            f"{row['what']:<60} {'n/a' if value is None else f'{value:.2f}x':>7} {row['verdict']}"
        )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"bench_wheelhouse: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
