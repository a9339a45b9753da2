"""The build-sdists stage: wheels from sdists, by the runtime's own interpreter (native only).

pypa/build drives the PEP 517 hooks; its `DefaultIsolatedEnv` would make the build environment
from the interpreter running runenv, so `RuntimeEnv` implements build's `IsolatedEnv` protocol
with a venv of the *runtime's* interpreter, filled by uv from the variant's indexes. Built
wheels are cached under a key of everything that decides them, so a rebuild compiles nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runenv._cache import (
    Cache,
    evict,
    file_sha256,
    is_verified,
    lock_for,
    mark_verified,
    recorded_sha256,
    staged_file,
)
from runenv._subprocess import run
from runenv._uv import run_uv
from runenv.errors import BuildError, RunenvError
from runenv.platforms import Platform, host_platform

if TYPE_CHECKING:
    from pyproject_hooks import SubprocessRunner

    from runenv.plan import Plan
    from runenv.wheels import Artifact

logger = logging.getLogger(__name__)

CACHE_SECTION = "built-wheels"
# Bump when the way runenv builds wheels changes what they contain.
BUILD_RECIPE = 1


class CrossSourceBuildError(BuildError):
    """A cross build would need a wheel built from source: only a native runner can do that."""

    def __init__(self, platform: Platform, sdists: Sequence[Artifact]) -> None:
        runner = platform.info.github_runner
        lines = [
            f"{a.name} {a.version} on {platform.value}: "
            f"{a.reason or 'no wheel fits'}; it must be built from source on a native "
            f"{platform.value} runner ({runner} in the CI matrix, `runenv matrix`)"
            for a in sdists
        ]
        super().__init__(
            f"cross build for {platform.value} needs {len(lines)} source build(s):\n"
            + "\n".join(lines)
        )


class RuntimeEnv:
    """pypa/build's `IsolatedEnv`, made from the target runtime's interpreter."""

    def __init__(
        self,
        runtime_python: Path,
        path: Path,
        *,
        indexes: Sequence[str],
        default_index: str | None,
        cache: Cache,
        extra_environ: Mapping[str, str],
        timeout: float,
        log_file: Path | None,
    ) -> None:
        self._indexes = indexes
        self._default_index = default_index
        self._cache = cache
        self._extra = dict(extra_environ)
        self._timeout = timeout
        self._log = log_file
        run(
            [runtime_python, "-m", "venv", "--without-pip", path],
            what="create the source-build environment",
            timeout=timeout,
            log_file=log_file,
        )
        scripts = host_platform().info.scripts_dir()  # the venv is made on this machine
        exe = "python.exe" if host_platform().info.is_windows else "python"
        self._python = path / scripts / exe

    @property
    def python_executable(self) -> str:
        return str(self._python)

    def make_extra_environ(self) -> Mapping[str, str] | None:
        return self._extra

    def install(self, requirements: Collection[str]) -> None:
        if not requirements:
            return
        index_args: list[str] = []
        if self._default_index:
            index_args += ["--default-index", self._default_index]
        for index in self._indexes:
            index_args += ["--index", index]
        run_uv(
            [
                "pip",
                "install",
                "--no-config",
                "--python",
                self._python,
                *index_args,
                *sorted(requirements),
            ],
            what="install the build requirements",
            cache=self._cache,
            timeout=self._timeout,
            log_file=self._log,
        )


def cache_key(artifact: Artifact, plan: Plan) -> str:
    """Everything that decides a built wheel: sdist, platform, Python, build settings."""
    inputs = {
        "recipe": BUILD_RECIPE,
        "sdist_sha256": artifact.sha256,
        "platform": plan.platform.value,
        "python": plan.python_version,
        "macos": plan.macos,
        "registries": list(plan.registries),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _unpack_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist safely and return its project folder."""
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise BuildError(f"{sdist.name}: unsafe entry {name!r}")
            zf.extractall(dest)
    else:
        with tarfile.open(sdist) as tf:
            tf.extractall(dest, filter="data")  # refuses absolute paths, `..` and outside links
    entries = [p for p in dest.iterdir() if p.is_dir()]
    if len(entries) != 1:
        raise BuildError(f"{sdist.name}: expected one top folder, found {len(entries)}")
    return entries[0]


