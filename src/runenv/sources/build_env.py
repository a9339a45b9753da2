"""The environment a source build runs in: a venv of the *runtime's* interpreter.

pypa/build's `DefaultIsolatedEnv` would make the build environment from the interpreter
running runenv, so `RuntimeEnv` implements build's `IsolatedEnv` protocol with a venv of the
interpreter the wheel is built for, filled by uv from the variant's indexes (plus a
`buildWheel` recipe's `buildRequires`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from runenv._cache import Cache
from runenv._subprocess import run
from runenv.errors import BuildError
from runenv.lock.uv import run_uv
from runenv.platforms import host_platform


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
