"""The build-sdists stage: wheels from sdists and git commits, by the runtime's own interpreter.

pypa/build drives the PEP 517 hooks; its `DefaultIsolatedEnv` would make the build environment
from the interpreter running runenv, so `RuntimeEnv` implements build's `IsolatedEnv` protocol
with a venv of the *runtime's* interpreter, filled by uv from the variant's indexes (plus a
`buildWheel` recipe's `buildRequires`; its `configSettings` go to the PEP 517 hooks). Built
wheels are cached under a key of everything that decides them, so a rebuild compiles nothing.

Cross builds cannot run the target's interpreter, but a source whose wheel comes out
`py3-none-any` fits every platform: `host_pure_wheel` builds it once with the interpreter
running runenv and keeps it when the built wheel's tags say it is pure (and a marker when they
do not, so a compiled package is not rebuilt on every cross build).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

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
from runenv.errors import BuildError, RunenvError
from runenv.lock.uv import run_uv
from runenv.platforms import Platform, host_platform

if TYPE_CHECKING:
    from pyproject_hooks import SubprocessRunner

    from runenv.config.plan import Plan
    from runenv.fetch.wheels import Artifact

logger = logging.getLogger(__name__)

CACHE_SECTION = "built-wheels"
GIT_SECTION = "git"
NOT_PURE = "not-pure"  # marker: the host build of this source is not py3-none-any
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
        what: str = "source build",
    ) -> None:
        self._what = what
        self._indexes = indexes
        self._default_index = default_index
        self._cache = cache
        # The build runs the runtime's own interpreter, whose stdlib is the tree being built:
        # it must not write (mtime-stamped) .pyc files there, which would ship.
        self._extra = {**extra_environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self._timeout = timeout
        self._log = log_file
        run(
            [runtime_python, "-B", "-m", "venv", "--without-pip", path],
            what="create the source-build environment",
            env={"PYTHONDONTWRITEBYTECODE": "1"},
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
        """Install build requirements (from the sdist's own pyproject, or a recipe): each must
        be a PEP 508 requirement from an index, and goes after `--`, so none is an option."""
        if not requirements:
            return
        for text in requirements:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                raise BuildError(
                    f"{self._what}: build requirement {text!r} is not a requirement: fix the "
                    "package's build-system.requires or its buildWheel recipe"
                ) from None
            if req.url:
                raise BuildError(
                    f"{self._what}: build requirement {text!r} names a URL: build "
                    "requirements come from the configured indexes only"
                )
        index_args: list[str] = []
        if self._default_index:
            index_args.append(f"--default-index={self._default_index}")
        index_args += [f"--index={index}" for index in self._indexes]
        run_uv(
            [
                "pip",
                "install",
                "--no-config",
                f"--python={self._python}",
                *index_args,
                "--",
                *sorted(requirements),
            ],
            what="install the build requirements",
            cache=self._cache,
            timeout=self._timeout,
            log_file=self._log,
        )


def cache_key(artifact: Artifact, plan: Plan, *, host_pure: bool = False) -> str:
    """Everything that decides a built wheel: source, platform, Python, build settings.

    A host-built pure wheel serves every platform, so its key leaves the platform out.
    """
    inputs: dict[str, object] = {
        "recipe": BUILD_RECIPE,
        "sdist_sha256": artifact.sha256,
        "platform": "host-pure" if host_pure else plan.platform.value,
        "python": plan.python_version,
        "macos": None if host_pure else plan.macos,
        "registries": list(plan.registries),
    }
    recipe = plan.build_wheel.get(canonicalize_name(artifact.name))
    if artifact.kind == "git":
        inputs["git"] = artifact.url
    if recipe is not None:
        inputs["build_requires"] = list(recipe.build_requires)
        inputs["config_settings"] = [list(kv) for kv in recipe.config_settings]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def is_pure(wheel_name: str) -> bool:
    """Whether a wheel's tags fit every platform and Python 3 (`py3-none-any`)."""
    tags = parse_wheel_filename(wheel_name)[3]
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    return pure and any(t.interpreter.startswith("py3") for t in tags)


def fetch_git(artifact: Artifact, cache: Cache, *, timeout: float, log_file: Path | None) -> Path:
    """A checkout of the artifact's repository at its locked commit, kept in the cache."""
    folder = cache.section(GIT_SECTION) / artifact.sha256
    tree = folder / "tree"
    if tree.is_dir():
        return tree
    with lock_for(folder):
        if tree.is_dir():
            return tree
        folder.mkdir(parents=True, exist_ok=True)
        what = f"fetch {artifact.name} from {artifact.url} at {artifact.sha256[:12]}"
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        with tempfile.TemporaryDirectory(prefix=".tmp-git-", dir=folder) as tmp:
            stage = Path(tmp) / "tree"
            # `--` before values: a URL starting with `-` is a repository, never an option.
            run(["git", "clone", "--quiet", "--no-checkout", "--", artifact.url, stage], what=what,
                env=env, timeout=timeout, log_file=log_file)  # fmt: skip
            run(["git", "-C", stage, "checkout", "--quiet", "--detach", artifact.sha256, "--"],
                what=what, env=env, timeout=timeout, log_file=log_file)  # fmt: skip
            head = stage / ".git" / "HEAD"
            if head.read_text(encoding="utf-8").strip() != artifact.sha256:
                raise BuildError(f"{what}: the checkout is not at the locked commit")
            stage.rename(tree)
    return tree


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
    """The wheel built from `sdist` (a file, or a git checkout) for `plan`'s platform.

    From the cache when it is there. A pure (`py3-none-any`) wheel is kept once, in the
    host-pure entry every platform looks in first (under its lock, so concurrent builds wait
    and share it); a compiled one leaves the marker that spares cross builds a host attempt.
    """
    pure_key = cache_key(artifact, plan, host_pure=True)
    pure_folder = cache.section(CACHE_SECTION) / pure_key[:2] / pure_key
    with lock_for(pure_folder):
        shared = cached_wheel(pure_folder)
        if shared is not None:
            return shared
        wheel = _build_native(
            artifact, sdist, runtime_python, plan, cache, default_index=default_index,
            log_file=log_file,
        )  # fmt: skip
        pure_folder.mkdir(parents=True, exist_ok=True)
        if is_pure(wheel.name):  # kept once, where every platform looks first
            shared = pure_folder / wheel.name
            with staged_file(shared) as staged:
                shutil.copyfile(wheel, staged)
            mark_verified(shared, file_sha256(shared))
            evict(wheel)
            return shared
        (pure_folder / NOT_PURE).write_text(wheel.name + "\n", encoding="utf-8")
    return wheel


def _build_native(
    artifact: Artifact,
    sdist: Path,
    runtime_python: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None,
    log_file: Path | None,
) -> Path:
    key = cache_key(artifact, plan)
    folder = cache.section(CACHE_SECTION) / key[:2] / key
    done = cached_wheel(folder)
    if done is not None:
        return done
    with lock_for(folder):
        done = cached_wheel(folder)
        if done is not None:
            return done
        extra = (
            {"MACOSX_DEPLOYMENT_TARGET": f"{plan.macos[0]}.{plan.macos[1]}"} if plan.macos else {}
        )
        built = _build(
            artifact, sdist, runtime_python, plan, cache, extra,
            default_index=default_index, log_file=log_file or folder.parent / f"{key}.log",
        )  # fmt: skip
        with built as wheel:
            target = folder / wheel.name
            with staged_file(target) as staged:
                shutil.copyfile(wheel, staged)
            mark_verified(target, file_sha256(target))
    return target


def host_pure_wheel(
    artifact: Artifact,
    source: Path,
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> Path | None:
    """The source's wheel built on this machine if it is `py3-none-any`, else None.

    Built once (with the interpreter running runenv) and cached for every platform; a source
    whose wheel is not pure leaves a marker so later cross builds do not rebuild it.
    """
    key = cache_key(artifact, plan, host_pure=True)
    folder = cache.section(CACHE_SECTION) / key[:2] / key
    with lock_for(folder):
        done = cached_wheel(folder)
        if done is not None:
            return done
        if (folder / NOT_PURE).is_file():
            return None
        try:
            built = _build(
                artifact, source, Path(sys.executable), plan, cache, {},
                default_index=default_index, log_file=log_file or folder.parent / f"{key}.log",
            )  # fmt: skip
            with built as wheel:
                if not is_pure(wheel.name):
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / NOT_PURE).write_text(wheel.name + "\n", encoding="utf-8")
                    return None
                target = folder / wheel.name
                with staged_file(target) as staged:
                    shutil.copyfile(wheel, staged)
                mark_verified(target, file_sha256(target))
        except BuildError as exc:  # cannot build here: it needs the native runner
            logger.debug("host build of %s failed: %s", artifact.name, exc)
            return None
    return target


class _Built:
    """A wheel in a temp folder, removed on leaving the `with` block."""

    def __init__(self, tmp: tempfile.TemporaryDirectory[str], wheel: Path) -> None:
        self._tmp = tmp
        self._wheel = wheel

    def __enter__(self) -> Path:
        return self._wheel

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def _build(
    artifact: Artifact,
    source: Path,
    python: Path,
    plan: Plan,
    cache: Cache,
    extra: Mapping[str, str],
    *,
    default_index: str | None,
    log_file: Path,
) -> _Built:
    """Build a wheel from an sdist file or a source folder with `python`; BuildError if not."""
    from build import BuildBackendException, ProjectBuilder

    recipe = plan.build_wheel.get(canonicalize_name(artifact.name))
    settings = recipe.settings() if recipe else None
    what = f"build {artifact.name} {artifact.version} from source"
    tmp = tempfile.TemporaryDirectory(prefix="runenv-sdist-")
    try:
        work = Path(tmp.name)
        if source.is_dir():
            project = work / "src" / artifact.name
            shutil.copytree(source, project, symlinks=True)
        else:
            project = _unpack_sdist(source, work / "src")
        env = RuntimeEnv(
            python,
            work / "env",
            indexes=plan.registries,
            default_index=default_index,
            cache=cache,
            extra_environ=extra,
            timeout=float(plan.timeout),
            log_file=log_file,
            what=what,
        )
        try:
            builder = ProjectBuilder.from_isolated_env(
                env, project, runner=_runner(float(plan.timeout), log_file, what)
            )
            env.install(builder.build_system_requires)
            if recipe is not None:  # the recipe's extra build requirements
                env.install(recipe.build_requires)
            env.install(builder.get_requires_for_build("wheel", settings))
            built = Path(builder.build("wheel", work / "out", settings))
        except BuildBackendException as exc:
            cause = exc.exception  # our runner's SubprocessError already says what failed
            raise BuildError(
                str(cause) if isinstance(cause, RunenvError) else f"{what}: {cause}"
            ) from None
        return _Built(tmp, built)
    except BaseException:
        tmp.cleanup()
        raise


def cached_wheel(folder: Path) -> Path | None:
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
    timeout = float(plan.timeout)
    return {
        a.filename: build_wheel(
            a,
            source_of(a, files, cache, timeout=timeout, log_file=log_file),
            runtime_python,
            plan,
            cache,
            default_index=default_index,
            log_file=log_file,
        )
        for a in sdists
    }


def source_of(
    artifact: Artifact,
    files: Mapping[str, Path],
    cache: Cache,
    *,
    timeout: float,
    log_file: Path | None,
) -> Path:
    """Where a source artifact is: its downloaded sdist, or its git checkout."""
    if artifact.kind == "git":
        return fetch_git(artifact, cache, timeout=timeout, log_file=log_file)
    return files[artifact.filename]


def host_pure_wheels(
    sources: Sequence[Artifact],
    files: Mapping[str, Path],
    plan: Plan,
    cache: Cache,
    *,
    default_index: str | None = None,
    log_file: Path | None = None,
) -> dict[str, Path]:
    """For a cross build: the wheels of `sources` built for the target on its native runner
    (imported into the cache from `runenv wheels`), else those that build `py3-none-any` here.

    Raises CrossSourceBuildError (its message unchanged) naming those that do not.
    """
    timeout = float(plan.timeout)
    built: dict[str, Path] = {}
    native_only = []
    for a in sources:
        # Built for this very platform on its native runner (`runenv build --built-wheels`).
        key = cache_key(a, plan)
        native = cached_wheel(cache.section(CACHE_SECTION) / key[:2] / key)
        if native is not None:
            built[a.filename] = native
            continue
        source = source_of(a, files, cache, timeout=timeout, log_file=log_file)
        wheel = host_pure_wheel(a, source, plan, cache, default_index=default_index,
                                log_file=log_file)  # fmt: skip
        if wheel is None:
            native_only.append(a)
        else:
            built[a.filename] = wheel
    if native_only:
        raise CrossSourceBuildError(plan.platform, native_only)
    return built
