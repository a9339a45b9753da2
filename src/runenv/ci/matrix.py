"""The CI plan: which (variant, platform) is built where, and what that costs in runner minutes.

Planned by capability, offline, from the committed locks. Every target with a committed lock
is built on a Linux runner, one job per variant (linux-x64 natively, the others cross). A
target that needs source builds (the sdists and git commits `wheels.select_for_plan` picks, as
the build does: no fitting wheel, `forceSource`, `forceNoBinaryList`, a `buildWheel` recipe)
first gets a short `wheels` job on its native runner, which builds only those wheels (`runenv
wheels`, with the target runtime's own interpreter); the Linux job takes them with `runenv build
--built-wheels` and builds the runtime. The lock cannot tell a pure-Python sdist from a
compiled one, and the planner builds nothing to find out, so every source goes to the wheels
job. A target without a committed lock is built whole on its native runner. Every cross-built
archive is then verified on its native runner (`verify` entries, one job per runner):
unpacked at a new path and import-checked there, as a native build checks its tree.

A wheels job's output is kept in CI's cache under `CACHE_PREFIX` + its `wheels_key`
(`built_wheels.wheels_key`: the target and its sources' build cache keys, from the lock), so
the next run with the same lock skips the job: given the keys the cache holds
(`--cached-wheels`), the plan drops those wheels entries, and the build entries still name
each key to restore. A native build reuses its built wheels from runenv's own cache the same
way, so the estimate compares both plans under the same cache state.

The GitHub Actions workflow feeds `runenv matrix --json`'s `wheels`, `build` and `verify`
members verbatim to three jobs' `strategy.matrix` through `fromJSON`, so this module is the
one place that decides what CI builds and where.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.config.project import list_variants
from runenv.errors import UsageError
from runenv.fetch import wheels
from runenv.lock import resolve as lock
from runenv.lock.pylock import read_lock
from runenv.platforms import ALL_PLATFORMS, Platform
from runenv.sources.built_wheels import wheels_key

CROSS_HOST = Platform.LINUX_X64
"""The platform whose runner cross-builds the others (its own targets are native there)."""

WHEELS_PLATFORMS = tuple(p for p in ALL_PLATFORMS if p != CROSS_HOST)
"""The platforms whose wheels a cross build can need from their native runner."""


def key_field(platform: Platform) -> str:
    """The build entry's key holding the wheels key to restore for `platform`."""
    return "wheels_key_" + platform.value.replace("-", "_")


KEYS = (
    "variant",
    "platforms",
    "runner",
    "python_version",
    "wheels",
    *(key_field(p) for p in WHEELS_PLATFORMS),
)
"""The keys of every build entry, as the workflow reads them (`matrix.variant`, ...).
`platforms` is space-separated: a Linux job builds all of a variant's cross targets; `wheels`
(space-separated, maybe empty) names those whose source wheels it takes, and
`wheels_key_<platform>` (empty where it takes none) the key each is cached under: one static
restore step per platform reads its own field."""

WHEEL_KEYS = ("variant", "platform", "runner", "python_version", "wheels_key")
"""The keys of every wheels entry: one target's source wheels, built on its native runner and
saved to CI's cache under `CACHE_PREFIX` + `wheels_key`."""

CACHE_PREFIX = "runenv-built-wheels-"
"""The CI cache key of a wheels job's output is this + its `wheels_key`."""

VERIFY_KEYS = ("platform", "runner", "variants")
"""The keys of every verify entry: one native runner, the variants cross-built for it."""

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
class TargetPlan:
    """One (variant, platform): where it must be built, and what it installs."""

    variant: str
    platform: Platform
    python_version: str
    native_reasons: tuple[str, ...]  # what needs its native runner: its sources, or no lock
    wheel_bytes: int  # the locked files it installs (download, install and pack cost)
    source_builds: int  # sdists and git commits it builds from source
    locked: bool = True  # it has a committed lock (else it is built whole on its runner)
    source_bytes: int = 0  # its sdists (a wheels job downloads them)
    wheels_key: str = ""  # `built_wheels.wheels_key` of its sources ("" when it has none)

    @property
    def os(self) -> str:
        return self.platform.info.os

    @property
    def cross(self) -> bool:
        """Built on the cross host though it is another platform (then verified natively)."""
        return self.platform != CROSS_HOST and self.locked

    @property
    def wheel_job(self) -> bool:
        """Cross-built, with its source wheels built first by a wheels job on its runner."""
        return self.cross and self.source_builds > 0

    @property
    def on_cross_host(self) -> bool:
        return self.platform == CROSS_HOST or self.cross


