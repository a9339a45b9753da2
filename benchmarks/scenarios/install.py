"""Time `runenv.install.wheels.install_wheels` against plain pypa/installer on a folder of wheels.

Usage: python -m benchmarks install WHEEL_DIR [--python 3.12] [--repeat 5]
e.g. after `pip download numpy==2.2.6 pandas==2.2.3 scipy==1.15.3 scikit-learn==1.6.1
--only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d /tmp/whl`.
Runs are interleaved (one of each method per round) so that machine noise hits all alike.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from benchmarks.scenarios import scenario_parser
from runenv.install.wheels import install_wheels
from runenv.platforms import Platform


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks install WHEEL_DIR [--python X.Y] [--repeat N]`."""
    parser = scenario_parser("install", __doc__, "wheels", repeat=5)
    parser.add_argument("--python", default="3.12")
    args = parser.parse_args(argv)
    wheels = sorted(args.wheels.glob("*.whl"))
    plat = Platform.LINUX_X64
    size = sum(w.stat().st_size for w in wheels)
    print(f"{len(wheels)} wheels, {size:,} bytes")

    def plain(root: Path, validate: bool) -> None:
        scheme = {k: str(root / v) for k, v in plat.info.scheme(args.python).items()}
        for wheel in wheels:
            with WheelFile.open(wheel) as source:
                if validate:
                    source.validate_record()
                dest = SchemeDictionaryDestination(scheme, str(root / "bin/python3"), "posix")
                installer.install(source, dest, {"INSTALLER": b"bench\n"})

    methods: dict[str, Callable[[Path], object]] = {
        "installer + validate_record": lambda root: plain(root, True),
        "installer, no validation": lambda root: plain(root, False),
        "runenv install_wheels": lambda root: install_wheels(root, wheels, plat, args.python),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, method in methods.items():
                root = Path(tmp) / "tree"
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir()
                start = time.perf_counter()
                method(root)
                times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(
            f"{name:<28} {statistics.median(values):6.2f} s ({min(values):.2f}..{max(values):.2f})"
        )
    return 0
