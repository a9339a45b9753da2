"""The catalogue: what runtimes exist, which one fits this machine, where it is installed."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, NamedTuple

from runenv_catalogue import _inputs
from runenv_catalogue._provision import (
    CatalogueError,
    Part,
    UsageError,
    is_provisioned,
    provision,
)
from runenv_catalogue._shared import platforms
from runenv_catalogue._shared.platforms import PLATFORMS as PLATFORMS
from runenv_catalogue._shared.platforms import platform_for as platform_for
from runenv_catalogue._venv import (
    INSTALLED,
    LAYOUTS,
    WHEELHOUSE,
    building,
    clean_environment,
    installed_tree_venv,
    prepare,
    venv_python,
    wheelhouse_venv,
)

SCHEMA_VERSION = 1
CACHE_ENV = "RUNENV_CATALOGUE_CACHE"
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


def host_platform() -> str:
    """The platform key (`{os}-{arch}`) of the machine this Python runs on."""
    key = platforms.host()
    if key is None:
        raise UsageError(
            f"this machine ({platforms.host_text()}) is not one of the catalogue's "
            f"platforms ({', '.join(PLATFORMS)}): pass --platform"
        )
    return key


def default_cache_dir() -> Path:
    """`$RUNENV_CATALOGUE_CACHE`, else the per-user cache directory of this OS."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "runenv-catalogue" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "runenv-catalogue"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "runenv-catalogue"


def _relative(value: Any, where: str) -> PurePosixPath:
    try:
        return _inputs.relative(value)
    except _inputs.Refused as exc:
        raise CatalogueError(f"catalogue.json: {where}: {exc}") from None


