"""Lock one platform's dependencies with uv into `versions/<variant>/pylock.<platform>.toml`.

uv resolves for a foreign platform with markers evaluated for that platform (pip's `--platform`
does not), and writes PEP 751 locks with a sha256 for every file. runenv adds a
`[tool.runenv]` table holding the hash of everything that decided the lock, so a build can tell
a lock that still matches its configuration from a stale one without resolving again.

Index choice: the variant's additional registries are passed as `--index` and the default
registry as `--default-index`, with uv's `first-index` strategy. uv gives `--index` entries
priority over the default, so a package an additional registry serves (e.g. `cudf-cu12` on
pypi.nvidia.com) comes only from that registry, and a same-named upload to PyPI can never win
(dependency confusion); packages it does not serve come from the default. This differs from
pip's `--extra-index-url`, which takes the best version across all registries
(`unsafe-best-match`); that mode is never used here, so a registry that serves a package only
partially fails the lock with uv's explanation instead of silently mixing sources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import tempfile
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tomli_w
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runenv import _bounded
from runenv._cache import Cache, staged_file
from runenv.config.variant import (
    REFERENCE_PREFIX,
    VARIANT_NAMES,
    VERSIONS_DIR,
    is_git_dependency,
    parse_git,
)
from runenv.errors import LockError, SubprocessError, UsageError
from runenv.fetch.download import redact
from runenv.lock import conflicts as _conflicts
from runenv.lock.uv import run_uv
from runenv.platforms import DEFAULT_GLIBC, DEFAULT_MACOS, Platform

# Bump when what runenv writes into a lock, or how it resolves, changes meaning: every
# existing lock then counts as stale.
LOCK_FORMAT_VERSION = 1
PYPI_SIMPLE = "https://pypi.org/simple"
TOOL_TABLE = "runenv"


@dataclass(frozen=True)
class LockRequest:
    """Everything that decides a lock: change any of it and the lock must be redone."""

    requirements: tuple[str, ...]  # after overrides and skips, e.g. ("pandas==2.2.3",)
    python_version: str  # "3.12.10"
    platform: Platform
    indexes: tuple[str, ...]  # additional index URLs, in priority order
    default_index: str | None = None  # None: PyPI
    skipped: tuple[str, ...] = ()  # package names skipped on this platform
    constraints: tuple[str, ...] = ()  # uv constraints (narrow what may be chosen)
    overrides: tuple[str, ...] = ()  # uv overrides: replace every requirement on a package
    no_deps: tuple[str, ...] = ()  # packages locked without their dependencies
    glibc: tuple[int, int] = DEFAULT_GLIBC  # Linux: the manylinux floor to resolve for
    macos: tuple[int, int] | None = None  # macOS: the minimum to resolve for (None: default)
    # packages.resolution without strictMissing: a requirement that cannot be installed on
    # the platform (no file of it or of a dependency, or it needs a skipped package) is left
    # out of the lock as missing, with its reason, instead of failing it. Not hashed: a lock
    # records what it left out, which a build under a strict policy refuses (wheels.py).
    drop_missing: bool = False

    @property
    def floor(self) -> tuple[int, int] | None:
        """The OS floor that decides which wheels fit: glibc on Linux, macOS on macOS."""
        info = self.platform.info
        if info.os == "linux":
            return self.glibc
        if info.os == "macos":
            return self.macos or DEFAULT_MACOS[self.platform]
        return None

    def inputs_hash(self) -> str:
        """sha256 of a canonical JSON of the request and the lock-format version."""
        floor = self.floor
        doc = {
            "lock-format": LOCK_FORMAT_VERSION,
            "requirements": sorted(_normal(r) for r in self.requirements),
            "constraints": sorted(_normal(r) for r in self.constraints),
            "python-version": self.python_version,
            "platform": str(self.platform),
            "floor": list(floor) if floor else None,
            "indexes": list(self.indexes),
            "default-index": self.default_index or PYPI_SIMPLE,
            "skipped": sorted({canonicalize_name(s) for s in self.skipped}),
        }
        # Added only when used, so locks written before these existed stay fresh.
        if self.overrides:
            doc["overrides"] = sorted(_normal(r) for r in self.overrides)
        if self.no_deps:
            doc["no-deps"] = sorted({canonicalize_name(n) for n in self.no_deps})
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class LockedFile:
    """One file of a locked package: where it is and what its bytes hash to."""

    url: str  # an http(s) URL, or an absolute path for a PEP 751 `path` entry
    filename: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class LockedPackage:
    """A pinned package with the files the lock allows for it."""

    name: str
    version: str
    wheels: tuple[LockedFile, ...]
    sdist: LockedFile | None
    index: str | None = None
    marker: str | None = None
    vcs: VcsSource | None = None

    @property
    def from_git(self) -> bool:
        return self.vcs is not None


@dataclass(frozen=True)
class VcsSource:
    """A package locked to a git commit (PEP 751 `vcs`): built from that commit's tree."""

    url: str
    commit: str  # the full commit hash
    requested: str | None = None


