"""A target's layout: where each install scheme lives under a runtime's root, and how its
scripts find the interpreter (what both the wheels' grouping and the destination read)."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runenv.install.scripts import script_python
from runenv.platforms import Platform

if TYPE_CHECKING:
    from installer.scripts import LauncherKind

_LAUNCHER_KIND: dict[str, LauncherKind] = {"x86_64": "win-amd64", "aarch64": "win-arm64"}


@dataclass(frozen=True)
class Layout:
    """Where each scheme lives under `root`, and how scripts find the interpreter."""

    root: Path
    schemes: dict[str, str]  # scheme -> absolute path
    site_packages: Path
    windows: bool
    launcher_kind: LauncherKind
    script_python: (
        str  # the interpreter, as a script names it (see `install.scripts.script_python`)
    )

    @classmethod
    def make(cls, root: Path, platform: Platform, python_version: str) -> Layout:
        info = platform.info
        schemes = {k: os.path.normpath(root / v) for k, v in info.scheme(python_version).items()}
        rel = posixpath.relpath(str(info.interpreter(python_version)), str(info.scripts_dir()))
        kind: LauncherKind = _LAUNCHER_KIND[info.arch] if info.is_windows else "posix"
        return cls(
            root,
            schemes,
            root / info.site_packages(python_version),
            info.is_windows,
            kind,
            script_python(rel, info.is_windows),
        )
