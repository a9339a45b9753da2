"""Benchmark runenv against the reference method (pip, one package at a time) and uv by hand.

Run it from a checkout, with runenv installed in the running Python (`pip install -e .`):

    python -m benchmarks [--runs 3] [--python /path/to/python3.12] [--out docs/]

It needs a CPython 3.12 to make the runtime from (default: `python3.12` on PATH, else the newest
3.12 under pyenv), `tar` and `gzip`, and PyPI; never GitHub. Everything it makes lives in a
temp folder it removes at the end (`--keep` keeps it). About 3 minutes per run (round) on 2 cores.

What it does, all in one run on one machine, with one package set (the `3.12.10` variant's
requirements, from PyPI or `--index-url`) and one PBS archive:

1. Builds stand-in PBS archives for the five platforms once (`scripts/standin_pbs.py`, with the
   given 3.12: the host one is a relocatable copy of it), serves them on 127.0.0.1 (a local
   mirror, stopped at the end or after `--server-lifetime` seconds), and makes a throwaway project:
   `shared-config.toml` + `versions/3.12.10/` with the archives pinned (pins.toml appended).
   Its locks are brought up to date once, untimed: a checked-out project has its lock committed.
2. Times, `--runs` times each, interleaved (one of each per round, so machine and network noise
   hit all alike):
   - runenv **cold**: empty runenv cache (uv's cache is inside it), no outputs, lock kept;
   - runenv **cold + lock**: the same with the host's lock deleted first (so it locks too);
   - runenv **warm**: caches full, `dist/` and `pydist/` removed;
   - runenv **no-op**: nothing changed; the CLI's wall time, end to end, as a subprocess;
   - runenv **cold, five platforms** (`--platform all`), against one platform cold;
   - **reference method**: the runtime's own pip (bootstrapped untimed with ensurepip, then
     upgraded) runs `pip download REQ -d wheels/` once per requirement, in turn, then
     `pip install --no-index --find-links wheels/ REQS`, then `tar czf` of the runtime;
     empty pip cache (a fresh PIP_CACHE_DIR) each run;
   - **uv by hand**: `uv pip install --no-config --python RUNTIME/bin/python3 REQS` with a fresh
     UV_CACHE_DIR, then `tar czf` of the runtime;
   - `tar czf` of runenv's own tree (`pydist/3.12.10/<host>`), and the archive sizes;
   - the **consumer** (issue 24): `python -m runenv_catalogue install` of runenv's archive from
     a `file://` catalogue into an empty cache, against `tar xzf` of the same archive into an
     empty folder, the trees compared file by file (`--skip` every other group to run it
     alone: its figures are kept apart in the results, under `consumer` or `consumer_atls`).
   The baselines start from the runtime already unpacked (untimed); runenv's figures include
   fetching, verifying and unpacking it, its audit and its import check.
3. Writes `OUT/benchmarks.json` (every raw timing), `OUT/benchmarks.md` (targets with pass/fail,
   ratios first, then seconds, sizes, runenv's stages, the machine) and `OUT/benchmarks.png`
   (matplotlib if importable, else a built-in PNG writer).

`--render-only` re-renders the Markdown and PNG from an existing `OUT/benchmarks.json`.
Progress goes to stderr.

Other benchmarks, each its own subcommand (`python -m benchmarks NAME --help`):

    python -m benchmarks wheelhouse [--runs 3] [--atls-runs 1]   # the wheelhouse layout (issue 23)
    python -m benchmarks pack TREE [--levels 1,6,9]      # runenv's pack per gzip level, tar czf
    python -m benchmarks install WHEEL_DIR               # install_wheels against pypa/installer
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.chart import write_chart
from benchmarks.log import BenchError, log
from benchmarks.project import WORKLOADS, prepare
from benchmarks.record import Recorder, summarize
from benchmarks.report import write_markdown
from benchmarks.results import CONSUMER_KEYS, merge_results, split_consumer
from benchmarks.scenarios import GROUPS, MEASURES
from benchmarks.scenarios import install as install_bench
from benchmarks.scenarios import pack as pack_bench
from benchmarks.scenarios import wheelhouse as wheelhouse_bench
from benchmarks.sections import fmt_value
from benchmarks.servers import serve
from benchmarks.targets import targets
from benchmarks.trash import TRASH

# `python -m benchmarks NAME ...`: the other benchmarks, each with its own options.
SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "wheelhouse": wheelhouse_bench.main,
    "pack": pack_bench.main,
    "install": install_bench.main,
}


def render(result: dict[str, Any], out: Path, renderer: str) -> None:
    """OUT/benchmarks.png and OUT/benchmarks.md from a results dict (its targets judged)."""
    out.mkdir(parents=True, exist_ok=True)
    used = write_chart(result, out / "benchmarks.png", renderer=renderer)
    write_markdown(result, out / "benchmarks.md")
    log(f"wrote {out / 'benchmarks.md'}, {out / 'benchmarks.png'} ({used} chart)")


def parser() -> argparse.ArgumentParser:
    """The main benchmark's options."""
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=doc.splitlines()[0],
        epilog="Other benchmarks: " + ", ".join(SUBCOMMANDS) + " (python -m benchmarks NAME -h).",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--python", help="a CPython 3.12 to make the runtime of")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where results go")
    parser.add_argument(
        "--project",
        type=Path,
        default=REPO,
        help="the project whose shared-config and 3.12.10 variant to use",
    )
    parser.add_argument("--index-url", help="package index for every tool (default: PyPI)")
    parser.add_argument(
        "--variant-toml",
        help="TOML appended to the throwaway copy of the variant's config.toml (recorded)",
    )
    parser.add_argument(
        "--workload",
        choices=tuple(WORKLOADS),
        default="3.12.10",
        help="3.12.10 (pandas, scipy, scikit-learn; the default) or atls (torch with CUDA, "
        "about 3 GB of wheels: runenv cold and warm against uv by hand, merged into "
        "OUT/benchmarks.json under 'atls')",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=GROUPS,
        help="leave a group of measurements out (repeatable)",
    )
    parser.add_argument("--work", type=Path, help="work folder (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--server-lifetime",
        type=float,
        default=7200.0,
        help="seconds after which the loopback mirror stops (7200)",
    )
    parser.add_argument("--chart", choices=("auto", "matplotlib", "built-in"), default="auto")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render OUT/benchmarks.md and .png from OUT/benchmarks.json",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the main benchmark (or, with a subcommand's name first, that benchmark)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in SUBCOMMANDS:
        return SUBCOMMANDS[args_list[0]](args_list[1:])
    cli = parser()
    args = cli.parse_args(args_list)
    out: Path = args.out.resolve()
    args.project = args.project.resolve()
    if args.render_only:
        if not (out / "benchmarks.json").is_file():
            cli.error(f"--render-only: {out / 'benchmarks.json'} not found (give --out DIR)")
        result = json.loads((out / "benchmarks.json").read_text(encoding="utf-8"))
        result["targets"] = targets(result)
        render(result, out, args.chart)
        return 0
    if args.runs < 1:
        cli.error("--runs must be at least 1")
    if sys.platform == "win32":
        raise BenchError("the baselines use tar and gzip: run the benchmark on Linux or macOS")
    for tool in ("tar", "gzip"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found on PATH")
    # The torch-sized workload: runenv cold/warm/no-op (with start-up) and uv by hand only.
    offered = ("runenv", "uvbc", "uv", "consumer") if args.workload == "atls" else GROUPS
    groups = [g for g in offered if g not in args.skip]
    results_file = out / "benchmarks.json"
    if groups == ["consumer"] and not results_file.exists():  # said before, not after, the run
        raise BenchError(
            f"{results_file} has no build results to add the consumer's to: "
            "copy docs/benchmarks.json there first, or leave out --out"
        )
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="runenv-bench-", dir=args.work))
    else:
        work = Path(tempfile.mkdtemp(prefix="runenv-bench-"))
    log(f"work folder {work}")
    TRASH.root = work / "trash"
    started = time.monotonic()
    rec = Recorder()
    try:
        mirror = work / "mirror"
        mirror.mkdir()
        with serve(mirror, args.server_lifetime) as base_url:
            setup = prepare(args, work, base_url, mirror)
            # The setup removed files behind the trash's back (pip's upgrade uninstalls the
            # old pip, the stand-in script's temp folder): the first measurement waits as after
            # any removal. Without it round 1's runenv cold took 11.5 s against 7.1-7.8 s.
            TRASH.removed_elsewhere()
            for i in range(1, args.runs + 1):
                log(f"round {i}/{args.runs}: {', '.join(groups)}")
                for group in groups:
                    MEASURES[group](setup, rec, i)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summarize(rec.data)
    consumer = split_consumer(rec.data, setup.info, args.runs)
    run_result = {
        "schema": 2,
        "runs": args.runs,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": setup.info,
        "measurements": rec.data,
    }
    out.mkdir(parents=True, exist_ok=True)
    if groups == ["consumer"]:  # the consumer alone: the other figures stay as they were
        result = json.loads(results_file.read_text(encoding="utf-8"))
    else:
        result = merge_results(results_file, run_result, args.workload)
    if consumer is not None:
        consumer["wall_seconds"] = round(time.monotonic() - started, 1)
        result[CONSUMER_KEYS[args.workload]] = consumer
    result["targets"] = targets(result)
    (out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    render(result, out, args.chart)
    for row in result["targets"]:
        print(
            f"{row['what']:<42} {fmt_value(row['value'], row['unit']):>9}  {row['goal']:<8} "
            f"{'' if row['pass'] is None else 'pass' if row['pass'] else 'FAIL'}"
        )
    return 0


def entry() -> int:
    """`python -m benchmarks`: a failure is one line and exit 1, Ctrl-C exit 130."""
    try:
        return main()
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(entry())