@dataclass(frozen=True)
class Lock:
    """A parsed lock. `inputs_hash` is None for a lock runenv did not write."""

    packages: tuple[LockedPackage, ...]
    requires_python: str | None = None
    inputs_hash: str | None = None
    platform: str | None = None
    python_version: str | None = None
    overrides: tuple[str, ...] = ()  # the overrides the lock was resolved with
    missing: Mapping[str, str] = dataclasses.field(default_factory=dict)  # left out: why

    def package(self, name: str) -> LockedPackage | None:
        """The locked package called `name` (any spelling), if any."""
        want = canonicalize_name(name)
        return next((p for p in self.packages if canonicalize_name(p.name) == want), None)


def lock_path(variant_dir: Path, platform: Platform) -> Path:
    """Where a variant's lock for `platform` lives."""
    return variant_dir / f"pylock.{platform}.toml"


def lock(
    request: LockRequest,
    path: Path,
    *,
    cache: Cache,
    timeout: float,
    log_file: Path | None = None,
    offline: bool = False,
) -> Lock:
    """Resolve `request` with uv and write the lock to `path` atomically; return it.

    Raises LockError when uv cannot resolve (with uv's explanation), when a file lacks a
    sha256, or when a skipped package is still required by another one.
    """
    for req in (*request.requirements, *request.constraints, *request.overrides):
        _normal(req)
    # the variant's name: its folder's, less a reference checkout's `python-` prefix
    variant = path.parent.name.removeprefix(REFERENCE_PREFIX)
    label = f"{variant} for {request.platform} (Python {request.python_version})"
    run = _Run(label, path.parent, cache, timeout, log_file, offline)
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="runenv-lock-") as tmp_name:
        tmp = Path(tmp_name)
        current = request
        while True:  # each round leaves out at least one more requirement, so it ends
            try:
                text = _resolve(current, tmp, path, run)
                break
            except _Unavailable as gone:
                missing.update(gone.reasons)
                current = dataclasses.replace(
                    request,
                    requirements=tuple(
                        r for r in request.requirements if _requirement_name(r) not in missing
                    ),
                )
    meta = {
        "inputs-hash": request.inputs_hash(),
        "platform": str(request.platform),
        "python-version": request.python_version,
        "lock-format": LOCK_FORMAT_VERSION,
    }
    if request.floor:
        meta["glibc" if request.platform.info.os == "linux" else "macos"] = _dotted(request.floor)
    if request.overrides:  # the lock says which versions were forced over declared ranges
        meta["overrides"] = list(request.overrides)
    if request.no_deps:
        meta["no-deps"] = sorted({canonicalize_name(n) for n in request.no_deps})
    if missing:  # left out under the missing-package policy (`drop_missing`)
        meta["missing"] = dict(sorted(missing.items()))
    final = text.rstrip("\n") + "\n\n" + tomli_w.dumps({"tool": {TOOL_TABLE: meta}})
    with staged_file(path) as staged:
        staged.write_text(final, encoding="utf-8")
    return _parse(_loads(final, path), path)


