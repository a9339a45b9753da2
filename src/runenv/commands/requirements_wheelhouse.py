"""What one platform's runtime carries in packages/, told offline for `runenv requirements`.

The wheelhouse is the lock as the build selects it (`select_for_plan`): one wheel (or source)
per package, never a skipped one nor one the resolution policy lets go. The locks (PEP 751,
written by uv) do not record dependencies, so a package's Requires-Dist comes from a copy in
runenv's cache: the downloaded wheel, the wheel built from an sdist or a git commit, or an
sdist's PKG-INFO where it declares Requires-Dist statically (Metadata-Version 2.2+).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from runenv._cache import Cache, is_verified
from runenv.config.load import VariantConfig
from runenv.config.plan import Plan
from runenv.errors import RunenvError
from runenv.fetch.metadata import sdist_requires, wheel_requires
from runenv.fetch.wheels import WHEELS_SECTION, Artifact, marker_environment, select_for_plan
from runenv.lock.pylock import read_lock
from runenv.lock.resolve import lock_path
from runenv.sources import wheel_cache


@dataclass
class Wheelhouse:
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
        key = wheel_cache.cache_key(artifact, plan, host_pure=pure)
        wheel = wheel_cache.cached_wheel(cache.root / wheel_cache.CACHE_SECTION / key[:2] / key)
        if wheel is not None:
            return wheel_requires(wheel)
    if artifact.kind == "sdist":
        return sdist_requires(_cached(cache, WHEELS_SECTION, artifact.sha256, artifact.filename))
    return None


def cached_form(artifact: Artifact) -> str:
    """How the message names the copy that would have told: the wheel, or one built from source."""
    if artifact.kind == "wheel":
        return artifact.filename
    return f"a wheel built from {artifact.filename}"


def _cached(cache: Cache, section: str, sha256: str, filename: str) -> Path | None:
    # The blob path by hand: Cache.blob_path would create the section in a read-only command.
    path = cache.root / section / sha256[:2] / sha256 / filename
    return path if is_verified(path, sha256) else None


def wheelhouse_for(vc: VariantConfig, plan: Plan, cache: Cache) -> Wheelhouse | str:
    """The platform's wheelhouse, or why its build fails before there is one."""
    path = lock_path(vc.folder, plan.platform)
    try:
        selection = select_for_plan(read_lock(path), plan)
    except RunenvError as exc:  # strictMissing, or a package with neither wheel nor sdist
        return " ".join(str(exc).split())  # the platform's one line
    artifacts = {canonicalize_name(a.name): a for a in selection.artifacts}
    env = marker_environment(plan.platform, plan.python_version)
    return Wheelhouse(plan, artifacts, dict(selection.missing), env, cache)
