"""One wheel built from an sdist file or a source folder, through its PEP 517 hooks.

pypa/build drives the hooks in a `RuntimeEnv` of the interpreter the wheel is for; a
`buildWheel` recipe adds its `buildRequires` and passes its `configSettings` to the hooks.
Every command goes through `_subprocess.run` (logged, bounded); the wheel lands in a temp
folder the caller copies it out of.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from runenv._cache import Cache
from runenv._subprocess import run
from runenv.errors import BuildError, RunenvError
from runenv.platforms import host_platform
from runenv.sources.build_env import RuntimeEnv

if TYPE_CHECKING:
    from pyproject_hooks import SubprocessRunner

    from runenv.config.plan import Plan
    from runenv.fetch.wheels import Artifact


class Built:
    """A wheel in a temp folder, removed on leaving the `with` block."""

    def __init__(self, tmp: tempfile.TemporaryDirectory[str], wheel: Path) -> None:
        self._tmp = tmp
        self._wheel = wheel

    def __enter__(self) -> Path:
        return self._wheel

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def build(
    artifact: Artifact,
    source: Path,
    python: Path,
    plan: Plan,
    cache: Cache,
    extra: Mapping[str, str],
    *,
    default_index: str | None,
    log_file: Path,
) -> Built:
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
            extra_environ=reproducible(extra, work),
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
        return Built(tmp, built)
    except BaseException:
        tmp.cleanup()
        raise


# The preprocessor's flags carry the mapping: setuptools adds CPPFLAGS to the interpreter's
# own C and C++ flags, where CFLAGS and CXXFLAGS replace them (setuptools 84's
# compilers/C/unix.py: -O3 and -g would go); meson and autotools add it too (CMake reads none).
FLAGS = "CPPFLAGS"
MAPPED = "/runenv-sdist"


def reproducible(extra: Mapping[str, str], work: Path) -> dict[str, str]:
    """`extra`, with `-ffile-prefix-map` mapping the build's temp folder `work` to a fixed name
    added to the preprocessor's flags (after the ones `extra` or this process sets).
    Compilers write the folder they build in into their output (DWARF's comp_dir,
    `__FILE__`): a random name of the same length each build, so one sdist built twice gave
    a library that differs in a few bytes, and so did the archive. GCC 8+ and clang 10+ know
    the flag; on Windows (MSVC, which reads no CPPFLAGS) and for a folder with whitespace
    (flags are split on it) nothing is added."""
    # Both spellings: the compiler's working folder is the resolved one (macOS's /var is a
    # symlink to /private/var), a path the backend passes may be the other.
    names = sorted({str(work), str(work.resolve())})
    if host_platform().info.is_windows or any(c.isspace() for n in names for c in n):
        return dict(extra)
    flags = " ".join(f"-ffile-prefix-map={name}={MAPPED}" for name in names)
    given = extra.get(FLAGS, os.environ.get(FLAGS, ""))
    return {**extra, FLAGS: f"{given} {flags}".strip()}


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
