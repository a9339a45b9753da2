"""Copies of the catalogue package installing one archive side by side, in shuffled rounds:
the by-hand experiments of issue 24 (does this change make the consumer faster?) as one command.

    python -m benchmarks.consumer_ab CATALOGUE VARIANT --package NAME=FOLDER ... [--tar]
        [--rounds N] [--work DIR]

Each FOLDER holds a `runenv_catalogue` package (this checkout's `catalogue/src`, or a copy with
one change), compiled into WORK afresh on each run, as the benchmark compiles its own. Every
command runs under the benchmark's protocol (`measure_consumer`): `TRASH.settle`, the page cache
dropped, the archive and the tools read back in; the order within a round is shuffled. Every
tree is compared with the first one written (tar's, with `--tar`), so a change that is faster
because it writes another tree is caught. Printed: each run, then each package's median wall and
CPU time and, with `--tar`, the median of its rounds' ratios to tar.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from benchmarks.log import BenchError, log
from benchmarks.runner import clean_env, run
from benchmarks.scenarios.consumer import CONSUMER, compiled_copy, room, tree_listing, warm
from benchmarks.trash import TRASH, drop_page_cache

TAR = "tar"


def archive_of(catalogue: Path, variant: str) -> Path:
    """The local archive the catalogue's one entry of `variant` names by a `file://` URL."""
    try:
        entries = json.loads(catalogue.read_text(encoding="utf-8"))["variants"][variant]
        (entry,) = entries.values()
        url = urlsplit(entry["url"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BenchError(f"{catalogue}: no single entry for {variant!r} ({exc})") from None
    if url.scheme != "file":
        raise BenchError(f"{catalogue}: {variant}'s archive is not a file:// URL: {entry['url']}")
    archive = Path(unquote(url.path))
    if not archive.is_file():
        raise BenchError(f"{catalogue}: {variant}'s archive {archive} is not there")
    return archive


def packages(specs: Sequence[str], work: Path, keep: int) -> dict[str, Path]:
    """NAME=FOLDER pairs, each FOLDER's `runenv_catalogue` compiled into `work/packages/NAME`."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, _, folder = spec.partition("=")
        package = Path(folder) / "runenv_catalogue"
        if (
            not name.isidentifier()
            or name == TAR
            or name in out
            or not (package / "__init__.py").is_file()
        ):
            raise BenchError(
                f"--package {spec}: want NAME=FOLDER, NAME a new identifier (not {TAR!r}), "
                "FOLDER holding runenv_catalogue/"
            )
        # Compiled again on each run: FOLDER may have changed.
        TRASH.discard(work / "packages" / name, keep, TRASH.QUIET_TRASH)
        out[name] = compiled_copy(package, work / "packages" / name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.consumer_ab", description=__doc__)
    parser.add_argument("catalogue", type=Path, help="a catalogue.json naming a file:// archive")
    parser.add_argument("variant")
    parser.add_argument("--package", action="append", required=True, metavar="NAME=FOLDER")
    parser.add_argument("--tar", action="store_true", help="tar xzf of the archive too")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("consumer-ab"))
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    try:
        archive = archive_of(args.catalogue, args.variant)
        args.work.mkdir(parents=True, exist_ok=True)
        TRASH.root = args.work.resolve() / "trash"
        # The free bytes under which the trash is emptied (each emptying costs the next
        # command minutes: `Trash`): two more rounds' trees, as the benchmark's consumer keeps.
        keep = room(archive.stat().st_size)
        found = packages(args.package, args.work, keep)
    except BenchError as exc:
        parser.error(str(exc))
    try:
        results = rounds(args.catalogue, args.variant, archive, found, args, keep)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report(results)
    return 0


Result = dict[str, list[tuple[float, float]]]  # name: (wall, cpu) per round


def rounds(
    catalogue: Path,
    variant: str,
    archive: Path,
    found: dict[str, Path],
    args: argparse.Namespace,
    keep: int,
) -> Result:
    """`args.rounds` rounds of every package's install (and tar's), in shuffled order; the
    trees go to the trash, emptied when fewer than `keep` bytes are free."""
    names = [*found, *([TAR] if args.tar else [])]
    results: Result = {name: [] for name in names}
    first: dict[str, tuple[object, ...]] | None = None
    for i in range(1, args.rounds + 1):
        for name in random.sample(names, len(names)):
            dest = args.work / f"{name}-{i}"
            TRASH.discard(dest, keep, TRASH.QUIET_TRASH)  # an earlier run's, same --work
            command, env, root = _command(name, found, catalogue, variant, archive, dest)
            TRASH.settle()
            drop_page_cache()
            # The package about to run (tar's round: any) and both tools, back in the page cache.
            warm(archive, clean_env() | {"PYTHONPATH": str(found.get(name, found[names[0]]))})
            done = run(command, env=env, what=name)
            results[name].append((done.seconds, done.cpu))
            tree = root()
            listing = tree_listing(tree, frozenset({".provisioned"}))
            first = first or listing
            same = "identical" if listing == first else "DIFFERS from the first tree"
            log(
                f"round {i} {name}: {done.seconds:.2f} s, cpu {done.cpu:.2f} s, "
                f"peak RSS {done.max_rss / 1e6:.0f} MB; {len(listing):,} entries, {same}"
            )
            if listing != first:
                raise BenchError(f"round {i} {name}: the tree differs from the first one")
            TRASH.discard(dest, keep, TRASH.QUIET_TRASH)
    return results


def _command(
    name: str, found: dict[str, Path], catalogue: Path, variant: str, archive: Path, dest: Path
) -> tuple[list[object], dict[str, str], Callable[[], Path]]:
    """The command that writes `name`'s tree under `dest`, its environment, and where the tree
    is once it ran."""
    if name == TAR:
        dest.mkdir()
        return ["tar", "xzf", archive, "-C", dest], clean_env(), lambda: dest
    env = clean_env() | {"PYTHONPATH": str(found[name])}
    command = [sys.executable, "-c", CONSUMER, catalogue, "install", variant, "--cache-dir", dest]
    return command, env, lambda: next(p for p in dest.iterdir() if p.is_dir())


def report(results: Result) -> None:
    """Each one's median wall and CPU time and, with tar's rounds, the median of its ratios."""
    tar = [wall for wall, _ in results.get(TAR, [])]
    for name, runs in results.items():
        walls = [wall for wall, _ in runs]
        line = (
            f"{name}: median {statistics.median(walls):.2f} s ({min(walls):.2f}-{max(walls):.2f}),"
            f" cpu {statistics.median(cpu for _, cpu in runs):.2f} s"
        )
        if tar and name != TAR:
            ratios = [wall / t for wall, t in zip(walls, tar, strict=True)]
            line += f", {statistics.median(ratios):.2f}x tar xzf (median of the rounds' ratios)"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
