"""The config's schema: one pydantic model per table, the same for one file and for the
merge of several (keys and their meaning: README.md, docs/architecture.md).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from runenv.config.values import (
    BuildRequirement,
    ConfigSetting,
    Glibc,
    HttpUrl,
    Location,
    OverrideStr,
    PackageName,
    PythonVersion,
    RelativePath,
    RequirementStr,
    Sha256,
)
from runenv.platforms import Platform

SITE_PACKAGES_PLACEHOLDERS = ("{site-packages}", "<site-packages>")
"""Stand for the runtime's site-packages folder in a `copyFiles` entry's `to`."""


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
