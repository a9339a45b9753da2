"""Choose the file each locked package installs from on a platform, and fetch them all.

`select` prefers the wheel whose tags rank best for the platform (its glibc floor or macOS
minimum included) and falls back to the sdist, with the reason, when no wheel fits or the
package is forced to source. `download_all` fetches the chosen files into the content-addressed
cache (verified against the lock's sha256), concurrently, under one progress display.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from runenv._cache import Cache
from runenv._progress import progress_bar
from runenv.errors import BuildError, LockError
from runenv.fetch.download import FetchOptions, fetch_to_cache, new_client
from runenv.fetch.metadata import wheel_requires
from runenv.lock.pylock import Lock, LockedFile, LockedPackage
from runenv.platforms import DEFAULT_GLIBC, Platform

if TYPE_CHECKING:
    from runenv.config.plan import Plan

logger = logging.getLogger(__name__)

WHEELS_SECTION = "wheels"
_UNKNOWABLE = re.compile(r"platform_release|platform_version")
MAX_PARALLEL = 8


@dataclass(frozen=True)
class Artifact:
    """The file one package is installed from on one platform."""

    name: str
    version: str
    filename: str
    url: str
    # What the source is pinned to: the file's sha256, or for a git source (no file to hash)
    # the full commit hash; `commit` names the latter.
    digest: str
    kind: Literal["wheel", "sdist", "git"]
    reason: str | None = None  # why an sdist was chosen
    size: int | None = None

    @property
    def from_source(self) -> bool:
        return self.kind != "wheel"

    @property
    def sha256(self) -> str:
        """The sha256 of the file it is installed from (a wheel or an sdist)."""
        if self.kind == "git":
            raise TypeError(f"{self.name}: a git source has a commit, not a file sha256")
        return self.digest

    @property
    def commit(self) -> str:
        """The locked commit of a git source."""
        if self.kind != "git":
            raise TypeError(f"{self.name}: a {self.kind} has a file sha256, not a commit")
        return self.digest


@dataclass(frozen=True)
class Selection:
    """What a platform installs, and what the resolution policy let go (name -> reason)."""

    artifacts: list[Artifact]
    missing: dict[str, str]


def marker_environment(platform: Platform, python_version: str) -> dict[str, str]:
    """PEP 508 marker values of a CPython `python_version` runtime on `platform`."""
    info = platform.info
    xy = ".".join(python_version.split(".")[:2])
    if info.os == "windows":
        machine, system, sys_platform, os_name = "AMD64", "Windows", "win32", "nt"
    elif info.os == "macos":
        machine = "arm64" if info.arch == "aarch64" else "x86_64"
        system, sys_platform, os_name = "Darwin", "darwin", "posix"
    else:
        machine, system, sys_platform, os_name = info.arch, "Linux", "linux", "posix"
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": os_name,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": python_version,
        "python_version": xy,
        "sys_platform": sys_platform,
    }


def select(
    lock: Lock,
    platform: Platform,
    python_version: str,
    force_source: Mapping[str, str],
    *,
    glibc: tuple[int, int] = DEFAULT_GLIBC,
    macos: tuple[int, int] | None = None,
) -> list[Artifact]:
    """The file to install for every locked package that applies to `platform`, in lock order.

    The best wheel by the platform's tag order; the sdist (with a reason) when none fits or the
    package is in `force_source` (name -> reason); LockError when neither exists.
    """
    ranks = {tag: i for i, tag in enumerate(platform.info.wheel_tags(python_version, glibc, macos))}
    forced = {canonicalize_name(name): reason for name, reason in force_source.items()}
    env = marker_environment(platform, python_version)
    chosen: list[Artifact] = []
    for pkg in lock.packages:
        if not _applies(pkg, env):
            continue
        forced_why = forced.get(canonicalize_name(pkg.name))
        reason = f"forced to source ({forced_why})" if forced_why is not None else None
        if reason is None:
            wheel = _best_wheel(pkg, ranks)
            if wheel is not None:
                chosen.append(_artifact(pkg, wheel, "wheel", None))
                continue
            reason = f"no wheel for {platform}" + (
                f" (the lock has {', '.join(w.filename for w in pkg.wheels)})" if pkg.wheels else ""
            )
        if pkg.sdist is None:
            raise LockError(
                f"{pkg.name} {pkg.version}: {reason}, and the lock has no sdist to build from "
                f"for {platform}"
            )
        chosen.append(_artifact(pkg, pkg.sdist, "sdist", reason))
    return chosen


def select_for_plan(lock: Lock, plan: Plan) -> Selection:
    """`select` under the plan's `packages.resolution` policy, with git sources.

    Without a policy any package with no fitting wheel is built from its sdist (`select`).
    With one, a package with no fitting wheel is built only if the policy allows it
    (allowSourceAll, allowSourceList, forceNoBinaryList, or a buildWheel recipe) and not in
    onlyBinaryList; otherwise it is missing: with strictMissing a BuildError naming every such
    package, else it lands in `Selection.missing` with the reason (never dropped silently).
    """
    policy, platform = plan.policy, plan.platform
    ranks = {
        tag: i
        for i, tag in enumerate(
            platform.info.wheel_tags(plan.python_version, plan.glibc, plan.macos)
        )
    }
    env = marker_environment(platform, plan.python_version)
    chosen: list[Artifact] = []
    # What the lock left out under the policy (`LockRequest.drop_missing`).
    missing: dict[str, str] = dict(lock.missing)
    for pkg in lock.packages:
        if not _applies(pkg, env):
            continue
        name = canonicalize_name(pkg.name)
        allowed = policy is None or name in plan.build_wheel or policy.may_build(name)
        if pkg.vcs is not None:
            reason = f"git {pkg.vcs.url} at {pkg.vcs.commit}"
            # The config may know it by its repository's name (`git+https://.../repo.git`).
            declared = [
                canonicalize_name(g.name) for g in plan.git if _same_repo(g.url, pkg.vcs.url)
            ]
            if not declared:  # only what the config names is fetched: never the lock's say
                known = ", ".join(sorted(g.url for g in plan.git)) or "none"
                raise LockError(
                    f"{pkg.name}: the lock's git source {pkg.vcs.url} is not a git dependency "
                    f"of the config (it declares: {known}): run `runenv lock` again"
                )
            allowed = allowed or any(
                policy is None or n in plan.build_wheel or policy.may_build(n) for n in declared
            )
            if allowed:
                filename = f"{pkg.name}-{pkg.vcs.commit}.git"
                vcs = pkg.vcs
                chosen.append(
                    Artifact(pkg.name, pkg.version, filename, vcs.url, vcs.commit, "git", reason)
                )
            else:
                missing[name] = f"{reason}: building from source is not allowed by the policy"
            continue
        forced_why = plan.force_source.get(name)
        if forced_why is None:
            wheel = _best_wheel(pkg, ranks)
            if wheel is not None:
                chosen.append(_artifact(pkg, wheel, "wheel", None))
                continue
            reason = f"no wheel for {platform}"
            if not allowed:
                assert policy is not None
                why = (
                    "packages.resolution.onlyBinaryList forbids building it from source"
                    if name in policy.only_binary
                    else "packages.resolution does not allow building it from source "
                    "(allowSourceList, allowSourceAll or buildWheel would)"
                )
                missing[name] = f"{reason}, and {why}"
                continue
            if pkg.wheels:
                reason += f" (the lock has {', '.join(w.filename for w in pkg.wheels)})"
        else:
            reason = f"forced to source ({forced_why})"
        if pkg.sdist is None:
            raise LockError(
                f"{pkg.name} {pkg.version}: {reason}, and the lock has no sdist to build from "
                f"for {platform}"
            )
        chosen.append(_artifact(pkg, pkg.sdist, "sdist", reason))
    if missing and policy is not None and policy.strict_missing:
        names = "; ".join(f"{n}: {why}" for n, why in missing.items())
        raise BuildError(
            f"{plan.variant} {platform}: packages.resolution.strictMissing is set and "
            f"{len(missing)} package(s) cannot be installed: {names}"
        )
    return Selection(chosen, missing)


def _same_repo(a: str, b: str) -> bool:
    def key(url: str) -> str:
        url = url.rstrip("/")
        return url[: -len(".git")] if url.endswith(".git") else url

    return key(a) == key(b)


def _applies(pkg: LockedPackage, env: dict[str, str]) -> bool:
    """False only for a package whose marker is certainly false on the target.

    uv's locks are already resolved for the target, so this only matters for locks written
    by other tools; markers on values a cross target cannot know are taken as true.
    """
    if not pkg.marker or _UNKNOWABLE.search(pkg.marker):
        return True
    try:
        return Marker(pkg.marker).evaluate(env)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _best_wheel(pkg: LockedPackage, ranks: Mapping[Any, int]) -> LockedFile | None:
    best: tuple[int, LockedFile] | None = None
    for wheel in pkg.wheels:
        try:
            tags = parse_wheel_filename(wheel.filename)[3]
        except InvalidWheelFilename:
            raise LockError(
                f"{pkg.name} {pkg.version}: {wheel.filename!r} is not a wheel name"
            ) from None
        rank = min((ranks[t] for t in tags if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    return best[1] if best else None


def _artifact(
    pkg: LockedPackage, f: LockedFile, kind: Literal["wheel", "sdist"], reason: str | None
) -> Artifact:
    return Artifact(pkg.name, pkg.version, f.filename, f.url, f.sha256, kind, reason, f.size)


def download_all(
    artifacts: Iterable[Artifact],
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    parallel: bool = True,
    timeout: float = 300.0,
    offline: bool = False,
    progress: bool = False,
) -> dict[str, Path]:
    """Fetch every artifact into the cache's `wheels` section; return paths by filename.

    Each file is verified against its sha256 (ChecksumError, nothing cached, otherwise).
    Files already cached are not fetched; one file listed twice is fetched once. The first
    failure cancels what has not started and is raised.
    """
    unique: dict[str, Artifact] = {}
    for art in artifacts:
        if art.kind == "git":  # fetched by source_build from its repository
            continue
        seen = unique.setdefault(art.filename, art)
        if seen.sha256 != art.sha256:
            raise LockError(
                f"{art.filename}: two different sha256 in the locks ({seen.sha256} for "
                f"{seen.name}, {art.sha256} for {art.name})"
            )
    if not unique:
        return {}
    own_client = client is None and not offline
    http = new_client(timeout) if own_client else client
    sizes = [a.size for a in unique.values()]
    by_bytes = all(s is not None for s in sizes)
    # One bar for the whole set: bytes when every size is known, else files.
    total = sum(s or 0 for s in sizes) if by_bytes else len(unique)
    bar = progress_bar(total, "wheels", enabled=progress, unit="B" if by_bytes else "file")
    results: dict[str, Path] = {}

    how = FetchOptions(http, timeout, offline)

    def fetch(art: Artifact) -> Path:
        path = fetch_to_cache(cache, WHEELS_SECTION, art.url, art.sha256, art.filename, how)
        bar.update((art.size or 0) if by_bytes else 1)
        return path

    try:
        if not parallel or len(unique) == 1:
            for name, art in unique.items():
                results[name] = fetch(art)
        else:
            workers = min(MAX_PARALLEL, len(unique))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runenv-fetch") as pool:
                futures: dict[Future[Path], str] = {
                    pool.submit(fetch, art): name for name, art in unique.items()
                }
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for fut in pending:
                    fut.cancel()
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        raise exc
                for fut in futures:  # nothing failed: all done
                    results[futures[fut]] = fut.result()
    finally:
        bar.close()
        if own_client and http is not None:
            http.close()
    logger.debug("%d files ready in %s", len(results), cache.section(WHEELS_SECTION))
    return results


def needing_left_out(
    artifacts: Sequence[Artifact],
    files: Mapping[str, Path],
    left_out: Mapping[str, str],
    platform: Platform,
    python_version: str,
) -> dict[str, str]:
    """The selected wheels that need, at any depth, a package left out on this platform (by
    the missing-package policy): name -> why. Each would install without what it needs (the
    reference's atls: prodigy-prot needs freesasa, which has no wheel for Python 3.12), so a
    block venv could not install it. Read from the wheels' Requires-Dist; a source's
    requirements are unknown before its build and are not followed."""
    env = {**marker_environment(platform, python_version), "extra": ""}
    needs: dict[str, set[str]] = {}
    for artifact in artifacts:
        if artifact.from_source or artifact.filename not in files:
            continue
        names: set[str] = set()
        for req in wheel_requires(files[artifact.filename]) or ():
            try:
                applies = req.marker is None or req.marker.evaluate(env)
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                applies = False  # a marker that cannot be told here: not a reason to drop
            if applies:
                names.add(canonicalize_name(req.name))
        needs[canonicalize_name(artifact.name)] = names
    gone: set[str] = {canonicalize_name(n) for n in left_out}
    found: dict[str, str] = {}
    while True:  # each round adds at least one name, so it ends
        added = {
            name: sorted(deps & (gone | set(found)))[0]
            for name, deps in needs.items()
            if name not in gone and name not in found and deps & (gone | set(found))
        }
        if not added:
            return found
        for name, dep in added.items():
            found[name] = f"needs {dep}, which is left out on {platform.value}"
