"""The baselines: the reference method (the runtime's own pip, one package at a time) and uv
by hand (with and without bytecode), each followed by `tar czf` of the runtime."""

from __future__ import annotations

import tomllib
from pathlib import Path

from benchmarks.log import log
from benchmarks.project import Setup
from benchmarks.record import LABELS, Recorder
from benchmarks.runner import clean_env, run
from benchmarks.trash import copy_tree, rmtree, tree_bytes


def fresh_runtime(d: Path, source: Path, cache_var: str, cache: str) -> tuple[Path, dict[str, str]]:
    """`d` made anew with a copy of `source`'s runtime at `d/python` (untimed), and the
    environment of the tool that installs into it: its cache (`cache_var`) `d/cache`, empty."""
    rmtree(d)
    runtime = d / "python"
    copy_tree(source / "python", runtime)
    return runtime, clean_env(runtime=True) | {cache_var: str(d / cache)}


def measure_reference(s: Setup, rec: Recorder, i: int) -> None:
    """The runtime's own pip: one `pip download` per package, `pip install --no-index`, tar."""
    d = s.work / f"reference-{i}"
    runtime, env = fresh_runtime(d, s.pip_runtime, "PIP_CACHE_DIR", "pip-cache")
    python = runtime / "bin" / "python3"
    wheels = d / "wheels"
    extra = ["--index-url", s.index_url] if s.index_url else []
    # Each part is the sum of its commands' own times (`Run.seconds`: a `Trash.settle` wait
    # before a command is not in it).
    downloads = sum(
        run(
            [python, "-m", "pip", "download", req, "-d", wheels, *extra],
            env=env,
            what=f"pip download {req}",
        ).seconds
        for req in s.requirements
    )
    installed = run(
        [python, "-m", "pip", "install", "--no-index", "--find-links", wheels, *s.requirements],
        env=env,
        what="pip install",
    )
    out = d / "runtime.tar.gz"
    packed = run(["tar", "czf", out, "-C", runtime, "."], env=env, what="tar czf")
    parts = {
        "pip download (one call per package)": downloads,
        "pip install --no-index": installed.seconds,
        "tar czf": packed.seconds,
    }
    total = sum(parts.values())
    rec.add(
        "reference",
        total,
        parts,
        archive_bytes=out.stat().st_size,
        tree_bytes=tree_bytes(runtime),
        downloaded=sorted(p.name for p in wheels.iterdir()),
    )
    rmtree(d)
    log(f"run {i}: reference method {total:.1f} s")


def uv_by_hand(s: Setup, rec: Recorder, i: int, *, bytecode: bool) -> None:
    """`uv pip install --python RUNTIME` into the unpacked runtime, then tar.

    With `bytecode`, `--compile-bytecode` too: runenv ships bytecode, so that is like for like.
    The torch-sized workload installs the variant's locked versions (`--no-deps`), so both
    tools install the same files; the reference workload gives uv the requirements, as a user
    would.
    """
    name = "uv_by_hand_bytecode" if bytecode else "uv_by_hand"
    d = s.work / f"{name}-{i}"
    runtime, env = fresh_runtime(d, s.bare_runtime, "UV_CACHE_DIR", "uv-cache")
    python = runtime / "bin" / "python3"
    extra = ["--default-index", s.index_url] if s.index_url else []
    reqs: list[object] = list(s.requirements)
    if s.install_lock:
        reqs = ["--no-deps", "-r", locked_requirements(s)]
    flags = ["--compile-bytecode"] if bytecode else []
    installed = run(
        [s.uv, "pip", "install", "--no-config", *flags, "--python", python, *reqs, *extra],
        env=env,
        what="uv pip install",
    )
    rmtree(d / "uv-cache")  # not part of the runtime; frees disk before the tar (untimed)
    out = d / "runtime.tar.gz"
    packed = run(["tar", "czf", out, "-C", runtime, "."], env=env, what="tar czf")
    install = "uv pip install" + (" --compile-bytecode" if bytecode else "")
    total = installed.seconds + packed.seconds
    rec.add(
        name,
        total,
        {install: installed.seconds, "tar czf": packed.seconds},
        memory=installed,
        archive_bytes=out.stat().st_size,
        tree_bytes=tree_bytes(runtime),
    )
    rmtree(d)
    log(f"run {i}: {LABELS[name]} {total:.1f} s")


def locked_requirements(s: Setup) -> Path:
    """The host lock as `name==version` lines, for uv by hand to install with `--no-deps`.

    Not `uv pip install -r pylock.toml`: the lock requires Python >= 3.12.10 and the stand-in
    runtime is an older 3.12, which uv (rightly) refuses; runenv is given the same runtime.
    """
    path = s.work / "requirements-locked.txt"
    packages = tomllib.loads(s.lock_file.read_text(encoding="utf-8"))["packages"]
    path.write_text("".join(f"{p['name']}=={p['version']}\n" for p in packages), encoding="utf-8")
    return path


def measure_uv(s: Setup, rec: Recorder, i: int) -> None:
    """uv by hand, without bytecode (what earlier rounds compared against)."""
    uv_by_hand(s, rec, i, bytecode=False)


def measure_uv_bytecode(s: Setup, rec: Recorder, i: int) -> None:
    """uv by hand with `--compile-bytecode`: like for like with runenv."""
    uv_by_hand(s, rec, i, bytecode=True)
