"""Time `runenv.artifact.pack.pack_tree` per gzip level against `tar czf` on one tree.

Usage: python scripts/bench_pack.py TREE [--levels 1,6,9] [--repeat 3] [--no-tar]
Prints one line per method: median seconds (min..max) and archive size in bytes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runenv.artifact.pack import pack_tree


def _timed(fn: object, repeat: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times, size


def _line(label: str, times: list[float], size: int, total: int) -> str:
    return (
        f"{label:<16} {statistics.median(times):7.2f} s ({min(times):.2f}..{max(times):.2f})"
        f"  {size:>12,} bytes  ({size / total:.1%} of the tar)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--levels", default="1,3,4,5,6,7,9")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-tar", action="store_true")
    args = parser.parse_args()
    tree: Path = args.tree
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.tar.gz"
        total = int(
            subprocess.run(
                f"tar cf - -C '{tree}' . | wc -c",
                shell=True,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        print(f"tree {tree}: tar stream {total:,} bytes")
        if not args.no_tar:

            def tar_czf() -> int:
                subprocess.run(["tar", "czf", str(out), "-C", str(tree), "."], check=True)
                return out.stat().st_size

            print(_line("tar czf", *_timed(tar_czf, args.repeat), total), flush=True)
        for level in (int(x) for x in args.levels.split(",")):

            def runenv_pack(level: int = level) -> int:
                return pack_tree(tree, out, level=level)[1]

            print(_line(f"runenv -{level}", *_timed(runenv_pack, args.repeat), total), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
