"""runenv's own builds: cold (lock kept), tar czf of its tree, warm, no-op; cold with locking;
cold for all five platforms."""

from __future__ import annotations

from pathlib import Path

from benchmarks.log import log
from benchmarks.project import Setup
from benchmarks.record import Recorder, stage_times
from benchmarks.runner import Run, clean_env, run
from benchmarks.scenarios.startup import measure_startup
from benchmarks.trash import rmtree, tree_bytes


def runenv_build(s: Setup, platform_arg: str, cache: Path, what: str) -> Run:
    """`runenv build` of the workload for `platform_arg` with `cache` as runenv's cache, timed."""
    env = clean_env() | {"RUNENV_CACHE_DIR": str(cache)}
    return run(s.runenv("build", s.variant, "--platform", platform_arg), env=env, what=what)


def check_state(result: Run, expected: str, rec: Recorder, name: str) -> None:
    """Note (and warn) when runenv did not say `expected` for every target."""
    states = [line.split(":", 1)[0] for line in result.stdout.splitlines() if ":" in line]
    if any(state != expected for state in states):
        rec.note(name, f"expected '{expected}', runenv said: {result.stdout.strip()!r}")
        log(f"WARNING: {name}: expected '{expected}', got {result.stdout.strip()!r}")


def relocked(result: Run) -> bool:
    """Whether the build locked (its progress says so), i.e. the lock was not fresh."""
    return any(": locking" in line for _, line in result.stderr)


def measure_runenv(s: Setup, rec: Recorder, i: int) -> None:
    """Cold (lock kept), then tar czf of its tree, then warm, then no-op, on one cache."""
    cache = s.work / f"cache-runenv-{i}"
    rmtree(cache)
    for path in s.outputs():
        rmtree(path)
    cold = runenv_build(s, s.host, cache, "runenv cold build")
    rec.add("runenv_cold", cold.seconds, stage_times(cold, s.variant), memory=cold)
    check_state(cold, "built", rec, "runenv_cold")
    if relocked(cold):
        rec.note("runenv_cold", "re-locked: the committed lock was not fresh")
    log(f"run {i}: runenv cold {cold.seconds:.1f} s")

    tree = s.project / "pydist" / s.variant / s.host
    archive = s.project / "dist" / f"runenv-{s.variant}-{s.host}.tar.gz"
    rec.add(
        "runenv_archive", 0.0, archive_bytes=archive.stat().st_size, tree_bytes=tree_bytes(tree)
    )
    measure_startup(s, rec, i, archive)
    # The torch-sized tree is not tarred again here: uv by hand's tar czf is its comparison.
    if not s.install_lock:
        out = s.work / "tree.tar.gz"
        tar = run(["tar", "czf", out, "-C", tree, "."], env=clean_env(), what="tar czf")
        rec.add(
            "tar_czf_runenv_tree",
            tar.seconds,
            archive_bytes=out.stat().st_size,
            tree_bytes=tree_bytes(tree),
            runenv_archive_bytes=archive.stat().st_size,
        )
        out.unlink()
        log(f"run {i}: tar czf of runenv's tree {tar.seconds:.1f} s")

    for path in s.outputs():
        rmtree(path)
    warm = runenv_build(s, s.host, cache, "runenv warm build")
    rec.add("runenv_warm", warm.seconds, stage_times(warm, s.variant), memory=warm)
    check_state(warm, "built", rec, "runenv_warm")
    log(f"run {i}: runenv warm {warm.seconds:.1f} s")

    noop = runenv_build(s, s.host, cache, "runenv no-op build")
    rec.add("runenv_noop", noop.seconds, memory=noop)
    check_state(noop, "up to date", rec, "runenv_noop")
    log(f"run {i}: runenv no-op {noop.seconds:.2f} s")
    rmtree(cache)


def measure_runenv_lock(s: Setup, rec: Recorder, i: int) -> None:
    """Cold, with the host lock deleted: it locks, then builds."""
    cache = s.work / f"cache-lock-{i}"
    for path in s.outputs():
        rmtree(path)
    s.lock_file.unlink()
    try:
        result = runenv_build(s, s.host, cache, "runenv cold build with locking")
    finally:
        s.lock_file.write_bytes(s.lock_bytes)  # the next builds use the committed lock again
        rmtree(cache)
    rec.add("runenv_cold_lock", result.seconds, stage_times(result, s.variant), memory=result)
    check_state(result, "built", rec, "runenv_cold_lock")
    log(f"run {i}: runenv cold + lock {result.seconds:.1f} s")


def measure_runenv_all(s: Setup, rec: Recorder, i: int) -> None:
    """Cold, `--platform all`: the five platforms from an empty cache."""
    cache = s.work / f"cache-all-{i}"
    for path in s.outputs():
        rmtree(path)
    try:
        result = runenv_build(s, "all", cache, "runenv cold build of all platforms")
    finally:
        rmtree(cache)
    rec.add("runenv_cold_all", result.seconds, memory=result)
    check_state(result, "built", rec, "runenv_cold_all")
    for path in s.outputs():
        rmtree(path)
    log(f"run {i}: runenv cold, all five platforms {result.seconds:.1f} s")
