"""`runenv requirements`: whether a block's requirements.txt installs from a runtime's wheelhouse.

A block installs with `pip install --no-index --find-links <root>/packages/ -r requirements.txt`,
so every requirement (and every dependency of it) must be met by the one wheel per package that
the runtime carries for its platform: the locked packages the build selects (`select_for_plan`),
never a skipped one nor one the resolution policy lets go. This answers that offline, from the
committed locks, per platform: markers are evaluated for the target, extras need their
dependencies, and the named packages' own dependencies are followed through their Requires-Dist.

The locks (PEP 751, written by uv) do not record dependencies, so Requires-Dist comes from a
wheel in runenv's cache: the downloaded wheel, the wheel built from an sdist or a git commit,
or an sdist's PKG-INFO where it declares Requires-Dist statically (Metadata-Version 2.2+). Where
none is there, an extra cannot be checked (said so, never guessed); plain dependencies are then
left to the lock, which resolved them jointly for the platform.

This module is the check and its report; `requirements_file` reads the file and
`requirements_wheelhouse` tells what each platform's runtime carries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from runenv._cache import Cache
from runenv.commands.requirements_file import Line, read_requirements
from runenv.commands.requirements_wheelhouse import Wheelhouse, cached_form, wheelhouse_for
from runenv.config.load import VariantConfig
from runenv.config.plan import Plan, make_plan
from runenv.errors import UsageError
from runenv.lock.resolve import is_fresh, lock_path
from runenv.pipeline.context import BuildOptions
from runenv.pipeline.locking import lock_request
from runenv.platforms import Platform

Kind = Literal["missing", "version", "unknown"]

# Markers on values a cross target cannot know are taken as true (as wheels._applies does).
_UNKNOWABLE = re.compile(r"platform_release|platform_version")


@dataclass(frozen=True)
class Problem:
    """Why the file does not install (or cannot be told to) on one platform."""

    # missing: not in the wheelhouse; version: there, at a version that does not fit;
    # unknown: what would tell (a package's Requires-Dist, the venv's pip) is not had offline
    kind: Kind
    package: str  # the package at fault, as the requirement spells it
    message: str  # the one-line explanation, starting with the package
    line: int  # the requirements file's line it comes from
    required_by: tuple[str, ...] = ()  # the chain from that line down to `package`

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "package": self.package,
            "message": self.message,
            "line": self.line,
            "required_by": list(self.required_by),
        }


@dataclass(frozen=True)
class PlatformReport:
    """The answer for one platform: what fails, what cannot be told offline, what was not
    followed (packages whose Requires-Dist is nowhere offline)."""

    platform: Platform
    problems: tuple[Problem, ...] = ()
    unchecked: tuple[str, ...] = ()  # packages whose dependencies were left to the lock
    error: str | None = None  # the platform's build itself fails: there is no wheelhouse
    stale: str | None = None  # the lock no longer matches the config: what to run

    @property
    def status(self) -> Literal["ok", "fails", "unknown"]:
        if self.error is not None or any(p.kind != "unknown" for p in self.problems):
            return "fails"
        return "unknown" if self.problems else "ok"

    def line(self) -> str:
        """`linux-x64: ok` or `macosx-aarch64: pyarrow: not in the runtime's packages (...)`."""
        return f"{self.platform.value}: {self._answer()}" + (
            f" [{self.stale}]" if self.stale else ""
        )

    def _answer(self) -> str:
        if self.error is not None:
            return f"no runtime to install into: {self.error}"
        if self.problems:
            return "; ".join(p.message for p in self.problems)
        if self.unchecked:
            return (
                f"ok (the dependencies of {', '.join(self.unchecked)} are left to the lock: "
                "their Requires-Dist is not in the lock, nor their wheels in runenv's cache)"
            )
        return "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform.value,
            "status": self.status,
            "problems": [p.to_json() for p in self.problems],
            "unchecked": list(self.unchecked),
            "error": self.error,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class Report:
    """Every platform's answer for one requirements file."""

    variant: str
    requirements: Path
    platforms: tuple[PlatformReport, ...]

    @property
    def ok(self) -> bool:
        return all(p.status == "ok" for p in self.platforms)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "requirements": str(self.requirements),
            "ok": self.ok,
            "platforms": [p.to_json() for p in self.platforms],
        }


