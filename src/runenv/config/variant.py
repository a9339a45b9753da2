"""Read, validate and merge `shared-config.toml` and `versions/<variant>/config.toml`.

Each file is validated on its own first, so an error names the file it is in; then the layers
(shared, the `extends` chain, the variant) are merged by the rules in docs/architecture.md
("The configuration and its merge rules") and validated once more as a whole. `config.json`
in the reference system's JSON format is accepted in place of `config.toml` (one of the two
per place).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from deepmerge import Merger
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from runenv import _bounded
from runenv._safe_paths import PathRefused, inside
from runenv.config.package_json import PACKAGE_JSON, RuntimeArtifact, read_artifact
from runenv.errors import ConfigError, UsageError
from runenv.platforms import ALL_PLATFORMS, Platform

SHARED_NAMES = ("shared-config.toml", "shared-config.json")
VARIANT_NAMES = ("config.toml", "config.json")
VERSIONS_DIR = "versions"

# Identifiers are checked whole (`fullmatch`) with ASCII classes: `$` would take a trailing
# newline and `\d` any script's digits.
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+", re.ASCII)
_VARIANT_RE = re.compile(
    r"(?P<version>\d+\.\d+\.\d+)?(?:[-_.]?[A-Za-z0-9][A-Za-z0-9._-]*)?", re.ASCII
)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*", re.ASCII)  # a variant folder's name
_PACKAGE_RE = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.I | re.A)  # PEP 508
SITE_PACKAGES_PLACEHOLDERS = ("{site-packages}", "<site-packages>")


# --- value checks: each raises ValueError with the message the user sees -----------------


def _requirement(value: str) -> str:
    if is_git_dependency(value):
        parse_git(value)  # raises ValueError naming what is wrong
        return value
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # packaging adds lines that point at the column
        raise ValueError(f"malformed requirement {value!r}: {reason}") from None
    if req.url:
        raise ValueError(
            f"requirement {value!r}: direct URL requirements cannot be locked "
            "(only git ones: git+https://host/org/repo.git@rev)"
        )
    return value


def _build_requirement(value: str) -> str:
    """A requirement of a source build (`setuptools>=40.8.0`, `numpy==1.26.4`): no URLs."""
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{value!r} is not a requirement: {reason}") from None
    if req.url:
        raise ValueError(f"{value!r}: a build requirement must come from an index, not a URL")
    return value


def _package_name(value: str) -> str:
    if not _PACKAGE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a package name")
    return value


def _config_setting(value: str) -> str:
    """One PEP 517 config setting as the reference writes it: `key=value`."""
    key, eq, _ = value.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"{value!r} is not a config setting of the form key=value")
    return value


# --- git dependencies ----------------------------------------------------------------------

_GIT_SCHEMES = ("git+https", "git+http", "git+ssh", "git+file")
_GIT_EXAMPLE = "git+https://host/org/repo.git@rev"


@dataclass(frozen=True)
class GitDependency:
    """A dependency on a git repository: `git+URL[@rev]` or `name @ git+URL[@rev]`."""

    name: str  # as given, else the repository's: `parapred-pytorch` for .../parapred-pytorch.git
    url: str  # the repository URL, without `git+` and without the revision
    rev: str | None
    named: bool  # written as `name @ git+...`

    @property
    def requirement(self) -> str:
        """The line uv reads: the dependency as written, normalised to `name @ git+...`."""
        rev = f"@{self.rev}" if self.rev else ""
        return f"{self.name} @ git+{self.url}{rev}"


def is_git_dependency(value: str) -> bool:
    """Whether a dependency string names a git repository (it may still be malformed)."""
    text = value.strip()
    if text.startswith("git+"):
        return True
    _, at, rest = text.partition("@")
    return bool(at) and rest.strip().startswith("git+")


def parse_git(value: str) -> GitDependency:
    """Split a git dependency; ValueError saying what is wrong with a malformed one."""
    text = value.strip()
    name: str | None = None
    if not text.startswith("git+"):
        head, _, text = text.partition("@")
        name, text = head.strip(), text.strip()
        if not _PACKAGE_RE.fullmatch(name):
            raise ValueError(f"{value!r}: {name!r} is not a package name")
    bad = f"malformed git URL {value!r}: expected {_GIT_EXAMPLE} or name @ {_GIT_EXAMPLE}"
    if any(c.isspace() for c in text) or ("#" in text and "#egg=" not in text):
        raise ValueError(bad)
    text, _, fragment = text.partition("#")
    parts = urlsplit(text)
    if parts.scheme not in _GIT_SCHEMES:
        raise ValueError(f"{bad} (scheme {parts.scheme or 'missing'!r})")
    if parts.scheme != "git+file" and not parts.hostname:
        raise ValueError(f"{bad} (no host)")
    path = parts.path
    rev: str | None = None
    if "@" in path:
        path, _, rev = path.rpartition("@")
        if not rev or not re.fullmatch(r"[A-Za-z0-9._/+-]+", rev, re.ASCII):
            raise ValueError(f"{bad} (empty or invalid revision after @)")
    repo = path.rstrip("/").rsplit("/", 1)[-1]
    repo = repo[: -len(".git")] if repo.endswith(".git") else repo
    if not repo:
        raise ValueError(f"{bad} (no repository path)")
    if fragment.startswith("egg=") and name is None:
        name = fragment[len("egg=") :]
    name = name or repo
    if not _PACKAGE_RE.fullmatch(name):
        raise ValueError(f"{bad} (cannot take a package name from {repo!r}: write name @ git+...)")
    url = urlunsplit((parts.scheme[len("git+") :], parts.netloc, path, parts.query, ""))
    return GitDependency(name=name, url=url, rev=rev, named=not value.strip().startswith("git+"))


def dependency_name(value: str) -> str:
    """The package name of a (validated) dependency string, git ones included."""
    if is_git_dependency(value):
        return parse_git(value).name
    return Requirement(value).name


def _python_version(value: str) -> str:
    if not _VERSION_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Python version of the form X.Y.Z")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _location(value: str) -> str:
    """A URL (http, https, file) or a plain directory path."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"{value!r} is not a valid URL")
    if len(parts.scheme) > 1 and parts.scheme not in ("http", "https", "file"):
        raise ValueError(f"{value!r}: only http, https and file URLs or a directory path")
    return value