@dataclass(frozen=True)
class _Run:
    """How this lock runs uv, and what its messages name."""

    label: str
    variant_dir: Path
    cache: Cache
    timeout: float
    log_file: Path | None
    offline: bool


class _Unavailable(Exception):
    """Requirements to leave out under the missing-package policy: name -> why."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def _resolve(request: LockRequest, tmp: Path, path: Path, run: _Run) -> str:
    """The pylock text uv writes for `request`; LockError when it cannot, `_Unavailable`
    when `request.drop_missing` and requirements cannot be installed on the platform."""
    kw: dict[str, Any] = {
        "cache": run.cache, "timeout": run.timeout, "log_file": run.log_file,
        "offline": run.offline,
    }  # fmt: skip
    label = run.label
    reqs = tmp / "requirements.in"
    reqs.write_text("".join(r + "\n" for r in request.requirements), encoding="utf-8")
    base = _input_files(request, tmp)
    out = tmp / "pylock.toml"
    try:
        _run_compile(request, reqs, out, [*base, "--format", "pylock.toml"], label, **kw)
    except SubprocessError as exc:
        if request.drop_missing and exc.returncode is not None and not exc.timed_out:
            found = _conflicts.conflicts(exc.output_tail, request.requirements)
            gone = _conflicts.unavailable(exc.output_tail, request.requirements)
            if gone and not found:
                raise _Unavailable(gone) from None
        trial = _Trial(reqs, tmp / "trial", label, run.cache, run.timeout, run.log_file,
                       run.offline)  # fmt: skip
        raise _uv_failure(exc, label, request, trial, run.variant_dir) from None
    text = out.read_text(encoding="utf-8")
    parsed = _parse(_loads(text, path), path)
    # uv applies version-less dependency-metadata to index packages only: a git package
    # needs its name and version given, which the first resolution tells.
    no_deps = {canonicalize_name(n) for n in request.no_deps}
    git_pkgs = _no_deps_git(request.requirements, parsed, no_deps)
    if git_pkgs:
        reqs.write_text(
            "".join(_named_git(r, git_pkgs) + "\n" for r in request.requirements), "utf-8"
        )
        versions = {str(canonicalize_name(p.name)): p.version for p in git_pkgs}
        base = _input_files(request, tmp, versions)
        _compile(request, reqs, out, [*base, "--format", "pylock.toml"], label, **kw)
        text = out.read_text(encoding="utf-8")
        parsed = _parse(_loads(text, path), path)
    if request.skipped:
        _check_skipped(request, parsed, reqs, base, tmp, label, **kw)
    return text


def _requirement_name(text: str) -> str:
    """The canonical name a requirement of the variant installs (a git one: the config's)."""
    if is_git_dependency(text):
        return canonicalize_name(parse_git(text).name)
    return canonicalize_name(_requirement(text).name)


def read_lock(path: Path) -> Lock:
    """Parse a PEP 751 lock; LockError if unreadable, malformed, or a file lacks a sha256."""
    try:
        text = _bounded.read_text(path, _bounded.MAX_LOCK_BYTES)
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock; run `runenv lock`") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot read the lock: {exc.strerror or exc}") from None
    except _bounded.InputError as exc:
        raise LockError(f"{path}: cannot read the lock: {exc}") from None
    return _parse(_loads(text, path), path)


def is_fresh(path: Path, request: LockRequest) -> bool:
    """True when `path` is a valid lock that runenv wrote for exactly this request."""
    try:
        existing = read_lock(path)
    except (LockError, UsageError):
        return False
    return existing.inputs_hash == request.inputs_hash()


# --------------------------------------------------------------------------- uv


def _url_key(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len(".git")] if url.endswith(".git") else url


