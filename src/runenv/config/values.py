"""The checks of the config's values: each raises ValueError with the message the user sees
(pydantic puts it after the file and key), and the annotated types the schema is written in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import AfterValidator

from runenv.config.dependency import PACKAGE_RE, is_git_dependency, parse_git

# Identifiers are checked whole (`fullmatch`) with ASCII classes: `$` would take a trailing
# newline and `\d` any script's digits.
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+", re.ASCII)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    """The check that a value matches `pattern` whole; else ValueError `'<value>' <what>`."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} {what}")
        return value

    return check


_python_version = _matching(_VERSION_RE, "is not a Python version of the form X.Y.Z")
_sha256 = _matching(_SHA256_RE, "is not a sha256 (64 lowercase hex digits)")
_package_name = _matching(PACKAGE_RE, "is not a package name")


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


def _config_setting(value: str) -> str:
    """One PEP 517 config setting as the reference writes it: `key=value`."""
    key, eq, _ = value.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"{value!r} is not a config setting of the form key=value")
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


def _override(value: str) -> str:
    """An override is a version (`2.1.3`, meaning `==2.1.3`) or a specifier (`>=2,<3`)."""
    try:
        SpecifierSet(override_spec(value))
    except InvalidSpecifier:
        raise ValueError(f"{value!r} is neither a version nor a version specifier") from None
    return value


def override_spec(value: str) -> str:
    """The specifier an `overrides` value stands for."""
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