def check(
    vc: VariantConfig,
    requirements: Path,
    platforms: Sequence[Platform],
    cache: Cache | None = None,
    *,
    default_index: str | None = None,
) -> Report:
    """Whether the requirements file installs from each platform's wheelhouse (see the module).

    UsageError before anything is checked: a bad requirements file, a platform the variant is
    not built for, or a platform without a lock (naming the `runenv lock` to run).
    """
    lines = read_requirements(requirements)
    plans = [make_plan(vc, p) for p in platforms]
    unlocked = [p for p in plans if not lock_path(vc.folder, p.platform).is_file()]
    if unlocked:
        runs = " and ".join(
            f"`runenv lock {vc.variant} --platform {p.platform.value}`" for p in unlocked
        )
        names = ", ".join(p.platform.value for p in unlocked)
        raise UsageError(f"{vc.variant} has no lock for {names}: run {runs}")
    cache = cache or Cache.default()
    houses = [wheelhouse_for(vc, plan, cache) for plan in plans]
    carried: dict[NormalizedName, list[str]] = {}
    for house in houses:
        if not isinstance(house, str):
            for name, artifact in house.artifacts.items():
                carried.setdefault(name, []).append(
                    f"{house.plan.platform.value} ({artifact.version})"
                )
    reports = []
    for plan, house in zip(plans, houses, strict=True):
        if isinstance(house, str):
            reports.append(PlatformReport(plan.platform, error=house))
            continue
        house.elsewhere = {n: w for n, w in carried.items() if n not in house.artifacts}
        report = _check_platform(house, lines, requirements.name)
        reports.append(replace(report, stale=_stale(vc, plan, default_index)))
    return Report(vc.variant, requirements, tuple(reports))


def _stale(vc: VariantConfig, plan: Plan, default_index: str | None) -> str | None:
    """What to run when the platform's lock no longer matches the config (a build would lock
    again, and carry what that lock says), else None."""
    options = BuildOptions(vc.project / "dist", vc.project / "pydist", default_index=default_index)
    if is_fresh(lock_path(vc.folder, plan.platform), lock_request(plan, options)):
        return None
    return (
        f"{lock_path(vc.folder, plan.platform).name} is out of date with the config (or was "
        f"made from another index): run `runenv lock {vc.variant} --platform "
        f"{plan.platform.value}` for what a build would carry"
    )


def _applies(marker: Marker | None, env: Mapping[str, str], extra: str = "") -> bool:
    if marker is None or _UNKNOWABLE.search(str(marker)):
        return True
    try:
        return marker.evaluate({**env, "extra": extra})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True  # a marker the target's values cannot decide: the requirement counts


def _check_platform(house: Wheelhouse, lines: Sequence[Line], file_name: str) -> PlatformReport:
    problems: dict[str, Problem] = {}  # one per package: the first path that reaches it
    unchecked: list[str] = []
    seen: set[tuple[str, str]] = set()  # (package, extra or "") already followed

    def report(problem: Problem) -> None:
        problems.setdefault(canonicalize_name(problem.package), problem)

    def visit(req: Requirement, line: Line, chain: tuple[str, ...]) -> None:
        name = canonicalize_name(req.name)
        where = f"{file_name}:{line.number}"
        via = f"required by {' <- '.join(reversed(chain))}, {where}" if chain else where
        artifact = house.artifacts.get(name)
        if artifact is None and name in house.seeded:
            # `python -m venv` put it there from the runtime's ensurepip: pip finds it
            # installed, unless a pin asks for another version than the bundled one.
            if req.specifier:
                text = (
                    f"{req.name}: cannot tell offline whether the venv's {req.name} (from the "
                    f"runtime's ensurepip) satisfies {req.name}{req.specifier}, and the "
                    f"runtime's packages do not have it ({via})"
                )
                report(Problem("unknown", req.name, text, line.number, chain))
            return
        if artifact is None:
            why = house.why_absent(req.name)
            text = f"{req.name}: not in the runtime's packages ({why}; {via})"
            report(Problem("missing", req.name, text, line.number, chain))
            return
        if req.specifier and not req.specifier.contains(artifact.version, prereleases=True):
            text = (
                f"{req.name}: the runtime's packages have {artifact.version}, which does not "
                f"satisfy {req.name}{req.specifier} ({via})"
            )
            report(Problem("version", req.name, text, line.number, chain))
            return
        extras = sorted(canonicalize_name(e) for e in req.extras)
        todo = [e for e in ["", *extras] if (name, e) not in seen]
        if not todo:
            return
        requires = house.requires_dist(name)
        if requires is None:
            if extras and todo != [""]:
                wanted = f"{req.name}[{','.join(extras)}]"
                plan = house.plan
                text = (
                    f"{wanted}: cannot tell offline whether the runtime's packages hold what "
                    f"the extras need ({via}): {artifact.name}'s Requires-Dist is not in the "
                    f"lock and {cached_form(artifact)} is not in runenv's cache (a build of "
                    f"{plan.variant} for {plan.platform.value} puts it there)"
                )
                report(Problem("unknown", wanted, text, line.number, chain))
            elif artifact.name not in unchecked:
                unchecked.append(artifact.name)
            seen.update((name, e) for e in todo)
            return
        seen.update((name, e) for e in todo)
        shown = f"[{','.join(extras)}]" if extras else ""
        here = (*chain, f"{artifact.name} {artifact.version}{shown}")
        for dep in requires:
            if any(_applies(dep.marker, house.env, e) for e in todo):
                visit(dep, line, here)

    for line in lines:
        if _applies(line.requirement.marker, house.env):
            visit(line.requirement, line, ())
    return PlatformReport(house.plan.platform, tuple(problems.values()), tuple(unchecked))
