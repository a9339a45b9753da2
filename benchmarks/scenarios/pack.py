"""Time `runenv.artifact.pack.pack_tree` per gzip level against `tar czf` on one tree.

Usage: python -m benchmarks pack TREE [--levels 1,6,9] [--repeat 3] [--no-tar]
Prints one line per method: median seconds (min..max) and archive size in bytes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.runner import call, clean_env
from benchmarks.scenarios import scenario_parser
from runenv.artifact.pack import pack_tree


def _timed(fn: Callable[[], int], repeat: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = fn()
        times.append(time.perf_counter() - start)
    return times, size


def _line(label: str, times: list[float], size: int, total: int) -> str:
    return (
        f"{label:<16} {statistics.median(times):7.2f} s ({min(times):.2f}..{max(times):.2f})"
        f"  {size:>12,} bytes  ({size / total:.1%} of the tar)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks pack TREE [--levels L,L] [--repeat N] [--no-tar]`."""
    parser = scenario_parser("pack", __doc__, "tree", repeat=3)
    parser.add_argument("--levels", default="1,3,4,5,6,7,9")
    parser.add_argument("--no-tar", action="store_true")
    args = parser.parse_args(argv)
    tree: Path = args.tree
    env = clean_env()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.tar.gz"
        stream = call(["sh", "-c", 'tar cf - -C "$1" . | wc -c', "sh", tree], env=env, what="tar")
        total = int(stream)
        print(f"tree {tree}: tar stream {total:,} bytes")
        if not args.no_tar:

            def tar_czf() -> int:
                call(["tar", "czf", out, "-C", tree, "."], env=env, what="tar czf")
                return out.stat().st_size

            print(_line("tar czf", *_timed(tar_czf, args.repeat), total), flush=True)
        for level in (int(x) for x in args.levels.split(",")):

            def runenv_pack(level: int = level) -> int:
                return pack_tree(tree, out, level=level)[1]

            print(_line(f"runenv -{level}", *_timed(runenv_pack, args.repeat), total), flush=True)
    return 0
