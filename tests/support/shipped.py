"""Copies of the repository's shipped variants, to plan CI matrices from an edited config.

    root = copy_shipped(tmp_path, "3.12.10", extra='[packages.forceSource.numpy]\n...')

copies `versions/3.12.10` (config and committed locks) and the shared config into `tmp_path`,
appends `extra` to the copy's config.toml and returns the project root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_shipped(root: Path, variant: str, *, extra: str = "", name: str | None = None) -> Path:
    """A project at `root` holding the shipped `variant` (as `name`, by default the same) and
    the shared config, `extra` TOML appended to the variant's config; `root`."""
    folder = root / "versions" / (name or variant)
    shutil.copytree(REPO / "versions" / variant, folder)
    shutil.copy(REPO / "shared-config.toml", root / "shared-config.toml")
    if extra:
        with (folder / "config.toml").open("a") as fh:
            fh.write("\n" + extra)
    return root


def force_source(package: str, reasons: dict[str, str]) -> str:
    """The `[packages.forceSource.<package>]` TOML forcing it to source on each platform named."""
    return f"[packages.forceSource.{package}]\n" + "".join(
        f'{platform} = "{reason}"\n' for platform, reason in reasons.items()
    )


# numpy forced to source for windows-x64 and macosx-x64: two targets with wheels jobs.
TWO_SOURCE_BUILDS = force_source("numpy", {"windows-x64": "a", "macosx-x64": "b"})
