"""The platform keys and which one a machine is: what runenv builds for and the catalogue
finds for the machine it runs on."""

from __future__ import annotations

import os
import sys

PLATFORMS = ("linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64")
"""Every platform key, `{os}-{arch}`, in the order runenv and the catalogue list them."""
_OS = {"linux": "linux", "darwin": "macosx", "win32": "windows"}
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}


def platform_for(sys_platform: str, machine: str) -> str | None:
    """The platform key of a machine with this `sys.platform` and `platform.machine()`, if
    any."""
    key = f"{_OS.get(sys_platform)}-{_ARCH.get(machine.lower())}"
    return key if key in PLATFORMS else None


def machine() -> str:
    """`platform.machine()`: `os.uname()`'s, where there is one, without loading `platform`
    (a millisecond of every `runenv_catalogue run`); Windows' from `platform`."""
    if hasattr(os, "uname"):
        return os.uname().machine
    import platform

    return platform.machine()


def host() -> str | None:
    """The platform key of the machine this Python runs on; None when it is none of them."""
    return platform_for(sys.platform, machine())


def host_text() -> str:
    """This machine as `sys.platform` and `platform.machine()` name it, for a message."""
    return f"{sys.platform}, {machine()}"


def is_windows(key: str) -> bool:
    return key.startswith("windows-")


def scripts_dir(key: str) -> str:
    """The folder of a runtime's console scripts, relative to its root."""
    return "Scripts" if is_windows(key) else "bin"
