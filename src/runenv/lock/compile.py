"""`uv pip compile` of a `LockRequest`: the arguments and input files that make uv resolve for
the request's platform, Python, floors, indexes, constraints, overrides and noDeps packages.

How uv itself is started, and under which environment, is `uv.run_uv`'s; this module says
what a lock asks of it.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from packaging.utils import canonicalize_name

from runenv._cache import Cache
from runenv.config.dependency import is_git_dependency, parse_git
from runenv.lock.pylock import Lock, LockedPackage
from runenv.lock.request import PYPI_SIMPLE, LockRequest
from runenv.lock.uv import run_uv


@dataclass(frozen=True)
class UvCompile:
    """How one lock runs uv: what its messages name, and the settings every run shares."""

    label: str  # "3.12.10-atls for linux-x64 (Python 3.12.10)"
    cache: Cache
    timeout: float
    log_file: Path | None
    offline: bool

    def resolve(
        self,
        request: LockRequest,
        reqs: Path,
        folder: Path,
        versions: Mapping[str, str] | None = None,
        *,
        annotated: bool = False,
    ) -> str:
        """uv's resolution of the requirements file `reqs` for `request` (its input files in
        `folder`): the PEP 751 lock; with `annotated`, a requirements.txt with each pin's
        `# via` notes instead (a lock has no dependency graph). SubprocessError when uv fails.
        """
        if annotated:
            out = folder / "requirements.txt"
            form = ["--format", "requirements.txt", "--annotation-style", "line"]
        else:
            out, form = folder / "pylock.toml", ["--format", "pylock.toml"]
        self._run(request, reqs, out, [*input_files(request, folder, versions), *form])
        return out.read_text(encoding="utf-8")

    def _run(self, request: LockRequest, reqs: Path, out: Path, extra: list[str]) -> None:
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
        if self.offline:
            args.append("--offline")
        # uv reads the macOS minimum from here (its default is a recent macOS, not the floor).
        macos = request.floor if request.platform.info.os == "macos" else None
        run_uv(
            args,
            what=f"uv lock of {self.label}",
            cache=self.cache,
            timeout=self.timeout,
            log_file=self.log_file,
            env={"MACOSX_DEPLOYMENT_TARGET": dotted(macos) if macos else None},
        )


def input_files(
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


def dotted(version: tuple[int, int]) -> str:
    """`(2, 28)` as `2.28`."""
    return ".".join(map(str, version))


# uv applies version-less dependency-metadata to index packages only: a git package that
# noDeps names needs its name and version given, which a first resolution tells.


def no_deps_git(
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


def named_git(text: str, packages: list[LockedPackage]) -> str:
    """A bare `git+URL@rev` requirement with the name its locked package has (`name @ ...`)."""
    if not is_git_dependency(text) or not text.strip().startswith("git+"):
        return text
    ref = parse_git(text)
    for pkg in packages:
        if pkg.vcs is not None and _url_key(pkg.vcs.url) == _url_key(ref.url):
            return f"{pkg.name} @ {text.strip()}"
    return text


def _url_key(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len(".git")] if url.endswith(".git") else url
