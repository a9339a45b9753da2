"""The runtimes that runenv built, for the machine this runs on.

    import runenv_catalogue as rc
    python = rc.install("3.12.10")          # download, verify, unpack once; the interpreter
    rc.run("3.12.10", ["-c", "print(1)"])   # with the variant's runtime environment
    rc.venv("3.12.10", Path("venv"), Path("requirements.txt"))  # a block venv, offline

The module-level functions use the catalogue this package ships (`catalogue.json`);
`Catalogue.load(path)` reads another one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from runenv_catalogue._catalogue import (
    CACHE_ENV,
    PLATFORMS,
    Catalogue,
    Entry,
    default_cache_dir,
    host_platform,
)
from runenv_catalogue._errors import RequirementsNotMet, VenvError
from runenv_catalogue._provision import (
    CatalogueError,
    ChecksumMismatch,
    DownloadError,
    Part,
    UnsafeArchiveError,
    UsageError,
)

__all__ = [
    "CACHE_ENV",
    "PLATFORMS",
    "Catalogue",
    "CatalogueError",
    "ChecksumMismatch",
    "DownloadError",
    "Entry",
    "Part",
    "RequirementsNotMet",
    "UnsafeArchiveError",
    "UsageError",
    "VenvError",
    "catalogue",
    "default_cache_dir",
    "entry",
    "environment",
    "host_platform",
    "install",
    "platforms",
    "run",
    "variants",
    "venv",
    "which",
]


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue this package ships."""
    return Catalogue.load()


def variants() -> list[str]:
    """Every variant in the catalogue, sorted."""
    return catalogue().variants()


def platforms(variant: str) -> list[str]:
    """The platform keys `variant` was built for."""
    return catalogue().platforms(variant)


def entry(variant: str, platform: str | None = None) -> Entry:
    """The archive of `variant` for `platform` (None: this machine)."""
    return catalogue().entry(variant, platform)


def install(variant: str, platform: str | None = None, *, cache_dir: Path | None = None) -> Path:
    """Install `variant` (once) and return its interpreter's path."""
    return catalogue().install(variant, platform, cache_dir=cache_dir)


def which(
    variant: str, platform: str | None = None, *, cache_dir: Path | None = None
) -> Path | None:
    """The interpreter of `variant` if installed, else None."""
    return catalogue().which(variant, platform, cache_dir=cache_dir)


def environment(variant: str, *, cache_dir: Path | None = None) -> dict[str, str]:
    """os.environ + the variant's runtime variables + its scripts folder first on PATH."""
    return catalogue().environment(variant, cache_dir=cache_dir)


def run(variant: str, args: Sequence[str], *, cache_dir: Path | None = None) -> int:
    """Run `variant`'s interpreter with `args` (installing it first); its exit code."""
    return catalogue().run(variant, args, cache_dir=cache_dir)


def venv(variant: str, dest: Path, requirements: Path, *, cache_dir: Path | None = None) -> Path:
    """Make the block venv `dest` on `variant`'s runtime (installing it first) with the
    requirements file `requirements`, offline; the venv's interpreter (`Catalogue.venv`)."""
    return catalogue().venv(variant, dest, requirements, cache_dir=cache_dir)
