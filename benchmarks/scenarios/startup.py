"""Start-up: a first against a second `import ...` from fresh, read-only unpacks of runenv's
archive, with no bytecode written."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from benchmarks.log import BenchError, log
from benchmarks.project import Setup
from benchmarks.record import Recorder
from benchmarks.runner import clean_env, run
from benchmarks.trash import rmtree


def make_writable(root: Path, writable: bool) -> None:
    """Add or take away every write bit under `root` (a read-only install, then cleanup)."""
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files, None]:
            path = Path(dirpath, name) if name else Path(dirpath)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | 0o200 if writable else mode & ~0o222)


def count_pyc(root: Path) -> int:
    """The number of .pyc files under `root`."""
    return sum(1 for _ in root.rglob("*.pyc"))


STARTUP_UNPACKS = 5
"""Fresh unpacks per start-up measure: each gives a first and a second import, a pair. The
ratio is the median of every pair's own ratio over all rounds: on these machines one pair
alone moved from 0.65x to 1.6x (twelve pairs by hand, both imports 0.85-1.6 s, mean 1.07x),
and a pair shares the machine's speed of its moment, where medians of firsts and of seconds
taken apart do not."""


def measure_startup(s: Setup, rec: Recorder, i: int, archive: Path) -> None:
    """First against second `import ...` from fresh, read-only unpacks of runenv's archive.

    PYTHONDONTWRITEBYTECODE=1 is set explicitly (and every other PYTHON* setting dropped), so
    a runtime without bytecode would compile in memory on every start, as on a shared
    read-only install. The .pyc files are counted before and after: none may appear. Each of
    `STARTUP_UNPACKS` unpacks gives one pair; the medians are what is recorded.
    """
    renv = clean_env(runtime=True)
    env = renv | {"PYTHONDONTWRITEBYTECODE": "1"}
    probe = (
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
        "if importlib.util.find_spec(m.split('.')[0])))"
    )
    firsts: list[float] = []
    seconds: list[float] = []
    code = ""
    for k in range(STARTUP_UNPACKS):
        d = s.work / f"startup-{i}-{k}"
        rmtree(d)
        d.mkdir()
        run(["tar", "xzf", archive, "-C", d], env=renv, what="tar xzf (start-up)")
        found = sorted(d.glob("**/bin/python3"), key=lambda p: len(p.parts))
        if not found:
            raise BenchError(f"no bin/python3 in {archive.name}")
        python = found[0]
        if not code:  # what the archive has is the same in every unpack: asked once
            wanted = s.imports
            present = run(
                [python, "-c", probe, *wanted], env=env, what="find_spec", cwd=d
            ).stdout.split()
            absent = [m for m in wanted if m not in present]
            if not present:
                raise BenchError(f"none of {', '.join(wanted)} is in {archive.name}")
            statement = "import " + ", ".join(present)
            # Each import in turn; one that fails (a dependency the variant cannot ship) is
            # named on stdout and the rest still run, so the timing covers what does load.
            code = "".join(
                f"try:\n import {m}\nexcept ImportError as e:\n print({m!r}, e)\n" for m in present
            )
        make_writable(d, False)
        try:
            before = count_pyc(d)
            first = run([python, "-c", code], env=env, what=f"first {statement}", cwd=d)
            second = run([python, "-c", code], env=env, what=f"second {statement}", cwd=d)
            written = count_pyc(d) - before
        finally:
            make_writable(d, True)
            rmtree(d)
        firsts.append(first.seconds)
        seconds.append(second.seconds)
        if written:
            rec.note("startup_first", f"{written} .pyc files were written despite the settings")
    failed = first.stdout.strip().splitlines()
    rec.add(
        "startup_first",
        statistics.median(firsts),
        statement=statement,
        absent=absent,
        pyc=before,
        failed=failed,
        unpacks=firsts,
    )
    rec.add("startup_second", statistics.median(seconds), statement=statement, unpacks=seconds)
    pairs = rec.data["startup_first"].setdefault("pairs", [])
    pairs.extend([round(f, 3), round(x, 3)] for f, x in zip(firsts, seconds, strict=True))
    log(
        f"run {i}: start-up first {statistics.median(firsts):.2f} s, second "
        f"{statistics.median(seconds):.2f} s (medians of {STARTUP_UNPACKS} unpacks; "
        f"{statement}; {before} .pyc in the archive)"
    )
