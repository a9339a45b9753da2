"""The main benchmark's measurements, by group (`--skip GROUP` leaves one out); each takes the
run's setup, its recorder and the round's number."""

from __future__ import annotations

from collections.abc import Callable

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