def _no_deps_git(
    requirements: tuple[str, ...], parsed: Lock, no_deps: Collection[str]
) -> list[LockedPackage]:
    """The locked git packages that noDeps names, by their locked name or by the name the
    config gave their repository (`parapred-pytorch` for .../parapred-pytorch.git)."""
    found: list[LockedPackage] = []
    for text in requirements:
        if not is_git_dependency(text):
            continue
        ref = parse_git(text)
        for pkg in parsed.packages:
            if pkg.vcs is None or _url_key(pkg.vcs.url) != _url_key(ref.url):
                continue
            if canonicalize_name(ref.name) in no_deps or canonicalize_name(pkg.name) in no_deps:
                found.append(pkg)
    return found


def _named_git(text: str, packages: list[LockedPackage]) -> str:
    """A bare `git+URL@rev` requirement with the name its locked package has (`name @ ...`)."""
    if not is_git_dependency(text) or not text.strip().startswith("git+"):
        return text
    ref = parse_git(text)
    for pkg in packages:
        if pkg.vcs is not None and _url_key(pkg.vcs.url) == _url_key(ref.url):
            return f"{pkg.name} @ {text.strip()}"
    return text


def _input_files(
    request: LockRequest, tmp: Path, versions: Mapping[str, str] | None = None
) -> list[str]:
    """uv arguments for the constraints, overrides and no-deps packages of `request`.

    noDeps uses uv's `dependency-metadata` (in a config file of its own): the package is
    resolved as if it declared no dependencies, so the rest still resolves jointly.
    """
    args: list[str] = []
    for flag, lines in (("--constraints", request.constraints), ("--overrides", request.overrides)):
        if lines:
            path = tmp / f"{flag.strip('-')}.txt"
            path.write_text("".join(r + "\n" for r in lines), encoding="utf-8")
            args += [flag, str(path)]
    if request.no_deps:
        entries: list[dict[str, Any]] = []
        for name in sorted({*(canonicalize_name(n) for n in request.no_deps), *(versions or {})}):
            entry: dict[str, Any] = {"name": name, "requires-dist": []}
            if versions and name in versions:
                entry["version"] = versions[name]
            entries.append(entry)
        table = {"dependency-metadata": entries}
        config = tmp / "uv.toml"
        config.write_text(tomli_w.dumps(table), encoding="utf-8")
        args += ["--config-file", str(config)]
    return args


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


def _compile(
    request: LockRequest,
    reqs: Path,
    out: Path,
    extra: list[str],
    label: str,
    *,
    cache: Cache,
    timeout: float,
    log_file: Path | None,
    offline: bool,
) -> None:
    """`_run_compile`, a failure worded as a LockError (no overrides tried)."""
    try:
        _run_compile(
            request, reqs, out, extra, label,
            cache=cache, timeout=timeout, log_file=log_file, offline=offline,
        )  # fmt: skip
    except SubprocessError as exc:
        raise _uv_failure(exc, label, request) from None


def _run_compile(
    request: LockRequest,
    reqs: Path,
    out: Path,
    extra: list[str],
    label: str,
    *,
    cache: Cache,
    timeout: float,
    log_file: Path | None,
    offline: bool,
) -> None:
    """`uv pip compile` of `reqs` for `request` into `out`; SubprocessError when it fails."""
    args: list[str] = [
        "pip",
        "compile",
        str(reqs),
        "-o",
        str(out),
        *extra,
        "--python-platform",
        request.platform.info.uv_platform(request.glibc),
        "--python-version",
        request.python_version,
        # An interpreter only for building sdists' metadata; never download one.
        "--python",
        sys.executable,
        "--no-python-downloads",
        "--no-config",
        "--no-header",
        "--quiet",
        # Values joined to their option (`--opt=value`): a value can never be read as an option.
        f"--default-index={request.default_index or PYPI_SIMPLE}",
        "--index-strategy",
        "first-index",
    ]
    args += [f"--index={url}" for url in request.indexes]
    if offline:
        args.append("--offline")
    # uv reads the macOS minimum from here (its default is a recent macOS, not the floor).
    macos = request.floor if request.platform.info.os == "macos" else None
    run_uv(
        args,
        what=f"uv lock of {label}",
        cache=cache,
        timeout=timeout,
        log_file=log_file,
        env={"MACOSX_DEPLOYMENT_TARGET": _dotted(macos) if macos else None},
    )