def plan_target(project: Path, variant: str, platform: Platform) -> TargetPlan:
    """Decide one target from its config and committed lock (nothing is fetched)."""
    vc = load_variant(project, variant)
    plan = make_plan(vc, platform)
    path = lock.lock_path(vc.folder, platform)
    if not path.is_file():
        reason = (
            f"no committed lock ({path.name}): run `runenv lock {variant} --platform {platform}`"
        )
        return TargetPlan(variant, platform, plan.python_version, (reason,), 0, 0, locked=False)
    # The build's own choice: `packages.resolution` may leave a package out (not native);
    # buildWheel and forceNoBinaryList entries are in the plan's force_source (native).
    artifacts = wheels.select_for_plan(read_lock(path), plan).artifacts
    sources = [a for a in artifacts if a.from_source]  # an sdist or a git commit
    reasons = tuple(f"{a.name} {a.version}: {a.reason or 'built from source'}" for a in sources)
    size = sum(a.size or 0 for a in artifacts)
    source_size = sum(a.size or 0 for a in sources)
    return TargetPlan(
        variant, platform, plan.python_version, reasons, size, len(sources),
        source_bytes=source_size, wheels_key=wheels_key(plan, sources) if sources else "",
    )  # fmt: skip


def plan_targets(project: Path) -> list[TargetPlan]:
    """Every (variant, platform) to build: variants sorted, platforms in the model's order."""
    targets: list[TargetPlan] = []
    for variant in list_variants(project):
        wanted = set(load_variant(project, variant).platforms)
        targets.extend(plan_target(project, variant, p) for p in ALL_PLATFORMS if p in wanted)
    return targets


def build_entries(targets: Sequence[TargetPlan]) -> list[dict[str, str]]:
    """The build jobs: per variant, one Linux job for its cross host and cross targets, then
    one job per target that needs its native runner."""
    entries: list[dict[str, str]] = []
    for variant in dict.fromkeys(t.variant for t in targets):
        mine = [t for t in targets if t.variant == variant]
        group = [t for t in mine if t.on_cross_host]
        if group:
            entries.append(_build_entry(group, CROSS_HOST))
        entries.extend(_build_entry([t], t.platform) for t in mine if not t.on_cross_host)
    return entries


def _build_entry(group: Sequence[TargetPlan], runner_of: Platform) -> dict[str, str]:
    needing = {t.platform: t.wheels_key for t in group if t.wheel_job}
    return {
        "variant": group[0].variant,
        "platforms": " ".join(t.platform.value for t in group),
        "runner": runner_of.info.github_runner,
        "python_version": group[0].python_version,
        "wheels": " ".join(p.value for p in needing),
        **{key_field(p): needing.get(p, "") for p in WHEELS_PLATFORMS},
    }


def wheel_entries(
    targets: Sequence[TargetPlan], cached: Collection[str] = frozenset()
) -> list[dict[str, str]]:
    """The wheels jobs: one per cross-built target with source builds, on its native runner,
    but for those whose wheels key is in `cached` (their wheels are in CI's cache already)."""
    return [_wheel_entry(t) for t in targets if t.wheel_job and not is_cached(t, cached)]


def cached_entries(targets: Sequence[TargetPlan], cached: Collection[str]) -> list[dict[str, str]]:
    """The wheels entries `wheel_entries` drops because their wheels are cached."""
    return [_wheel_entry(t) for t in targets if t.wheel_job and is_cached(t, cached)]


def _wheel_entry(t: TargetPlan) -> dict[str, str]:
    return {
        "variant": t.variant,
        "platform": t.platform.value,
        "runner": t.platform.info.github_runner,
        "python_version": t.python_version,
        "wheels_key": t.wheels_key,
    }


def is_cached(t: TargetPlan, cached: Collection[str]) -> bool:
    """Whether the wheels of `t`'s source builds are cached (it has some, under that key)."""
    return bool(t.wheels_key) and t.wheels_key in cached


def all_keys(targets: Sequence[TargetPlan]) -> frozenset[str]:
    """Every target's wheels key: the cache after a run with these locks (`estimate`)."""
    return frozenset(t.wheels_key for t in targets if t.wheels_key)


def parse_cached_keys(text: str, source: str) -> frozenset[str]:
    """The wheels keys listed in `text`, one a line, each bare or as its CI cache key
    (`CACHE_PREFIX` + key, as `gh cache list` prints it); blank lines are ignored."""
    keys: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key = line.strip().removeprefix(CACHE_PREFIX)
        if not re.fullmatch(r"[0-9a-f]{64}", key, re.ASCII):
            raise UsageError(
                f"{source}: line {number}: {line.strip()[:80]!r} is not a wheels key (64 hex "
                f"digits, a `wheels_key` of `runenv matrix --json`, maybe after "
                f"{CACHE_PREFIX!r}): list one key a line"
            )
        keys.add(key)
    return frozenset(keys)


def verify_entries(targets: Sequence[TargetPlan]) -> list[dict[str, str]]:
    """One job per native runner with cross-built archives: the variants it verifies."""
    entries = []
    for plat in ALL_PLATFORMS:
        variants = [t.variant for t in targets if t.cross and t.platform == plat]
        if variants:
            entries.append(
                {
                    "platform": plat.value,
                    "runner": plat.info.github_runner,
                    "variants": " ".join(variants),
                }
            )
    return entries


