"""The five target platforms: their PBS triple, uv platform, wheel tags and tree layout.

Everything that differs between operating systems lives here, so that the rest of runenv asks
the platform model instead of testing `sys.platform`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from packaging import tags

from runenv._shared import platforms
from runenv.errors import UsageError


class Platform(StrEnum):
    """A platform key, `{os}-{arch}`, as the reference README names them: the keys of
    `runenv._shared.platforms.PLATFORMS` (the catalogue's), in its order (a test holds them
    equal: an enum's members must be written out for the type checker)."""

    LINUX_X64 = "linux-x64"
    LINUX_AARCH64 = "linux-aarch64"
    MACOSX_X64 = "macosx-x64"
    MACOSX_AARCH64 = "macosx-aarch64"
    WINDOWS_X64 = "windows-x64"

    @property
    def info(self) -> PlatformInfo:
        return _INFO[self]

    @classmethod
    def parse(cls, value: str) -> Platform:
        """The platform for a key; `host` means the machine runenv runs on."""
        if value == "host":
            return host_platform()
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise UsageError(f"unknown platform {value!r}: use one of {known}, or host") from None


ALL_PLATFORMS: tuple[Platform, ...] = tuple(Platform)

# Oldest glibc and macOS a runtime must run on, unless a variant says otherwise (`[check]`).
# PBS itself runs on glibc 2.17, but current wheels (torch 2.7 among them) are manylinux_2_28
# only, and glibc 2.28 (Debian 10, RHEL 8, Ubuntu 18.10) is the floor most projects now ship.
# macOS: 10.13 (x86_64) and 12.0 (arm64), the floors numpy 2.x and scipy 1.15 wheels are built
# for (with PBS's own 10.9 / 11.0 the shipped variants would find no wheel for scipy).
DEFAULT_GLIBC = (2, 28)
DEFAULT_MACOS = {Platform.MACOSX_X64: (10, 13), Platform.MACOSX_AARCH64: (12, 0)}


@dataclass(frozen=True)
class PlatformInfo:
    """What runenv needs to know about one platform."""

    key: str
    os: str  # "linux" | "macos" | "windows", as pbs-installer spells it
    arch: str  # "x86_64" | "aarch64", as pbs-installer spells it
    pbs_triple: str
    uv_target: str  # uv's --python-platform value for macOS and Windows
    # A GitHub-hosted runner label that is native for this platform. GitHub retired macos-13
    # (Dec 2025) and macos-14 (Nov 2026): macos-15-intel is the x86_64 macOS image (kept until
    # macOS 15 goes, 2027), macos-15 the arm64 one.
    github_runner: str

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"

    def uv_platform(self, glibc: tuple[int, int] = DEFAULT_GLIBC) -> str:
        """uv's `--python-platform` here (on Linux: the manylinux floor to resolve for)."""
        if self.os == "linux":
            return f"{self.arch}-manylinux_{glibc[0]}_{glibc[1]}"
        return self.uv_target

    def interpreter(self, py: str) -> PurePosixPath:
        """The interpreter's path inside a runtime tree, for Python `py` ("X.Y" or "X.Y.Z")."""
        return PurePosixPath("python.exe") if self.is_windows else PurePosixPath("bin/python3")

    def site_packages(self, py: str) -> PurePosixPath:
        if self.is_windows:
            return PurePosixPath("Lib/site-packages")
        return PurePosixPath(f"lib/python{_xy(py)}/site-packages")

    def scripts_dir(self) -> PurePosixPath:
        return PurePosixPath(platforms.scripts_dir(self.key))

    def include_dir(self, py: str) -> PurePosixPath:
        return PurePosixPath("Include" if self.is_windows else f"include/python{_xy(py)}")

    def scheme(self, py: str) -> dict[str, str]:
        """The install scheme (sysconfig names) relative to the runtime root."""
        site = str(self.site_packages(py))
        return {
            "purelib": site,
            "platlib": site,
            "headers": str(self.include_dir(py)),
            "scripts": str(self.scripts_dir()),
            "data": ".",
        }

    def platform_tags(
        self, glibc: tuple[int, int] = DEFAULT_GLIBC, macos: tuple[int, int] | None = None
    ) -> list[str]:
        """Platform tags of wheels that run here, best first (no bare `linux_*`: not portable)."""
        if self.os == "linux":
            # As packaging does: x86_64 goes back to glibc 2.5; aarch64 begins at 2.17.
            # Each PEP 600 tag is followed by its legacy alias (manylinux2014/2010/1).
            oldest = 5 if self.arch == "x86_64" else 17
            result = []
            for minor in range(glibc[1], oldest - 1, -1):
                result.append(f"manylinux_2_{minor}_{self.arch}")
                if minor in _LEGACY_MANYLINUX:
                    result.append(f"{_LEGACY_MANYLINUX[minor]}_{self.arch}")
            return result
        if self.os == "macos":
            arch = "arm64" if self.arch == "aarch64" else "x86_64"
            floor = macos or DEFAULT_MACOS[Platform(self.key)]
            return list(tags.mac_platforms(floor, arch))
        return ["win_amd64"]

    def wheel_tags(
        self,
        py: str,
        glibc: tuple[int, int] = DEFAULT_GLIBC,
        macos: tuple[int, int] | None = None,
    ) -> list[tags.Tag]:
        """Every wheel tag this platform accepts for CPython `py`, best first."""
        major, minor = (int(p) for p in _xy(py).split("."))
        plats = self.platform_tags(glibc, macos)
        return [
            *tags.cpython_tags((major, minor), platforms=plats),
            *tags.compatible_tags((major, minor), f"cp{major}{minor}", plats),
        ]


def _xy(py: str) -> str:
    return ".".join(py.split(".")[:2])


_INFO: dict[Platform, PlatformInfo] = {
    Platform.LINUX_X64: PlatformInfo(
        "linux-x64",
        "linux",
        "x86_64",
        "x86_64-unknown-linux-gnu",
        "x86_64-unknown-linux-gnu",
        "ubuntu-24.04",
    ),
    Platform.LINUX_AARCH64: PlatformInfo(
        "linux-aarch64",
        "linux",
        "aarch64",
        "aarch64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "ubuntu-24.04-arm",
    ),
    Platform.MACOSX_X64: PlatformInfo(
        "macosx-x64",
        "macos",
        "x86_64",
        "x86_64-apple-darwin",
        "x86_64-apple-darwin",
        "macos-15-intel",
    ),
    Platform.MACOSX_AARCH64: PlatformInfo(
        "macosx-aarch64",
        "macos",
        "aarch64",
        "aarch64-apple-darwin",
        "aarch64-apple-darwin",
        "macos-15",
    ),
    Platform.WINDOWS_X64: PlatformInfo(
        "windows-x64",
        "windows",
        "x86_64",
        "x86_64-pc-windows-msvc",
        "x86_64-pc-windows-msvc",
        "windows-2022",
    ),
}

_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def platform_for(sys_platform: str, machine: str) -> Platform | None:
    """The platform of a machine with this `sys.platform` and `platform.machine()`, if any
    (the catalogue's mapping: `runenv._shared.platforms`)."""
    key = platforms.platform_for(sys_platform, machine)
    return None if key is None else Platform(key)


def host_platform() -> Platform:
    """The platform key of the machine runenv runs on."""
    key = platforms.host()
    if key is None:
        raise UsageError(f"this machine ({platforms.host_text()}) is not one of runenv's platforms")
    return Platform(key)


def parse_platforms(values: list[str] | None, allowed: tuple[Platform, ...]) -> list[Platform]:
    """Platforms from `--platform` values (`KEY`, `host`, `all`); none given means host."""
    if not values:
        return [host_platform()]
    result: list[Platform] = []
    for value in values:
        chosen = list(allowed) if value == "all" else [Platform.parse(value)]
        result.extend(p for p in chosen if p not in result)
    return result