# Rounds of "force this pin, resolve again" before the proposal is given as it stands: each
# round settles at least one more pin, and uv reports one conflict at a time.
_MAX_TRIALS = 5


@dataclass(frozen=True)
class _Trial:
    """What resolving again with proposed overrides needs (the first resolution's inputs)."""

    reqs: Path
    folder: Path
    label: str
    cache: Cache
    timeout: float
    log_file: Path | None
    offline: bool

    def resolve(self, request: LockRequest) -> None:
        """Resolve `request` as the lock would (SubprocessError when uv finds no solution)."""
        self.folder.mkdir(exist_ok=True)
        base = _input_files(request, self.folder)
        _run_compile(
            request, self.reqs, self.folder / "pylock.toml", [*base, "--format", "pylock.toml"],
            self.label, cache=self.cache, timeout=self.timeout, log_file=self.log_file,
            offline=self.offline,
        )  # fmt: skip


def _uv_failure(
    exc: SubprocessError,
    label: str,
    request: LockRequest,
    trial: _Trial | None = None,
    variant_dir: Path | None = None,
) -> LockError:
    """uv's failure as one LockError.

    A pin (or range) of the variant that another package's range excludes gives one paragraph
    naming both sides and the override line(s) to add; with `trial`, the lock is resolved
    again with them, until it succeeds or needs more (uv shows one conflict at a time), and
    the paragraph says which. Any other failure says why no override is proposed, then gives
    uv's explanation once.
    """
    where = f" (full log: {exc.log_file})" if exc.log_file else ""
    if exc.timed_out or exc.returncode is None:  # timed out, or uv could not start
        return LockError(f"cannot lock {label}: uv {exc.problem}{where}")
    git = _git_failure([ln.strip() for ln in exc.output_tail.splitlines() if ln.strip()])
    if git is not None:  # one line naming the dependency, not git's 8-11
        return LockError(f"cannot lock {label}: {git}{where}")
    found = _conflicts.conflicts(exc.output_tail, request.requirements)
    if not found:
        first, *body = _no_override(exc, request).split("\n")
        return LockError("\n".join([f"cannot lock {label}: {first}{where}", *body]))
    outcome = ""
    if trial is not None:
        found, outcome = _try_overrides(found, request, trial)
    sides = "; ".join(c.sentence() for c in found)
    forced = ", ".join(c.asked for c in found)
    ranges = "that range" if len(found) == 1 else "those ranges"
    return LockError(
        f"cannot lock {label}: {sides}. To force {forced} over {ranges} (a uv override "
        f"replaces every requirement on the package), {_override_advice(found, variant_dir)}"
        f"{outcome}{where}"
    )


def _try_overrides(
    found: list[_conflicts.Conflict], request: LockRequest, trial: _Trial
) -> tuple[list[_conflicts.Conflict], str]:
    """Resolve again with the proposed overrides, adding the next conflicts uv reports;
    return every conflict to override and what the last resolution said."""
    found = list(found)
    for _ in range(_MAX_TRIALS):
        lines = tuple(c.override_line for c in found)
        tried = dataclasses.replace(request, overrides=(*request.overrides, *lines))
        try:
            trial.resolve(tried)
        except SubprocessError as again:
            if again.timed_out or again.returncode is None:
                return found, f"; runenv could not try it: uv {again.problem}"
            have = {canonicalize_name(c.name) for c in found}
            more = [
                c
                for c in _conflicts.conflicts(again.output_tail, request.requirements)
                if canonicalize_name(c.name) not in have
            ]
            if not more:
                what = _explanation(again.output_tail)
                return found, f"; with {_them(found)} uv still finds no solution: {what}"
            found += more
        else:
            return found, f"; with {_them(found)} the lock succeeds (runenv resolved it)"
    return found, f"; with {_them(found)} uv still reports more conflicts"