def _sha256(value: str) -> str:
    if not _SHA256_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a sha256 (64 lowercase hex digits)")
    return value


def _override(value: str) -> str:
    """An override is a version (`2.1.3`, meaning `==2.1.3`) or a specifier (`>=2,<3`)."""
    try:
        SpecifierSet(_override_spec(value))
    except InvalidSpecifier:
        raise ValueError(f"{value!r} is neither a version nor a version specifier") from None
    return value


def _override_spec(value: str) -> str:
    value = value.strip()
    return value if value[:1] in "<>=!~" else f"=={value}"


def _relative_path(value: str) -> str:
    if not value or value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value, re.ASCII):
        raise ValueError(f"{value!r} must be a relative path")
    normal = PurePosixPath(value.replace("\\", "/"))
    depth = 0
    for part in normal.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ValueError(f"{value!r} leaves the folder it is relative to")
    return value


def _glibc(value: str) -> str:
    if not re.fullmatch(r"2\.\d+", value, re.ASCII) or int(value.split(".")[1]) < 17:
        raise ValueError(f"{value!r} is not a glibc version of 2.17 or newer, like 2.28")
    return value


RequirementStr = Annotated[str, AfterValidator(_requirement)]
PythonVersion = Annotated[str, AfterValidator(_python_version)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Location = Annotated[str, AfterValidator(_location)]
Sha256 = Annotated[str, AfterValidator(_sha256)]
OverrideStr = Annotated[str, AfterValidator(_override)]
RelativePath = Annotated[str, AfterValidator(_relative_path)]
Glibc = Annotated[str, AfterValidator(_glibc)]
BuildRequirement = Annotated[str, AfterValidator(_build_requirement)]
PackageName = Annotated[str, AfterValidator(_package_name)]
ConfigSetting = Annotated[str, AfterValidator(_config_setting)]


# --- the models --------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CopyFile(_Model):
    """Copy `from` (relative to the variant folder) to `to` (relative to the runtime root)."""

    from_: RelativePath = Field(alias="from")
    to: RelativePath


class Resolution(_Model):
    """The reference system's source policy: which packages may, must or must not be built.

    Booleans left out inherit from the less specific layer; lists add up (see README.md).
    """

    allowSourceAll: StrictBool | None = None
    strictMissing: StrictBool | None = None
    allowSourceList: list[PackageName] = []
    forceNoBinaryList: list[PackageName] = []
    onlyBinaryList: list[PackageName] = []


class BuildWheel(_Model):
    """Build this package's wheel from its sdist on one platform, with these extras."""

    reason: str = ""
    buildRequires: list[BuildRequirement] = []
    # PEP 517 config settings: `key=value` strings (the reference's form) or a table.
    configSettings: list[ConfigSetting] | dict[str, str | list[str]] = []


class PlatformSpecific(_Model):
    dependencies: list[RequirementStr] = []
    copyFiles: list[CopyFile] = []
    resolution: Resolution | None = None


class Packages(_Model):
    dependencies: list[RequirementStr] | None = None
    overrides: dict[str, OverrideStr] = {}
    skip: dict[str, dict[Platform, str]] = {}
    forceSource: dict[str, dict[Platform, str]] = {}
    buildWheel: dict[str, dict[Platform, BuildWheel]] = {}
    noDeps: list[PackageName] = []
    resolution: Resolution | None = None
    copyFiles: list[CopyFile] = []
    platformSpecific: dict[Platform, PlatformSpecific] = {}


class Registries(_Model):
    additional: list[HttpUrl] = []


class Build(_Model):
    enableLogging: bool = True
    parallelDownloads: bool = True
    compileBytecode: bool = True  # ship .pyc files (stage 6b, bytecode.py), as pip installs them
    # also for packages' test suites (subpackages named test/tests): pip compiles them, runenv
    # ships them as source by default (two thirds of the compile time of a scientific stack)
    compileTestBytecode: bool = False
    timeout: int = Field(default=300, ge=1, le=86_400)


class PythonArchive(_Model):
    """A pinned interpreter archive for one platform (an in-house build)."""

    url: Location | None = None
    path: str | None = None
    sha256: Sha256

    @model_validator(mode="after")
    def _one_source(self) -> PythonArchive:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url or path")
        return self


class PythonSection(_Model):
    version: PythonVersion | None = None
    mirror: Location | None = None
    archives: dict[Platform, PythonArchive] = {}


class Layout(StrEnum):
    """What a runtime holds (README, "Runtime layouts").

    `installed`: the locked packages installed in its site-packages, ready to run (runenv's own
    consumers). `wheelhouse`: a Python that makes venvs plus `packages/`, the locked set as
    wheels, from which each block installs what it names (the reference system's consumer).
    """

    INSTALLED = "installed"
    WHEELHOUSE = "wheelhouse"


class Runtime(_Model):
    env: dict[str, str] = {}
    # None: `wheelhouse` for a variant written in the reference's JSON format (its consumer
    # makes block venvs from `packages/`), `installed` for runenv's TOML (`default_layout`).
    layout: Layout | None = None


class Check(_Model):
    """Settings of the check stage (runenv's addition)."""

    allowImportFailures: dict[str, str] = {}
    glibc: Glibc = "2.28"  # the manylinux floor Linux wheels must fit
    macos: dict[Platform, str] = {}


class Config(_Model):
    """One config file, or the merge of several."""

    extends: str | None = None
    platforms: list[Platform] | None = None
    python: PythonSection = PythonSection()
    registries: Registries = Registries()
    packages: Packages = Packages()
    build: Build = Build()
    runtime: Runtime = Runtime()
    check: Check = Check()

    @model_validator(mode="after")
    def _platforms_not_empty(self) -> Config:
        if self.platforms is not None and not self.platforms:
            raise ValueError("platforms: must name at least one platform")
        return self


# --- loading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One config file as read: where it is, the folder its relative paths start from, its data."""

    path: Path
    base: Path
    data: dict[str, Any]
    model: Config


@dataclass(frozen=True)
class ResolvedCopy:
    """A `copyFiles` entry with its source made absolute; `to` may still hold a placeholder."""

    source: Path
    to: str
    declared_in: Path


@dataclass(frozen=True)
class VariantConfig:
    """The merged, validated configuration of one variant."""

    project: Path
    variant: str
    python_version: str
    config: Config
    layers: tuple[Layer, ...]
    copy_files: tuple[ResolvedCopy, ...]
    platform_copy_files: Mapping[Platform, tuple[ResolvedCopy, ...]]

    @property
    def platforms(self) -> tuple[Platform, ...]:
        """`platforms`, else those the variant's package.json has roots for, else all five."""
        if self.config.platforms:
            return tuple(self.config.platforms)
        if self.artifact is not None and self.artifact.roots:
            return tuple(p for p in ALL_PLATFORMS if p in self.artifact.roots)
        return ALL_PLATFORMS

    artifact: RuntimeArtifact | None = None  # the variant's package.json, when it has one

    @property
    def folder(self) -> Path:
        return variant_path(self.project, self.variant)

    @property
    def layout(self) -> Layout:
        """`[runtime] layout`, else by the format the variant is written in (`Runtime.layout`)."""
        chosen = self.config.runtime.layout
        if chosen is not None:
            return chosen
        return Layout.WHEELHOUSE if self.layers[-1].path.suffix == ".json" else Layout.INSTALLED

    @property
    def in_reference_checkout(self) -> bool:
        """Whether the project is a checkout of the reference system, built in place."""
        return is_reference_checkout(self.project)


REFERENCE_PREFIX = "python-"
"""A reference checkout's variant folders: `python-<variant>/` beside `shared-config.json`."""


def is_reference_checkout(folder: Path) -> bool:
    """Whether `folder` is a checkout of the reference system (README, "The reference system's
    checkout"): `shared-config.json` and `python-<variant>/config.json` folders, no `versions/`."""
    if (folder / VERSIONS_DIR).is_dir() or not (folder / "shared-config.json").is_file():
        return False
    return any(
        p.name.startswith(REFERENCE_PREFIX) and (p / "config.json").is_file()
        for p in folder.iterdir()
        if p.is_dir() and not p.is_symlink()
    )


def variant_path(project: Path, name: str) -> Path:
    """Where variant `name`'s folder is (`versions/<name>/`, or `python-<name>/` in a
    reference checkout); unchecked: `variant_folder` is the checked way."""
    if is_reference_checkout(project):
        return project / f"{REFERENCE_PREFIX}{name}"
    return project / VERSIONS_DIR / name


def variant_of(project: Path, folder: Path) -> str | None:
    """The variant whose folder holds `folder` (for `runenv build` naming nothing), if any."""
    try:
        parts = folder.resolve().relative_to(project.resolve()).parts
    except ValueError:
        return None
    if is_reference_checkout(project):
        if parts and parts[0].startswith(REFERENCE_PREFIX):
            return parts[0][len(REFERENCE_PREFIX) :] or None
        return None
    return parts[1] if len(parts) > 1 and parts[0] == VERSIONS_DIR else None


def find_project(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` that holds `versions/`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / VERSIONS_DIR).is_dir() or is_reference_checkout(folder):
            return folder
    raise UsageError(
        f"no {VERSIONS_DIR}/ folder (nor a reference checkout) in {here} or above: run runenv "
        "in a runenv project or pass --project DIR"
    )


def check_variant_name(name: str) -> str:
    """`name` if it can name a variant: a plain folder name, never a path.

    Letters, digits and `.`, `_`, `+`, `-`, starting with a letter or digit: no separators, no
    `..`, nothing absolute, so a name can only ever mean a folder directly under `versions/` (and
    `pydist/<name>` or `dist/runenv-<name>-*` for its outputs). UsageError otherwise.
    """
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise UsageError(
            f"{name!r} is not a variant name: a variant is a folder directly under "
            f"{VERSIONS_DIR}/, named with letters, digits, '.', '_', '+' or '-' "
            "(e.g. 3.12.10-atls), never a path"
        )
    return name


def variant_folder(project: Path, name: str) -> Path:
    """The folder of variant `name`, `versions/<name>/`: the one way every command resolves a
    variant name. A path-shaped name, a missing folder or a link is a UsageError."""
    folder = variant_path(project, check_variant_name(name))
    if folder.is_symlink():
        raise UsageError(f"{_display(project, folder)} is a link: a variant is a plain folder")
    if not folder.is_dir():
        known = ", ".join(list_variants(project)) or "none"
        raise UsageError(f"unknown variant {name!r} (known: {known}); create it with runenv new")
    return folder


def list_variants(project: Path) -> list[str]:
    """Every variant under `versions/`: plain folders with a valid name, sorted."""
    if is_reference_checkout(project):
        names = [
            p.name[len(REFERENCE_PREFIX) :]
            for p in project.iterdir()
            if p.name.startswith(REFERENCE_PREFIX) and (p / "config.json").is_file()
        ]
        return sorted(
            n
            for n in names
            if _NAME_RE.fullmatch(n) and ".." not in n and not variant_path(project, n).is_symlink()
        )
    root = project / VERSIONS_DIR
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if _NAME_RE.fullmatch(p.name) and ".." not in p.name and p.is_dir() and not p.is_symlink()
    )


def _display(project: Path, path: Path) -> str:
    try:
        return path.relative_to(project).as_posix()
    except ValueError:
        return str(path)


def _pick_file(project: Path, folder: Path, names: tuple[str, ...]) -> Path | None:
    # Any entry but a folder counts: a FIFO or a link to nowhere is refused by the read, with
    # its name, rather than skipped as if absent.
    found = [folder / n for n in names if _present(folder / n)]
    if len(found) > 1:
        shown = " and ".join(_display(project, p) for p in found)
        raise ConfigError(shown, None, "both exist: keep one of the two")
    return found[0] if found else None


def _present(path: Path) -> bool:
    return (path.exists() or path.is_symlink()) and not path.is_dir()


def _read(project: Path, path: Path) -> dict[str, Any]:
    return read_config_file(path, _display(project, path))


def read_config_file(path: Path, shown: str) -> dict[str, Any]:
    """A config file's table, JSON or TOML by its suffix, read within `_bounded`'s limits;
    ConfigError naming `shown` when it cannot be read or parsed, or is not a table."""
    try:
        text = _bounded.read_text(path)
        data = _bounded.loads_json(text) if path.suffix == ".json" else _bounded.loads_toml(text)
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read: {exc.strerror}") from None
    except _bounded.InputError as exc:
        raise ConfigError(shown, None, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            shown, None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, None, f"invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(shown, None, "the top level must be a table (an object)")
    return data


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return ".".join(parts).replace(".[", "[")


def _first_error(shown: str, exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "enum":
        known = ", ".join(p.value for p in Platform)
        message = f"unknown platform key {err['input']!r} (use one of {known})"
    elif kind == "missing":
        message = "missing required key"
    elif kind == "value_error":
        message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    else:
        message = f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {err['input']!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(shown, _loc(loc) or None, message + more)


def _validate(shown: str, data: Mapping[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _first_error(shown, exc) from None


def load_layer(project: Path, path: Path, base: Path) -> Layer:
    data = _read(project, path)
    return Layer(path, base, data, _validate(_display(project, path), data))


def _variant_layers(project: Path, variant: str, chain: tuple[str, ...] = ()) -> list[Layer]:
    """The variant's own file, preceded by the files of the variants it extends."""
    folder = variant_path(project, variant)
    path = _pick_file(project, folder, VARIANT_NAMES)
    if path is None:
        shown = _display(project, folder)
        raise ConfigError(shown, None, "no config.toml or config.json: run `runenv new`")
    layer = load_layer(project, path, folder)
    parent = layer.model.extends
    if parent is None:
        return [layer]
    shown = _display(project, path)
    if parent in (*chain, variant):
        cycle = " -> ".join((*chain, variant, parent))
        raise ConfigError(shown, "extends", f"cycle: {cycle}")
    if parent not in list_variants(project):
        raise ConfigError(shown, "extends", f"no variant {parent!r} under {VERSIONS_DIR}/")
    return [*_variant_layers(project, parent, (*chain, variant)), layer]


# --- merging -----------------------------------------------------------------------------


def _merge_lists(config: Merger, path: list[str], base: list[Any], nxt: list[Any]) -> list[Any]:
    if path == ["packages", "dependencies"]:
        return list(nxt)
    if path == ["registries", "additional"]:
        return list(dict.fromkeys([*base, *nxt]))
    if path == ["platforms"]:
        return list(nxt)
    return [*base, *nxt]


def _merge_dicts(
    config: Merger, path: list[str], base: dict[str, Any], nxt: dict[str, Any]
) -> dict[str, Any]:
    # `packages.buildWheel.<package>.<platform>` is one recipe: a later layer replaces it whole.
    if len(path) == 4 and path[:2] == ["packages", "buildWheel"]:
        return dict(nxt)
    for key, value in nxt.items():
        base[key] = config.value_strategy([*path, key], base[key], value) if key in base else value
    return base


_MERGER = Merger([(list, _merge_lists), (dict, _merge_dicts)], ["override"], ["override"])


def merge_layers(layers: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge raw config dicts, first to last, by the rules in docs/architecture.md (later wins)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        data = {k: v for k, v in layer.items() if k != "extends"}
        merged = _MERGER.merge(merged, json.loads(json.dumps(data)))
    return merged


def _resolve_copies(
    project: Path, layer: Layer
) -> tuple[list[ResolvedCopy], dict[Platform, list[ResolvedCopy]]]:
    shown = _display(project, layer.path)

    def one(entry: CopyFile, key: str) -> ResolvedCopy:
        try:  # checked as written, component by component (`_safe_paths`)
            source = inside(layer.base, entry.from_)
        except PathRefused as exc:
            raise ConfigError(
                shown, f"{key}.from", f"{exc}: keep it in the variant folder"
            ) from None
        if not source.exists():
            raise ConfigError(shown, f"{key}.from", f"{_display(project, source)} does not exist")
        return ResolvedCopy(source, entry.to, layer.path)

    common = [
        one(c, f"packages.copyFiles[{i}]") for i, c in enumerate(layer.model.packages.copyFiles)
    ]
    per: dict[Platform, list[ResolvedCopy]] = {}
    for plat, spec in layer.model.packages.platformSpecific.items():
        per[plat] = [
            one(c, f"packages.platformSpecific.{plat.value}.copyFiles[{i}]")
            for i, c in enumerate(spec.copyFiles)
        ]
    return common, per


def declared_names(config: Config) -> set[str]:
    """Canonical names of every dependency the config declares, on any platform."""
    pkgs = config.packages
    deps = [
        *(pkgs.dependencies or []),
        *(d for s in pkgs.platformSpecific.values() for d in s.dependencies),
    ]
    return {canonicalize_name(dependency_name(d)) for d in deps}


def _check_no_deps(project: Path, layers: list[Layer], config: Config) -> None:
    """`noDeps` may only name declared dependencies (shared-config's may name any)."""
    declared = declared_names(config)
    for layer in layers:
        if layer.path.parent == project:
            continue  # the shared config serves many variants
        for i, name in enumerate(layer.model.packages.noDeps):
            if canonicalize_name(name) not in declared:
                raise ConfigError(
                    _display(project, layer.path),
                    f"packages.noDeps[{i}]",
                    f"{name} is not a dependency of this variant (on any platform): "
                    "remove it or add it to packages.dependencies",
                )


def variant_python_version(variant: str, config: Config) -> str | None:
    """`python.version`, else the variant name's leading X.Y.Z."""
    if config.python.version:
        return config.python.version
    match = _VARIANT_RE.fullmatch(variant)
    return match.group("version") if match and match.group("version") else None


def load_variant(project: Path, variant: str) -> VariantConfig:
    """Read, validate and merge every layer of `variant`."""
    folder = variant_folder(project, variant)
    layers: list[Layer] = []
    shared = _pick_file(project, project, SHARED_NAMES)
    if shared is not None:
        layer = load_layer(project, shared, folder)
        if layer.model.extends is not None:
            raise ConfigError(_display(project, shared), "extends", "only variant files may extend")
        layers.append(layer)
    layers.extend(_variant_layers(project, variant))
    merged = merge_layers([layer.data for layer in layers])
    config = _validate(_display(project, layers[-1].path) + " (merged)", merged)

    _check_no_deps(project, layers, config)
    version = variant_python_version(variant, config)
    if version is None:
        raise ConfigError(
            _display(project, layers[-1].path),
            "python.version",
            f"variant {variant!r} does not start with X.Y.Z: set python.version",
        )
    copies: list[ResolvedCopy] = []
    per_platform: dict[Platform, list[ResolvedCopy]] = {}
    for layer in layers:
        common, per = _resolve_copies(project, layer)
        copies.extend(common)
        for plat, items in per.items():
            per_platform.setdefault(plat, []).extend(items)
    artifact = None
    if (folder / PACKAGE_JSON).is_file():
        artifact = read_artifact(folder / PACKAGE_JSON, _display(project, folder / PACKAGE_JSON))
    return VariantConfig(
        project=project,
        variant=variant,
        artifact=artifact,
        python_version=version,
        config=config,
        layers=tuple(layers),
        copy_files=tuple(copies),
        platform_copy_files={p: tuple(v) for p, v in per_platform.items()},
    )


def override_spec(value: str) -> str:
    """The specifier an `overrides` value stands for."""
    return _override_spec(value)
