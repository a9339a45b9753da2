"""A variant's `package.json` in the reference system: the runtime artifact it declares.

The reference publishes each variant as an npm package whose `package.json` declares, under
`block-software.entrypoints.<name>.environment.artifact`, an artifact of type `environment`,
runtime `python`, with `roots` (per platform, the folder `pl-pkg` packs, relative to the
variant folder; default `./pydist/<platform>`), `binDir` (where the consumer finds `python`,
relative to a root; default `bin`) and `envVars` (`NAME=value` strings, set for every step of a
block). runenv reads those three; everything else in the file is npm's and left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from runenv.errors import ConfigError
from runenv.platforms import Platform

PACKAGE_JSON = "package.json"
MAX_BYTES = 1 << 20  # a package.json is a few kB; a larger one is not read
DEFAULT_BIN_DIR = PurePosixPath("bin")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


@dataclass(frozen=True)
class RuntimeArtifact:
    """The `environment` artifact of a variant's `package.json`."""

    roots: Mapping[Platform, PurePosixPath] = field(default_factory=dict)  # as declared
    bin_dir: PurePosixPath = DEFAULT_BIN_DIR
    env_vars: Mapping[str, str] = field(default_factory=dict)
    python_version: str | None = None

    def root(self, platform: Platform) -> PurePosixPath:
        """The platform's root, relative to the variant folder (`pydist/<platform>` unless
        declared)."""
        return self.roots.get(platform, PurePosixPath("pydist", platform.value))


def _inside(value: Any, shown: str, key: str) -> PurePosixPath:
    """A relative path that stays inside the folder it is relative to, as written: no `..`,
    nothing absolute, no drive, no backslash games; `.` parts dropped."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(shown, key, "must be a non-empty relative path")
    if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value) or "\\" in value:
        raise ConfigError(shown, key, f"{value!r} must be a relative path with / separators")
    parts = [p for p in PurePosixPath(value).parts if p != "."]
    if ".." in parts or not parts or "\0" in value:
        raise ConfigError(shown, key, f"{value!r} must stay inside the variant folder (no '..')")
    return PurePosixPath(*parts)


def _artifacts(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    software = data.get("block-software")
    entrypoints = software.get("entrypoints") if isinstance(software, dict) else None
    found: list[tuple[str, Mapping[str, Any]]] = []
    for name, entry in (entrypoints or {}).items() if isinstance(entrypoints, dict) else ():
        env = entry.get("environment") if isinstance(entry, dict) else None
        artifact = env.get("artifact") if isinstance(env, dict) else None
        if (
            isinstance(artifact, dict)
            and artifact.get("type") == "environment"
            and artifact.get("runtime") == "python"
        ):
            found.append((f"block-software.entrypoints.{name}.environment.artifact", artifact))
    return found


def read_artifact(path: Path, shown: str) -> RuntimeArtifact:
    """The runtime artifact of the `package.json` at `path` (`shown` names it in errors).

    ConfigError, naming the file and key, for a file that is not JSON, declares no python
    environment artifact, or whose roots or binDir leave the variant folder.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(shown, None, f"larger than {MAX_BYTES} bytes: not a package.json")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(shown, None, f"not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(shown, None, "the top level must be an object")
    found = _artifacts(data)
    if not found:
        raise ConfigError(
            shown,
            "block-software",
            "declares no artifact of type environment with runtime python: add one "
            '(block-software.entrypoints.main.environment.artifact = {"type": "environment", '
            '"runtime": "python", ...})',
        )
    key, artifact = found[0]
    for other_key, other in found[1:]:
        if other != artifact:
            raise ConfigError(shown, other_key, f"differs from {key}: declare one runtime")

    roots: dict[Platform, PurePosixPath] = {}
    raw_roots = artifact.get("roots", {})
    if not isinstance(raw_roots, dict):
        raise ConfigError(shown, f"{key}.roots", "must be an object of platform: path")
    for plat, value in raw_roots.items():
        try:
            platform = Platform(plat)
        except ValueError:
            known = ", ".join(p.value for p in Platform)
            raise ConfigError(
                shown, f"{key}.roots", f"unknown platform key {plat!r} (use one of {known})"
            ) from None
        roots[platform] = _inside(value, shown, f"{key}.roots.{plat}")
    bin_dir = _inside(artifact.get("binDir", "bin"), shown, f"{key}.binDir")

    env: dict[str, str] = {}
    raw_env = artifact.get("envVars", [])
    if not isinstance(raw_env, list):
        raise ConfigError(shown, f"{key}.envVars", "must be a list of NAME=value strings")
    for i, item in enumerate(raw_env):
        name, eq, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not eq or not _ENV_NAME.fullmatch(name) or "\0" in value:
            raise ConfigError(
                shown, f"{key}.envVars[{i}]", f"{item!r} is not NAME=value (NAME: letters, _)"
            )
        env[name] = value
    version = artifact.get("python-version")
    return RuntimeArtifact(
        roots=roots,
        bin_dir=bin_dir,
        env_vars=env,
        python_version=version if isinstance(version, str) else None,
    )