def _them(found: list[_conflicts.Conflict]) -> str:
    return "it" if len(found) == 1 else "them"


def _override_advice(found: list[_conflicts.Conflict], variant_dir: Path | None) -> str:
    """Where and how to write the overrides, in the syntax of the variant's config file."""
    config = next(
        (variant_dir / n for n in VARIANT_NAMES if variant_dir and (variant_dir / n).is_file()),
        None,
    )
    shown = "the variant's config"
    if config is not None and variant_dir is not None:
        shown = (
            f"{VERSIONS_DIR}/{variant_dir.name}/{config.name}"
            if variant_dir.parent.name == VERSIONS_DIR
            else f"{variant_dir.name}/{config.name}"  # a reference checkout's python-<variant>/
        )
    if config is not None and config.suffix == ".json":
        entries = ", ".join(f'"{c.name}": "{c.override_value}"' for c in found)
        return f'add {entries} to "packages" -> "overrides" in {shown}'
    entries = "; ".join(f'{c.name} = "{c.override_value}"' for c in found)
    text = ""
    if config is not None:
        try:
            text = config.read_text(encoding="utf-8")
        except OSError:
            text = ""
    if re.search(r"(?m)^\s*overrides\s*=\s*\{", text):  # an inline table under [packages]
        return f"add {entries} to the overrides = {{ ... }} table of [packages] in {shown}"
    lines = "add" if len(found) == 1 else "add the lines"
    return f"{lines} {entries} under [packages.overrides] in {shown}"


def _no_override(exc: SubprocessError, request: LockRequest) -> str:
    """One paragraph: uv's explanation (once, on one line) and why no override is proposed."""
    lines = [ln.rstrip() for ln in exc.output_tail.splitlines() if ln.strip()]
    errors = [ln.strip()[6:].strip() for ln in lines if ln.lstrip().startswith("error:")]
    # The tail may have lost uv's `error:` line under a long build output (an sdist's).
    summary = errors[0] if errors else f"uv {exc.problem}; the end of its output"
    if not summary.startswith("No solution found"):
        body = [ln for ln in lines if not ln.lstrip().startswith("error:")]
        return summary + "".join(f"\n{ln}" for ln in body)
    between = _conflicts.disagreement(exc.output_tail, request.requirements)
    if between is not None:
        return (
            f"uv found no solution: {between}, a package the variant does not pin. No single "
            "override can be proposed: pin versions of those two that agree, or force one "
            "version of it under packages.overrides if you know one that works with both"
        )
    return (
        f"uv found no solution: {_explanation(exc.output_tail)} No single override can be "
        "proposed: no requirement of the variant is excluded by another package's range"
    )


def _explanation(uv_output: str) -> str:
    """uv's `cause:` text on one line (the `error:` line is always "No solution found"):
    from its `cause:` line to the next `hint:` or `warning:`, else the last line."""
    lines = [ln.strip() for ln in uv_output.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("cause:")), None)
    if start is None:
        return lines[-1] if lines else ""
    cause = []
    for line in lines[start:]:
        if line.startswith(("hint:", "warning:", "error:")):
            break
        cause.append(line)
    return " ".join(cause).removeprefix("cause:").strip()


_GIT_DEP = re.compile(r"`(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) @ git\+(?P<url>[^`\s]+)`", re.ASCII)


