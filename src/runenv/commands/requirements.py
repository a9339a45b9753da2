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
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from runenv._cache import Cache, is_verified
from runenv.config.load import VariantConfig
from runenv.config.plan import Plan, make_plan
from runenv.errors import RunenvError, UsageError
from runenv.fetch.metadata import sdist_requires, wheel_requires
from runenv.fetch.wheels import WHEELS_SECTION, Artifact, marker_environment, select_for_plan
from runenv.lock.pylock import read_lock
from runenv.lock.resolve import is_fresh, lock_path
from runenv.pipeline.context import BuildOptions
from runenv.pipeline.locking import lock_request
from runenv.platforms import Platform
from runenv.sources.wheel_cache import CACHE_SECTION as BUILT_SECTION
from runenv.sources.wheel_cache import cache_key, cached_wheel

Kind = Literal["missing", "version", "unknown"]

# pip's own rules (pip._internal.req.req_file): a `#` at the start or after whitespace starts a
# comment; a line ending in a backslash continues on the next one.
_COMMENT = re.compile(r"(^|\s+)#.*$")
# Markers on values a cross target cannot know are taken as true (as wheels._applies does).
_UNKNOWABLE = re.compile(r"platform_release|platform_version")
_INCLUDES = {
    "-r": "an include",
    "--requirement": "an include",
    "-c": "a constraints include",
    "--constraint": "a constraints include",
}
_EDITABLE = ("-e", "--editable")


@dataclass(frozen=True)
class Line:
    """One requirement of the file and the (first physical) line it is on."""

    number: int
    requirement: Requirement


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


# --------------------------------------------------------------------------- the file


def read_requirements(path: Path) -> list[Line]:
    """The requirements of a pip requirements file; UsageError (one line naming the file and
    the line) for anything `--no-index` from the runtime's packages cannot honour: options,
    includes, editables, URLs and paths, or text that is no requirement."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the requirements file ({exc.strerror or exc})"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the requirements file is not UTF-8 text") from None
    return [_requirement(path, number, body) for number, body in _logical_lines(text)]


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, text) of each non-empty line, continuations joined and
    comments removed as pip does it."""
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.endswith("\\") and not _COMMENT.match(raw):
            if not pending:
                first = number
            pending.append(raw[:-1])
            continue
        if _COMMENT.match(raw):
            raw = " " + raw  # a comment line ends a continuation, and stays a comment
        if pending:
            line, pending, number = "".join([*pending, raw]), [], first
        else:
            line = raw
        line = _COMMENT.sub("", line).strip()
        if line:
            yield number, line
    if pending:  # a file ending in a backslash
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            yield first, line


