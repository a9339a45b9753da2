"""The cost of the CI plan in runner minutes, against building every target natively.

Estimates by a cost model (`CostModel`), per job and by OS, billed as GitHub bills hosted
runners: each job rounded up to whole minutes, times its OS's multiplier.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runenv.ci.matrix import CROSS_HOST, TargetPlan, is_cached
from runenv.platforms import ALL_PLATFORMS

# GitHub's minute multipliers for its standard hosted runners, as published in "GitHub
# Actions billing" (https://docs.github.com/en/billing/concepts/product-billing/github-actions,
# section "Minute multipliers"): Linux 1, Windows 2, macOS 10. The same page: "GitHub rounds
# the minutes and partial minutes each job uses up to the nearest whole minute."
MULTIPLIERS: Mapping[str, int] = {"linux": 1, "windows": 2, "macos": 10}
OSES = ("linux", "macos", "windows")


@dataclass(frozen=True)
class CostModel:
    """Estimated runner minutes of the pieces of a job, one figure per piece, stated in seconds:
    estimates, not measurements on GitHub's runners (out of reach from where this was written).

    Every job starts (`start`: set up job and checkout, ~6 s) and gets Python from the tool
    cache (`python`, ~6 s). A build job then installs runenv from pip's cache (`install`,
    ~25 s; ~50 s on Windows) and restores runenv's download cache (`cache`, ~15 s); each
    target costs `per_target` (unpack the interpreter, install, pack, manifest, upload, ~20 s)
    and `bytecode` (compiling the tree on two workers and packing the .pyc files, ~15 s: the
    README's figures for 3.12.10) plus its locked files at `mb_per_minute` (hash, unzip,
    compress), `import_check` (~10 s) where it runs natively, and `source_build` per sdist it
    compiles. A verify job installs nothing (its check is the stdlib-only catalogue package,
    run from the checkout); per archive it costs its files at `verify_mb_per_minute`
    (download, hash, unpack an archive about 1.8x their size, bytecode included) and the
    import check. A wheels job installs runenv, fetches and unpacks the interpreter
    (`runtime`, ~12 s: a ~20 MB archive from the cache), downloads its sdists at
    `mb_per_minute` and builds each (`source_build`); its Linux job then takes the wheels
    (`built_wheels`, ~5 s: download the artifact, verify it). Billing rounds each job up to a
    whole minute, so small jobs count whole.

    `source_build` is one figure for every sdist (the lock cannot tell a pure one from a
    compiled one): 1 min. Measured on this project's 2-core Linux development machine with
    `pip wheel --no-binary :all: --no-deps` (an isolated build, its requirements downloaded):
    freesasa 2.2.1, the shipped atls variant's C extension, 16 s; pdbfixer 1.12.0, its pure
    one, 2 s. A minute covers that compile plus installing the build requirements into the
    runtime's build environment on a hosted runner. It is the same figure in a wheels job and
    in a native build, and neither pays it when the wheels are cached (`estimate`'s `cached`):
    what a wheels job saves is the runtime's own build on the native runner (download,
    install, bytecode, pack, upload).
    """

    start: float = 0.1
    python: float = 0.1
    install: Mapping[str, float] = field(
        default_factory=lambda: {"linux": 0.4, "macos": 0.4, "windows": 0.8}
    )
    cache: float = 0.25
    per_target: float = 0.35
    bytecode: float = 0.25
    mb_per_minute: float = 400.0
    import_check: float = 0.15
    source_build: float = 1.0
    verify_mb_per_minute: float = 420.0
    runtime: float = 0.2
    built_wheels: float = 0.08

    def setup(self, os_name: str, *, build: bool = True) -> float:
        """Minutes before a job's own work: start and Python; for a build, runenv and cache."""
        if not build:
            return self.start + self.python
        return self.start + self.python + self.install[os_name] + self.cache


@dataclass(frozen=True)
class Job:
    """One estimated job: the OS it bills as and its minutes."""

    os: str
    minutes: float

    @property
    def billed(self) -> int:
        """Whole minutes, rounded up per job, times the OS's multiplier."""
        return math.ceil(self.minutes) * MULTIPLIERS[self.os]


def _source_minutes(t: TargetPlan, model: CostModel, cached: Collection[str]) -> float:
    """Its source builds, but none when their wheels are cached: a wheels job's output in CI's
    cache, or a native build's in runenv's own cache, which the workflow restores."""
    return 0.0 if is_cached(t, cached) else t.source_builds * model.source_build


