"""Benchmark runenv's wheelhouse layout against the reference method for it (issue 23).

Run it from a checkout, with runenv installed in the running Python (`pip install -e .`):

    python -m benchmarks wheelhouse [--runs 3] [--atls-runs 1] [--out docs/]

The reference system's builder fills a runtime's `packages/` with `pip download`, one package
at a time, and `pl-pkg` packs the root with `tar` at gzip level 9. This benchmark times, in one
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
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.log import BenchError, log
from benchmarks.record import Recorder, stage_times, summarize
from benchmarks.runner import clean_env, run
from benchmarks.servers import serve
from benchmarks.trash import TRASH, rmtree, tree_bytes
from benchmarks.wheelhouse_project import BUILD_TIMEOUT, Workload, prepare
from benchmarks.wheelhouse_report import write

REFERENCE_PLATFORM = "manylinux2014_x86_64"


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


def runenv_build(w: Workload, rec: Recorder, cache: Path, kind: str, i: int) -> None:
    """runenv's wheelhouse build, cold or warm, with its archive and tree sizes."""
    for path in w.outputs():
        rmtree(path)
    result = w.build(cache, f"runenv {kind} build")
    states = [line.split(":", 1)[0] for line in result.stdout.splitlines() if ":" in line]
    archive = w.archive()
    packages = w.tree() / "packages"
    rec.add(
        f"runenv_{kind}",
        result.seconds,
        stage_times(result, w.variant),
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
            result = w.build(cache, "runenv installed build")
            rec.add(
                "runenv_installed", result.seconds, stage_times(result, w.variant), memory=result
            )
            entry = rec.data["runenv_installed"]
            entry.setdefault("archive_bytes", []).append(w.archive().stat().st_size)
            entry.setdefault("tree_bytes", []).append(tree_bytes(w.tree()))
            log(f"{w.key}: installed layout archive {w.archive().stat().st_size / 1e6:.1f} MB")
        finally:
            w.set_layout("wheelhouse")
    for path in w.outputs():
        rmtree(path)
    rmtree(cache)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks wheelhouse [--runs N] [--atls-runs N] [--out DIR] ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks wheelhouse", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of the 3.12.10 workload (3)")
    parser.add_argument("--atls-runs", type=int, default=1, help="rounds of atls (1; 0 skips)")
    parser.add_argument("--python", help="a CPython 3.12 to make the stand-in PBS of")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where results go")
    parser.add_argument("--work", type=Path, help="parent of the work folder (default: temp)")
    parser.add_argument("--render-only", action="store_true", help="re-render the Markdown")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if args.render_only:
        done = json.loads((out / "benchmarks-wheelhouse.json").read_text(encoding="utf-8"))
        write(done, out)
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