def _git_failure(lines: list[str]) -> str | None:
    """One line for uv failing to fetch a git dependency (its output is 8-11 lines of causes
    and git's stderr): the dependency, its URL, and git's own last complaint."""
    found = next((m for line in lines if (m := _GIT_DEP.search(line))), None)
    if found is None or not any("Git operation failed" in line for line in lines):
        return None
    said = [
        line
        for line in lines
        if line.startswith(("fatal:", "error:", "ERROR:")) and not _GIT_DEP.search(line)
    ]
    causes = [line.removeprefix("cause:").strip() for line in lines if line.startswith("cause:")]
    why = (said or causes or ["git failed"])[-1]
    return (
        f"git dependency {found.group('name')} ({redact(found.group('url'))}) could not be "
        f"fetched: {why} (check its URL and revision in the config)"
    )


_VIA = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==\S+\s+#\s*via\s+(?P<via>.+)",
    re.ASCII,
)


def _check_skipped(
    request: LockRequest,
    parsed: Lock,
    reqs: Path,
    base: list[str],
    tmp: Path,
    label: str,
    *,
    cache: Cache,
    timeout: float,
    log_file: Path | None,
    offline: bool,
) -> None:
    """LockError naming each skipped package the resolution still contains, and its users."""
    skipped = {canonicalize_name(s) for s in request.skipped}
    present = [p for p in parsed.packages if canonicalize_name(p.name) in skipped]
    if not present:
        return
    # The lock has no dependency graph: ask uv again (from its warm cache) for `# via` notes.
    out = tmp / "requirements.txt"
    extra = [*base, "--format", "requirements.txt", "--annotation-style", "line"]
    _compile(
        request,
        reqs,
        out,
        extra,
        label,
        cache=cache,
        timeout=timeout,
        log_file=log_file,
        offline=offline,
    )
    users: dict[str, list[str]] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        match = _VIA.fullmatch(line.strip())
        if match:
            via = [v.strip() for v in match.group("via").split(",")]
            users[canonicalize_name(match.group("name"))] = via
    if request.drop_missing:
        gone = _skipped_users(present, users, request)
        if gone:
            raise _Unavailable(gone)
    versions = {canonicalize_name(p.name): p.version for p in parsed.packages}
    problems = []
    for pkg in present:
        names = []
        for user in users.get(canonicalize_name(pkg.name), []):
            if user.startswith(("-r ", "-c ")):
                names.append("the variant's dependencies")
            elif user:
                version = versions.get(canonicalize_name(user))
                names.append(f"{user}=={version}" if version else user)
        by = ", ".join(names) or "another locked package"
        problems.append(f"{pkg.name} is skipped on {request.platform} but required by {by}")
    raise LockError(
        f"cannot lock {label}: "
        + "; ".join(problems)
        + " (remove the skip, or skip what requires it too)"
    )


def _skipped_users(
    present: list[LockedPackage], users: Mapping[str, list[str]], request: LockRequest
) -> dict[str, str]:
    """The variant's requirements that bring in a skipped package (at any depth of uv's
    `# via` notes), each with why it cannot be installed on the platform."""
    direct = {_requirement_name(r) for r in request.requirements}
    out: dict[str, str] = {}
    for pkg in present:
        name = canonicalize_name(pkg.name)
        seen, todo = {name}, [name]
        while todo:
            for user in users.get(todo.pop(), []):
                if user.startswith(("-r ", "-c ")) or not user:
                    continue
                key = canonicalize_name(user)
                if key in direct:
                    why = f"needs {pkg.name}, which is skipped on {request.platform}"
                    out.setdefault(key, why)
                elif key not in seen:
                    seen.add(key)
                    todo.append(key)
    return out


# --------------------------------------------------------------------------- parsing


def _requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"invalid requirement {text!r}: {exc}") from None


def _normal(text: str) -> str:
    """A requirement in canonical text; a git dependency as written (its URL is its identity)."""
    if is_git_dependency(text):
        return text.strip()
    return str(_requirement(text))


def _loads(text: str, path: Path) -> dict[str, Any]:
    try:
        return _bounded.loads_toml(text)
    except (tomllib.TOMLDecodeError, _bounded.InputError) as exc:
        raise LockError(f"{path}: not a valid TOML lock: {exc}") from None


