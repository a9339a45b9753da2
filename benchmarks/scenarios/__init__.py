"""The main benchmark's measurements, by group (`--skip GROUP` leaves one out); each takes the
run's setup, its recorder and the round's number. `scenario_parser` is the command line the
single-input timings (`install`, `pack`) share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from benchmarks.project import Setup
from benchmarks.record import Recorder
from benchmarks.scenarios.baselines import measure_reference, measure_uv, measure_uv_bytecode
from benchmarks.scenarios.build import measure_runenv, measure_runenv_all, measure_runenv_lock
from benchmarks.scenarios.consumer import measure_consumer

MEASURES: dict[str, Callable[[Setup, Recorder, int], None]] = {
    "runenv": measure_runenv,
    "lock": measure_runenv_lock,
    "all": measure_runenv_all,
    "reference": measure_reference,
    "uv": measure_uv,
    "uvbc": measure_uv_bytecode,
    "consumer": measure_consumer,
}
GROUPS = tuple(MEASURES)


def scenario_parser(
    name: str, doc: str | None, input_name: str, repeat: int
) -> argparse.ArgumentParser:
    """`python -m benchmarks NAME INPUT [--repeat N]` (`repeat` rounds by default), described by
    the first line of the scenario's docstring; the scenario adds its own options."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {name}", description=(doc or "").splitlines()[0]
    )
    parser.add_argument(input_name, type=Path)
    parser.add_argument("--repeat", type=int, default=repeat)
    return parser