def _runner(timeout: float, log_file: Path | None, what: str) -> SubprocessRunner:
    """A pyproject-hooks runner that goes through `_subprocess.run` (logged, bounded)."""

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        run(
            cmd,
            what=what,
            cwd=Path(cwd) if cwd else None,
            env=extra_environ,
            timeout=timeout,
            log_file=log_file,
        )

    return runner


def build_wheel(
    artifact: Artifact,
    sdist: Path,
    runtime_python: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> Path:
    """The wheel built from `sdist` for `plan`'s platform, from the cache when it is there."""
    from build import BuildBackendException, ProjectBuilder

    key = cache_key(artifact, plan)
    folder = cache.section(CACHE_SECTION) / key[:2] / key
    done = _cached_wheel(folder)
    if done is not None:
        return done
    with lock_for(folder):
        done = _cached_wheel(folder)
        if done is not None:
            return done
        extra = (
            {"MACOSX_DEPLOYMENT_TARGET": f"{plan.macos[0]}.{plan.macos[1]}"} if plan.macos else {}
        )
        what = f"build {artifact.name} {artifact.version} from source"
        # A failed build names its full log: the build's own, else one kept in the cache.
        log_file = log_file or folder.parent / f"{key}.log"
        with tempfile.TemporaryDirectory(prefix="runenv-sdist-") as tmp:
            work = Path(tmp)
            project = _unpack_sdist(sdist, work / "src")
            env = RuntimeEnv(
                runtime_python,
                work / "env",
                indexes=plan.registries,
                default_index=default_index,
                cache=cache,
                extra_environ=extra,
                timeout=float(plan.timeout),
                log_file=log_file,
            )
            try:
                builder = ProjectBuilder.from_isolated_env(
                    env, project, runner=_runner(float(plan.timeout), log_file, what)
                )
                env.install(builder.build_system_requires)
                env.install(builder.get_requires_for_build("wheel"))
                built = Path(builder.build("wheel", work / "out"))
            except BuildBackendException as exc:
                cause = exc.exception  # our runner's SubprocessError already says what failed
                raise BuildError(
                    str(cause) if isinstance(cause, RunenvError) else f"{what}: {cause}"
                ) from None
            target = folder / built.name
            with staged_file(target) as staged:
                shutil.copyfile(built, staged)
            mark_verified(target, file_sha256(target))
    return target


def _cached_wheel(folder: Path) -> Path | None:
    """The wheel built earlier into `folder`, if it still holds the bytes recorded when it was
    built; anything else found there is evicted (and the wheel is built again)."""
    if not folder.is_dir():
        return None
    for wheel in sorted(folder.glob("*.whl")):
        recorded = recorded_sha256(wheel)
        if recorded is not None and is_verified(wheel, recorded):
            return wheel
        logger.warning(
            "%s: the cached build does not match the sha256 recorded when it was built: "
            "evicted it, building it again",
            wheel.name,
        )
        evict(wheel)
    return None


def build_wheels(
    sdists: Sequence[Artifact],
    files: Mapping[str, Path],
    runtime_python: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> dict[str, Path]:
    """Wheels for every sdist, keyed by the sdist's file name."""
    if sdists and not os.access(runtime_python, os.X_OK):
        raise BuildError(
            f"source builds need the runtime's interpreter, {runtime_python} is missing"
        )
    return {
        a.filename: build_wheel(
            a,
            files[a.filename],
            runtime_python,
            plan,
            cache,
            default_index=default_index,
            log_file=log_file,
        )
        for a in sdists
    }