# --- the estimate ------------------------------------------------------------------------


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


# --- what `runenv matrix` prints ---------------------------------------------------------


def github_matrix(entries: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """`entries` in the shape `strategy.matrix` takes: `{"include": [...]}`."""
    return {"include": entries}


def matrix_data(project: Path, cached: Collection[str] = frozenset()) -> dict[str, Any]:
    """What `runenv matrix --json` holds: the `wheels`, `build` and `verify` matrices, the wheels
    entries left out because `cached` holds their key, the estimate under that cache state."""
    targets = plan_targets(project)
    return {
        "wheels": github_matrix(wheel_entries(targets, cached)),
        "build": github_matrix(build_entries(targets)),
        "verify": github_matrix(verify_entries(targets)),
        "cached_wheels": cached_entries(targets, cached),
        "estimate": estimate(targets, cached=cached),
    }


def matrix_json(project: Path, cached: Collection[str] = frozenset()) -> str:
    """`matrix_data` on one line (it goes through `$GITHUB_OUTPUT`)."""
    return json.dumps(matrix_data(project, cached), separators=(",", ":"))


TABLE_KEYS = ("variant", "platforms", "runner", "python_version", "wheels")
"""The build entries' keys the table shows (the wheels keys are in the wheels table)."""


def _table(keys: Sequence[str], entries: Sequence[Mapping[str, str]]) -> list[str]:
    rows = [list(keys), *([_short(k, e[k]) for k in keys] for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _short(key: str, value: str) -> str:
    return value[:16] if key == "wheels_key" else value  # enough to tell keys apart


def matrix_table(project: Path, cached: Collection[str] | None = None) -> list[str]:
    """Human-readable lines for `runenv matrix`: the plan, why targets are native, the cost.

    With `cached` (the keys CI's cache holds), the plan and one estimate for that state;
    without, the plan of a first run and two estimates: the first run, and the next run with
    the same locks, whose wheels are all cached.
    """
    targets = plan_targets(project)
    wheel_jobs = wheel_entries(targets, cached or frozenset())
    lines = ["wheels jobs (source builds on the native runner, for a cross build on Linux):"]
    lines += _table(WHEEL_KEYS, wheel_jobs) if wheel_jobs else ["(none)"]
    if cached is not None:
        skipped = cached_entries(targets, cached)
        lines += [
            "",
            "wheels jobs skipped (their wheels are in CI's cache; the build restores them):",
        ]
        lines += _table(WHEEL_KEYS, skipped) if skipped else ["(none)"]
    lines += ["", "build jobs:", *_table(TABLE_KEYS, build_entries(targets))]
    verify = verify_entries(targets)
    lines += ["", "verify jobs (cross-built archives, checked on their native runner):"]
    lines += _table(VERIFY_KEYS, verify) if verify else ["(none)"]
    native = [t for t in targets if t.native_reasons]
    if native:
        lines += ["", "on the native runner because (a wheels job, or the whole build):"]
        for t in native:
            lines += [f"  {t.variant} {t.platform}: {why}" for why in t.native_reasons]
    lines += ["", "billed: each job rounded up to whole minutes x multiplier"]
    if cached is not None:
        est = estimate(targets, cached=cached)
        title = (
            f"estimated minutes with the wheels CI has cached ({est['wheels_cached']} of "
            f"{est['source_built_targets']} targets with source builds; all native likewise):"
        )
        return [*lines, "", title, *_estimate_lines(est)]
    first = estimate(targets)
    again = estimate(targets, cached=all_keys(targets))
    lines += [
        "",
        "estimated minutes, first run (nothing cached: every wheels job runs, every source is",
        "built, in all native too):",
        *_estimate_lines(first),
        "",
        "estimated minutes, wheels cached (the locks unchanged since the last run: no wheels",
        "job runs, and all native takes its built wheels from runenv's cache):",
        *_estimate_lines(again),
    ]
    return lines


def _estimate_lines(est: Mapping[str, Any]) -> list[str]:
    width = 30
    lines = [f"  {'':9}{'this plan':<{width}}{'all native':<{width}}multiplier"]
    for os_name in OSES:
        mine, theirs = _cell(est["plan"][os_name]), _cell(est["all_native"][os_name])
        lines.append(f"  {os_name:9}{mine:<{width}}{theirs:<{width}}x{MULTIPLIERS[os_name]}")
    total, native_total = f"{est['billed']} billed", f"{est['all_native_billed']} billed"
    lines.append(f"  {'total':9}{total:<{width}}{native_total}")
    lines.append(
        f"  macOS + Windows billed minutes: {est['macos_windows_billed_ratio']}x of all native "
        f"(runner minutes: {est['macos_windows_minutes_ratio']}x)"
    )
    return lines


def _cell(by: Mapping[str, Any]) -> str:
    jobs = f"{by['jobs']} job" + ("" if by["jobs"] == 1 else "s")
    return f"{jobs}, {by['minutes']:.1f} min, {by['billed']} billed"