class Entry(NamedTuple):
    """One runtime archive: a variant built for one platform. A named tuple, not a dataclass:
    `dataclasses` loads `inspect` (and `ast`, `dis`, `tokenize`), 7 ms of every `run`."""

    variant: str
    platform: str
    url: str
    sha256: str
    size: int
    python_version: str
    interpreter: PurePosixPath  # inside the runtime
    site_packages: PurePosixPath
    scripts: PurePosixPath
    packages: tuple[tuple[str, str], ...] = ()
    env: Mapping[str, str] = MappingProxyType({})
    parts: tuple[Part, ...] = ()  # the archive in parts (a release asset is < 2 GiB): joined
    layout: str = INSTALLED  # or WHEELHOUSE: a Python plus the wheels blocks install from
    bin_dir: PurePosixPath | None = None  # where `python` is (a wheelhouse runtime has one)
    wheelhouse: PurePosixPath | None = None  # the folder of locked wheels (wheelhouse only)

    @staticmethod
    def _parts(raw: Any, size: int) -> tuple[Part, ...]:
        parts = tuple(
            Part(str(p["url"]), p["size"], str(p["sha256"])) for p in raw.get("parts") or ()
        )
        for p in parts:
            if not _SHA256.fullmatch(p.sha256) or not isinstance(p.size, int) or p.size <= 0:
                raise ValueError("bad part sha256 or size")
        if parts and sum(p.size for p in parts) != size:
            raise ValueError("the parts' sizes do not add up to the archive's")
        return parts

    @staticmethod
    def _layout(raw: Any, where: str) -> dict[str, Any]:
        layout = raw.get("layout", INSTALLED)
        if layout not in LAYOUTS:
            raise CatalogueError(
                f"catalogue.json: {where}: layout {layout!r} is not one of {', '.join(LAYOUTS)}: "
                "upgrade runenv-catalogue"
            )
        found: dict[str, Any] = {"layout": layout}
        for key in ("bin_dir", "wheelhouse"):
            if key in raw:
                found[key] = _relative(raw[key], f"{where}: {key}")
            elif layout == WHEELHOUSE:
                raise CatalogueError(f"catalogue.json: {where}: a wheelhouse runtime needs {key}")
        return found

    @classmethod
    def parse(cls, variant: str, platform: str, raw: Any) -> Entry:
        where = f"{variant} {platform}"
        try:
            sha256, size, url = str(raw["sha256"]), raw["size"], str(raw["url"])
            if not _SHA256.fullmatch(sha256) or not isinstance(size, int) or size < 0:
                raise ValueError("bad sha256 or size")
            scripts_default = platforms.scripts_dir(platform)
            return cls(
                variant=variant,
                platform=platform,
                url=url,
                sha256=sha256,
                size=size,
                python_version=str(raw["python_version"]),
                interpreter=_relative(raw["interpreter"], f"{where}: interpreter"),
                site_packages=_relative(raw["site_packages"], f"{where}: site_packages"),
                scripts=_relative(raw.get("scripts", scripts_default), f"{where}: scripts"),
                packages=tuple((str(p["name"]), str(p["version"])) for p in raw["packages"]),
                env={str(k): str(v) for k, v in raw.get("env", {}).items()},
                parts=cls._parts(raw, size),
                **cls._layout(raw, where),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogueError(f"catalogue.json: {where}: malformed entry ({exc})") from None

    def root(self, cache_dir: Path | None = None) -> Path:
        """Where this runtime is (or would be) installed: named by its archive's sha256."""
        return (cache_dir or default_cache_dir()) / self.sha256[:16]

    def interpreter_path(self, cache_dir: Path | None = None) -> Path:
        return self.root(cache_dir).joinpath(*self.interpreter.parts)

    def python_path(self, cache_dir: Path | None = None) -> Path:
        """The `python` a block venv is made with: `<bin_dir>/python` (`python.exe` on
        Windows) when the runtime has a bin_dir, else the interpreter."""
        if self.bin_dir is None:
            return self.interpreter_path(cache_dir)
        name = "python.exe" if self.platform.startswith("windows") else "python"
        return self.root(cache_dir).joinpath(*self.bin_dir.parts, name)

    def is_installed(self, cache_dir: Path | None = None) -> bool:
        return is_provisioned(self.root(cache_dir), self.sha256)


class Catalogue:
    """The parsed `catalogue.json`: variant -> platform -> Entry."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping) or data.get("schema_version") != SCHEMA_VERSION:
            found = data.get("schema_version") if isinstance(data, Mapping) else None
            raise CatalogueError(
                f"catalogue.json: schema version {found!r}, this package reads "
                f"{SCHEMA_VERSION}: upgrade runenv-catalogue"
            )
        self.version = str(data.get("version", "0"))
        variants = data.get("variants", {})
        if not isinstance(variants, Mapping):
            raise CatalogueError("catalogue.json: variants: not a table")
        for v in variants:
            try:
                _inputs.plain_name(v)
            except _inputs.Refused as exc:
                raise CatalogueError(f"catalogue.json: variants: {exc}") from None
        self._entries: dict[str, dict[str, Entry]] = {
            str(v): {str(p): Entry.parse(str(v), str(p), raw) for p, raw in plats.items()}
            for v, plats in variants.items()
        }

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """The catalogue in `path`, or the one this package ships."""
        try:
            if path is not None:
                data = _inputs.read_json(path)
            else:
                from importlib import resources  # only for the catalogue this package ships

                text = (
                    resources.files("runenv_catalogue")
                    .joinpath("catalogue.json")
                    .read_text(encoding="utf-8")
                )
                data = _inputs.loads_json(text)
        except OSError as exc:
            raise CatalogueError(f"catalogue.json: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise CatalogueError(f"catalogue.json: not JSON ({exc})") from None
        return cls(data)

    def variants(self) -> list[str]:
        """Every variant, sorted."""
        return sorted(self._entries)

    def platforms(self, variant: str) -> list[str]:
        """The platforms `variant` was built for, in the catalogue's platform order."""
        plats = self._variant(variant)
        return [p for p in PLATFORMS if p in plats] + sorted(set(plats) - set(PLATFORMS))

    def _variant(self, variant: str) -> dict[str, Entry]:
        try:
            return self._entries[variant]
        except KeyError:
            known = ", ".join(self.variants()) or "none"
            raise UsageError(f"unknown variant {variant!r} (this catalogue has: {known})") from None

    def entry(self, variant: str, platform: str | None = None) -> Entry:
        """The entry of `variant` for `platform` (None: the machine this runs on)."""
        plats = self._variant(variant)
        key = platform or host_platform()
        if key not in plats:
            if key not in PLATFORMS:
                raise UsageError(f"unknown platform {key!r}: use one of {', '.join(PLATFORMS)}")
            have = ", ".join(self.platforms(variant))
            raise UsageError(f"variant {variant!r} has no runtime for {key} (it has: {have})")
        return plats[key]

    def install(
        self, variant: str, platform: str | None = None, *, cache_dir: Path | None = None
    ) -> Path:
        """Download, verify and unpack `variant` once; return its interpreter's path.

        A runtime already installed in the cache is returned at once. Another platform's
        runtime can be installed (e.g. to ship it) but not run here.
        """
        e = self.entry(variant, platform)
        provision(e.url, e.sha256, e.size, e.root(cache_dir), e.interpreter, parts=e.parts)
        return e.interpreter_path(cache_dir)

    def which(
        self, variant: str, platform: str | None = None, *, cache_dir: Path | None = None
    ) -> Path | None:
        """The interpreter of `variant` if it is installed, else None."""
        e = self.entry(variant, platform)
        return e.interpreter_path(cache_dir) if e.is_installed(cache_dir) else None

    def environment(
        self,
        variant: str,
        *,
        cache_dir: Path | None = None,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The environment to run `variant`'s interpreter with, on this machine.

        `base` (default `os.environ`) plus the variant's runtime variables, with the runtime's
        scripts folder and interpreter folder first on PATH; PYTHONHOME is dropped, since it
        would point the runtime at another standard library.
        """
        e = self.entry(variant)
        root = e.root(cache_dir)
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONHOME", None)
        env.update(e.env)
        first: list[str] = []
        for folder in (root.joinpath(*e.scripts.parts), e.interpreter_path(cache_dir).parent):
            if str(folder) not in first:
                first.append(str(folder))
        path_key = next((k for k in env if k.upper() == "PATH"), "PATH")
        rest = env.pop(path_key, "")
        env[path_key] = os.pathsep.join([*first, rest] if rest else first)
        return env

    def run(self, variant: str, args: Sequence[str], *, cache_dir: Path | None = None) -> int:
        """Install `variant` if needed, run its interpreter with `args`; its exit code."""
        python = self.install(variant, cache_dir=cache_dir)
        env = self.environment(variant, cache_dir=cache_dir)
        import subprocess  # an install alone runs nothing

        try:
            return subprocess.call([str(python), *args], env=env)
        except OSError as exc:
            raise CatalogueError(f"cannot run {python}: {exc.strerror}") from None

    def venv(
        self,
        variant: str,
        dest: Path,
        requirements: Path,
        *,
        cache_dir: Path | None = None,
    ) -> Path:
        """Make the block venv `dest` on `variant`'s runtime (installed first) with the
        requirements file `requirements`, offline; return the venv's interpreter.

        A wheelhouse runtime: the venv gets pip and installs the file from the runtime's
        wheels (`--no-index`, the machine's pip configuration shut out). An installed tree:
        the venv sees the runtime's packages and installs nothing; a requirement the runtime
        does not meet raises RequirementsNotMet naming it. DEST must be new or empty; a
        failure leaves nothing of it behind.
        """
        # The PEP 440/508 code loads here, not on import: an install (every consumer's first
        # call) does not pay for it.
        from runenv_catalogue._requirements import read_requirements

        e = self.entry(variant)
        dest, requirements = prepare(dest, requirements)
        wanted = read_requirements(requirements) if e.layout != WHEELHOUSE else []
        self.install(variant, cache_dir=cache_dir)  # after the usage checks: no download first
        root = e.root(cache_dir)
        env = clean_environment(e.env)
        shown = f"{e.variant} ({e.platform})"
        if e.layout == WHEELHOUSE and e.bin_dir is not None and e.wheelhouse is not None:
            with building(dest):
                wheelhouse_venv(root, e.bin_dir, e.wheelhouse, env, dest, requirements, shown)
        else:  # an installed tree: its own interpreter
            scripts = root.joinpath(*e.scripts.parts)
            python = e.interpreter_path(cache_dir)
            installed_tree_venv(python, scripts, env, dest, requirements, wanted, shown)
        return venv_python(dest)