def _target_minutes(
    t: TargetPlan, model: CostModel, cached: Collection[str], *, native: bool
) -> float:
    minutes = model.per_target + model.bytecode + t.wheel_bytes / 1e6 / model.mb_per_minute
    if native:
        minutes += model.import_check + _source_minutes(t, model, cached)
    elif t.wheel_job:  # its wheels come from its wheels job (this run's or a cached one)
        minutes += model.built_wheels
    return minutes


def _wheel_job_minutes(t: TargetPlan, model: CostModel) -> float:
    return (
        model.start
        + model.python
        + model.install[t.os]
        + model.runtime
        + t.source_bytes / 1e6 / model.mb_per_minute
        + t.source_builds * model.source_build
    )


def native_jobs(
    targets: Sequence[TargetPlan], model: CostModel, cached: Collection[str] = frozenset()
) -> list[Job]:
    """Today's plan: every target on its own native runner."""
    return [
        Job(t.os, model.setup(t.os) + _target_minutes(t, model, cached, native=True))
        for t in targets
    ]


def planned_jobs(
    targets: Sequence[TargetPlan], model: CostModel, cached: Collection[str] = frozenset()
) -> list[Job]:
    """This plan: the wheels jobs (but the cached ones), the Linux groups, the native builds,
    the verify jobs."""
    jobs = [
        Job(t.os, _wheel_job_minutes(t, model))
        for t in targets
        if t.wheel_job and not is_cached(t, cached)
    ]
    for variant in dict.fromkeys(t.variant for t in targets):
        group = [t for t in targets if t.variant == variant and t.on_cross_host]
        if group:
            minutes = model.setup("linux") + sum(
                _target_minutes(t, model, cached, native=t.platform == CROSS_HOST) for t in group
            )
            jobs.append(Job("linux", minutes))
    for t in targets:
        if not t.on_cross_host:
            jobs.append(
                Job(t.os, model.setup(t.os) + _target_minutes(t, model, cached, native=True))
            )
    for plat in ALL_PLATFORMS:
        checked = [t for t in targets if t.cross and t.platform == plat]
        if checked:
            minutes = model.setup(plat.info.os, build=False) + sum(
                t.wheel_bytes / 1e6 / model.verify_mb_per_minute + model.import_check
                for t in checked
            )
            jobs.append(Job(plat.info.os, minutes))
    return jobs


def _by_os(jobs: Sequence[Job]) -> dict[str, dict[str, Any]]:
    return {
        os_name: {
            "jobs": sum(1 for j in jobs if j.os == os_name),
            "minutes": round(sum(j.minutes for j in jobs if j.os == os_name), 1),
            "billed": sum(j.billed for j in jobs if j.os == os_name),
        }
        for os_name in OSES
    }


def estimate(
    targets: Sequence[TargetPlan],
    model: CostModel | None = None,
    cached: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Runner and billed minutes by OS for this plan and for all-native, and their ratios, with
    the wheels of the targets whose key is in `cached` already built (for both: the plan runs
    no wheels job for them, and all-native takes them from runenv's cache)."""
    model = model or CostModel()
    planned = _by_os(planned_jobs(targets, model, cached))
    native = _by_os(native_jobs(targets, model, cached))

    def mac_win(by_os: Mapping[str, Mapping[str, Any]], key: str) -> float:
        return float(by_os["macos"][key] + by_os["windows"][key])

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    total = sum(v["billed"] for v in planned.values())
    total_native = sum(v["billed"] for v in native.values())
    return {
        "multipliers": dict(MULTIPLIERS),
        "assumed_minutes": dataclasses.asdict(model),  # the cost model's figures (CostModel)
        # Targets with source builds, and how many of them have their wheels cached.
        "source_built_targets": sum(1 for t in targets if t.wheels_key),
        "wheels_cached": sum(1 for t in targets if is_cached(t, cached)),
        "plan": planned,
        "all_native": native,
        "billed": total,
        "all_native_billed": total_native,
        "billed_ratio": ratio(total, total_native),
        "macos_windows_billed_ratio": ratio(mac_win(planned, "billed"), mac_win(native, "billed")),
        "macos_windows_minutes_ratio": ratio(
            mac_win(planned, "minutes"), mac_win(native, "minutes")
        ),
    }