def _parse(doc: Mapping[str, Any], path: Path) -> Lock:
    packages: list[LockedPackage] = []
    entries = doc.get("packages", [])
    if not isinstance(entries, list):
        raise LockError(f"{path}: `packages` is not an array of tables")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise LockError(f"{path}: a package entry has no name")
        packages.append(_package(entry, path))
    tool = doc.get("tool", {}).get(TOOL_TABLE, {})
    tool = tool if isinstance(tool, dict) else {}
    missing = tool.get("missing", {})
    missing = missing if isinstance(missing, dict) else {}
    return Lock(
        packages=tuple(packages),
        requires_python=_opt_str(doc.get("requires-python")),
        inputs_hash=_opt_str(tool.get("inputs-hash")),
        platform=_opt_str(tool.get("platform")),
        python_version=_opt_str(tool.get("python-version")),
        overrides=tuple(o for o in tool.get("overrides", ()) if isinstance(o, str)),
        missing={str(canonicalize_name(k)): v for k, v in missing.items() if isinstance(v, str)},
    )


def _package(entry: dict[str, Any], path: Path) -> LockedPackage:
    name: str = entry["name"]
    version = _opt_str(entry.get("version")) or ""
    who = f"{name} {version}".strip()
    if "directory" in entry:
        raise LockError(
            f"{path}: {who} comes from a directory; runenv installs only locked files with "
            "hashes (wheels, sdists, archives) and git commits"
        )
    if "vcs" in entry:
        return LockedPackage(
            name=name,
            version=version,
            wheels=(),
            sdist=None,
            index=None,
            marker=_opt_str(entry.get("marker")),
            vcs=_vcs(entry["vcs"], path, who),
        )
    wheels = [_file(w, path, who) for w in entry.get("wheels", [])]
    sdist = _file(entry["sdist"], path, who) if "sdist" in entry else None
    if "archive" in entry:
        archive = _file(entry["archive"], path, who)
        if archive.filename.endswith(".whl"):
            wheels.append(archive)
        else:
            sdist = archive
    if not wheels and sdist is None:
        raise LockError(f"{path}: {who} has no wheel and no sdist in the lock")
    return LockedPackage(
        name=name,
        version=version,
        wheels=tuple(wheels),
        sdist=sdist,
        index=_opt_str(entry.get("index")),
        marker=_opt_str(entry.get("marker")),
    )


def _vcs(data: Any, path: Path, who: str) -> VcsSource:
    if not isinstance(data, dict) or data.get("type") != "git":
        raise LockError(f"{path}: {who}: only git repositories are supported as a vcs source")
    url = _opt_str(data.get("url"))
    commit = _opt_str(data.get("commit-id"))
    if not url or not commit or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit, re.ASCII):
        raise LockError(
            f"{path}: {who}: a git source needs its url and full commit-id in the lock; "
            "run `runenv lock` again"
        )
    return VcsSource(url=url, commit=commit, requested=_opt_str(data.get("requested-revision")))


def _file(data: Any, path: Path, who: str) -> LockedFile:
    if not isinstance(data, dict):
        raise LockError(f"{path}: {who}: a file entry is not a table")
    url = _opt_str(data.get("url"))
    local = _opt_str(data.get("path"))
    if url is not None:
        default_name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    elif local is not None:  # relative to the lock's directory (PEP 751)
        url = str((path.parent / local).resolve())
        default_name = Path(local).name
    else:
        raise LockError(f"{path}: {who}: a file entry has neither url nor path")
    filename = _opt_str(data.get("name")) or default_name
    hashes = data.get("hashes", {})
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256, re.ASCII):
        raise LockError(
            f"{path}: {who}: {filename} has no sha256 in the lock; runenv installs only "
            "verified files (does the index publish hashes?)"
        )
    size = data.get("size")
    return LockedFile(
        url=url,
        filename=filename,
        sha256=sha256.lower(),
        size=size if isinstance(size, int) else None,
    )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