def _requirement(path: Path, number: int, text: str) -> Line:
    where = f"{path}:{number}"
    # pip splits a line at its first token that starts with `-`: the rest are options.
    tokens = text.split()
    at = next((i for i, t in enumerate(tokens) if t.startswith("-")), None)
    if at is not None:
        option = tokens[at].split("=", 1)[0]
        if option in _EDITABLE:
            raise UsageError(
                f"{where}: an editable requirement ({text}) installs from a source tree, which "
                "a block cannot do with --no-index from the runtime's packages: name the "
                "package and its version instead"
            )
        if option in _INCLUDES:
            raise UsageError(
                f"{where}: {_INCLUDES[option]} ({text}) is not followed: a block installs this "
                "one file; put the requirements it names in this file"
            )
        if option == "--hash":
            raise UsageError(
                f"{where}: the option --hash ({text}): pip's hash-checking mode is not "
                "followed here (the runtime's packages may hold wheels built from source, "
                "whose hashes no index publishes): check a copy of the file without --hash"
            )
        raise UsageError(
            f"{where}: the option {option} ({text}) has no place in a block's requirements: "
            "the block installs with --no-index --find-links <runtime>/packages/ only; "
            "remove the option"
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        if "://" in text or text.startswith((".", "/", "~")) or text.endswith(_ARCHIVES):
            raise UsageError(
                f"{where}: {text} is a URL or a path, which a block cannot install with "
                "--no-index from the runtime's packages: name the package and its version"
            ) from None
        why = str(exc).splitlines()[0]  # packaging adds the text and a caret on more lines
        raise UsageError(f"{where}: {text!r} is not a requirement ({why})") from None
    if req.url:
        raise UsageError(
            f"{where}: {text} installs from a URL, which a block cannot do with --no-index "
            f"from the runtime's packages: name {req.name} with its version instead"
        )
    return Line(number, req)


_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


# --------------------------------------------------------------------------- the wheelhouse


@dataclass
class _Wheelhouse:
    """What one platform's runtime carries in packages/, and what it knows about what it lacks."""

    plan: Plan
    artifacts: dict[NormalizedName, Artifact]  # canonical name -> the file the build selects
    let_go: dict[str, str]  # canonical name -> why the resolution policy leaves it out
    env: dict[str, str]
    cache: Cache
    elsewhere: dict[NormalizedName, list[str]] = field(default_factory=dict)  # other platforms'
    _requires: dict[NormalizedName, list[Requirement] | None] = field(default_factory=dict)

    @property
    def seeded(self) -> frozenset[str]:
        """What `python -m venv` installs in a new venv before any requirement: pip, and
        setuptools too before Python 3.12."""
        major, minor = (int(x) for x in self.plan.python_version.split(".")[:2])
        return frozenset({"pip"} if (major, minor) >= (3, 12) else {"pip", "setuptools"})

    def requires_dist(self, name: NormalizedName) -> list[Requirement] | None:
        """The Requires-Dist of a carried package, or None when it is nowhere offline."""
        if name not in self._requires:
            self._requires[name] = _requires_dist(self.artifacts[name], self.plan, self.cache)
        return self._requires[name]

    def why_absent(self, name: str) -> str:
        """Why package `name` is not in the wheelhouse, and what would bring it."""
        plan = self.plan
        key = canonicalize_name(name)
        if key in plan.skipped:
            return f"packages.skip on {plan.platform.value}: {plan.skipped[key]}"
        if key in self.let_go:
            return self.let_go[key]
        # The checked platforms that do carry it: the sign of a package that only a
        # platform-specific (or elsewhere skipped) dependency pulls in.
        carried = (
            f"; the runtime's packages have it on {', '.join(self.elsewhere[key])}"
            if key in self.elsewhere
            else ""
        )
        return (
            f"not in the variant's lock for {plan.platform.value}{carried}: list it in its "
            f"dependencies and run `runenv lock {plan.variant} --platform {plan.platform.value}`"
        )


def _requires_dist(artifact: Artifact, plan: Plan, cache: Cache) -> list[Requirement] | None:
    """Requires-Dist from whichever copy runenv's cache holds (nothing is added to the cache;
    a copy's verification marker may be renewed, as on every take).

    A downloaded wheel lives at its sha256; a wheel built from an sdist or a git commit under
    its build's key (the host-pure key first, as source_build looks); an sdist's PKG-INFO counts
    only where it declares Requires-Dist statically (Metadata-Version 2.2+, not Dynamic).
    """
    if artifact.kind == "wheel":
        return wheel_requires(_cached(cache, WHEELS_SECTION, artifact.sha256, artifact.filename))
    for pure in (True, False):
        key = cache_key(artifact, plan, host_pure=pure)
        wheel = cached_wheel(cache.root / BUILT_SECTION / key[:2] / key)
        if wheel is not None:
            return wheel_requires(wheel)
    if artifact.kind == "sdist":
        return sdist_requires(_cached(cache, WHEELS_SECTION, artifact.sha256, artifact.filename))
    return None


def _cached_form(artifact: Artifact) -> str:
    """How the message names the copy that would have told: the wheel, or one built from source."""
    if artifact.kind == "wheel":
        return artifact.filename
    return f"a wheel built from {artifact.filename}"


def _cached(cache: Cache, section: str, sha256: str, filename: str) -> Path | None:
    # The blob path by hand: Cache.blob_path would create the section in a read-only command.
    path = cache.root / section / sha256[:2] / sha256 / filename
    return path if is_verified(path, sha256) else None


def _wheelhouse(vc: VariantConfig, plan: Plan, cache: Cache) -> _Wheelhouse | str:
    """The platform's wheelhouse, or why its build fails before there is one."""
    path = lock_path(vc.folder, plan.platform)
    try:
        selection = select_for_plan(read_lock(path), plan)
    except RunenvError as exc:  # strictMissing, or a package with neither wheel nor sdist
        return " ".join(str(exc).split())  # the platform's one line
    artifacts = {canonicalize_name(a.name): a for a in selection.artifacts}
    env = marker_environment(plan.platform, plan.python_version)
    return _Wheelhouse(plan, artifacts, dict(selection.missing), env, cache)


# --------------------------------------------------------------------------- the check


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
    houses = [_wheelhouse(vc, plan, cache) for plan in plans]
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


def _check_platform(house: _Wheelhouse, lines: Sequence[Line], file_name: str) -> PlatformReport:
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
                    f"lock and {_cached_form(artifact)} is not in runenv's cache (a build of "
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
