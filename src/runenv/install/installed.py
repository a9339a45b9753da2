"""Distributions already in a runtime tree, found by their `.dist-info`: list, read, remove.

A runtime starts with what python-build-standalone ships (pip); a distribution of the same name
is removed before a wheel is installed, as pip would, so that site-packages never holds two
versions of one package.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from installer.records import parse_record_file
from packaging.utils import canonicalize_name as canonical


def dist_infos(site_packages: Path) -> Iterator[tuple[str, Path]]:
    """(canonical name, `.dist-info` directory) of each distribution in `site_packages`."""
    if not site_packages.is_dir():
        return
    for info in sorted(site_packages.glob("*.dist-info")):
        yield str(canonical(info.name[: -len(".dist-info")].rsplit("-", 1)[0])), info


def record_paths(info: Path) -> list[str]:
    """The paths the distribution's RECORD lists, relative to site-packages (none without one)."""
    record = info / "RECORD"
    if not record.is_file():
        return []
    return [row[0] for row in parse_record_file(record.read_text("utf-8").splitlines())]


def remove_installed(site_packages: Path, name: str, root: Path) -> None:
    """Uninstall the distribution `name` if the tree already has it: its files, its dist-info."""
    for dist, info in dist_infos(site_packages):
        if dist != name:
            continue
        dirs: set[Path] = set()
        for path in record_paths(info):
            target = Path(os.path.normpath(site_packages / path))
            if not target.is_relative_to(root) or target.is_relative_to(info):
                continue
            if target.is_file() or target.is_symlink():
                target.unlink()
                dirs.add(target.parent)
                cache = target.parent / "__pycache__"
                if target.suffix == ".py" and cache.is_dir():
                    for pyc in cache.glob(target.stem + ".*.pyc"):
                        pyc.unlink()
        shutil.rmtree(info)
        for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
            _prune(directory, site_packages)


def _prune(directory: Path, stop: Path) -> None:
    """Remove `directory` and its parents while they are empty (or hold only `__pycache__`)."""
    while directory != stop and directory.is_relative_to(stop):
        try:
            children = list(directory.iterdir())
        except FileNotFoundError:
            directory = directory.parent
            continue
        if any(c.name != "__pycache__" or not stat.S_ISDIR(c.lstat().st_mode) for c in children):
            return
        if children:
            shutil.rmtree(children[0])
        directory.rmdir()
        directory = directory.parent
