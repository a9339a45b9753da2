"""What every stage of one build reads: the options, the target on disk, the log and the
context the plan stage settles before any work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runenv import __version__
from runenv._cache import (
    Cache,
    is_verified,
)
from runenv.artifact import parts
from runenv.artifact.manifest import read_manifest
from runenv.config.plan import Plan
from runenv.fetch.python import PythonSource
from runenv.platforms import host_platform
from runenv.tree import listing

Reporter = Callable[[str], None]


INDEX_ENV = "RUNENV_INDEX_URL"
"""Environment variable for the default package index (after `--index-url`; PyPI if unset)."""


def _silent(message: str) -> None:
    """A reporter that says nothing."""


@dataclass(frozen=True)
class BuildOptions:
    """How to build, as opposed to what (that is the config)."""

    dist: Path
    pydist: Path
    locked: bool = False
    offline: bool = False
    python_mirror: str | None = None
    default_index: str | None = None
    progress: bool = False
    report: Reporter = field(default=_silent, compare=False)
    sign_command: str | None = None  # run over the tree's binaries before the pack (`sign`)
    part_size: int = parts.DEFAULT_PART_SIZE  # an archive above it is also cut into parts
    built_wheels: tuple[Path, ...] = ()  # `runenv wheels` folders (`import_built_wheels`)


@dataclass(frozen=True)
class BuildResult:
    plan: Plan
    archive: Path
    manifest: Path
    tree: Path
    build_hash: str
    up_to_date: bool
    relocked: bool
    seconds: float


@dataclass(frozen=True)
class Target:
    """Where one (variant, platform) build lands."""

    archive: Path
    manifest: Path
    log: Path  # the log of the build that made the archive beside it
    attempt_log: Path  # the log of a build under way; it becomes `log` only if that succeeds
    tree: Path

    @classmethod
    def of(cls, plan: Plan, options: BuildOptions) -> Target:
        """`dist/runenv-<variant>-<platform>.*` and `pydist/<variant>/<platform>/`; in a
        reference checkout the tree is the root its `package.json` declares (`plan.root`)."""
        stem = f"runenv-{plan.variant}-{plan.platform.value}"
        return cls(
            archive=options.dist / f"{stem}.tar.gz",
            manifest=options.dist / f"{stem}.json",
            log=options.dist / f"{stem}.log",
            attempt_log=options.dist / f"{stem}.attempt.log",
            tree=plan.root or options.pydist / plan.variant / plan.platform.value,
        )

    def is_current(self, digest: str, markers: Path) -> bool:
        """Whether the finished build on disk has this build hash, and its archive still holds
        the bytes its manifest names (verified as cache entries are, markers in `markers`)."""
        manifest = read_manifest(self.manifest)
        if manifest is None or manifest.get("build_hash") != digest:
            return False
        sha256 = manifest.get("sha256")
        return (
            isinstance(sha256, str)
            and is_verified(self.archive, sha256, in_dir=markers)
            and self.tree.is_dir()
            and listing.is_intact(self.tree, manifest, markers)  # an edited tree rebuilds
        )


class BuildLog:
    """The build's log (`[build] enableLogging`): every command's output, beside the archive.

    A build writes `path` (the target's attempt log), which `publish` renames over the log of
    the last good build: a failed build leaves its own log beside the last good archive,
    manifest and log, which stay untouched. `start()` truncates it and writes its header once
    per build; the pipeline calls it before the first stage that does work, so a build found
    up to date leaves the logs as they were. `path` is None when logging is off.
    """

    def __init__(self, target: Target, plan: Plan) -> None:
        self.path = target.attempt_log if plan.enable_logging else None
        self._final = target.log
        self._header = f"runenv {__version__}: build {plan.variant} {plan.platform.value}\n\n"
        self._started = False

    def start(self) -> None:
        if self.path is None or self._started:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self._header, encoding="utf-8")
        self._started = True

    def note(self, line: str) -> None:
        """Add a line of runenv's own to the log (after `start`)."""
        if self.path is not None and self._started:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line.rstrip("\n") + "\n")

    def publish(self) -> None:
        """The attempt's log becomes the build's log (call it when the build succeeded)."""
        if self.path is not None and self._started:
            self.path.replace(self._final)


@dataclass(frozen=True)
class BuildContext:
    """What every stage of one build reads, settled by the plan stage before any work."""

    plan: Plan
    options: BuildOptions
    cache: Cache
    client: httpx.Client | None
    python: PythonSource  # where the interpreter comes from, with its sha256
    target: Target
    log: BuildLog
    # Set by `select` in a cross build: the wheels of its sources, built on this host because
    # they came out py3-none-any (keyed by the source's file name).
    host_built: Mapping[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.plan.variant} {self.plan.platform.value}"

    @property
    def native(self) -> bool:
        """Whether this machine can run the target's interpreter (source builds, import check)."""
        return self.plan.platform == host_platform()

    @property
    def timeout(self) -> float:
        return float(self.plan.timeout)

    @property
    def lock_dir(self) -> Path:
        """Where the build's file locks and its archive's verified-marker live."""
        return lock_dir(self.options, self.plan)


def lock_dir(options: BuildOptions, plan: Plan) -> Path:
    """Where a build's lock files live: under pydist/, not in dist/ or versions/."""
    return options.pydist / ".locks" / plan.variant
