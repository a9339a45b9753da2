"""The CI plan: which (variant, platform) is built where (its cost: `estimate`; printed: `render`).

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

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.config.project import list_variants
from runenv.errors import UsageError
from runenv.fetch import wheels
from runenv.lock import resolve
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
    path = resolve.lock_path(vc.folder, platform)
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
