"""Where a project's variants live: the project folder, each variant's folder (`versions/<v>/`,
or `python-<v>/` in a reference checkout), their names, and which config file a folder holds.
"""

from __future__ import annotations

import re
from pathlib import Path

from runenv.errors import ConfigError, UsageError

SHARED_NAMES = ("shared-config.toml", "shared-config.json")
VARIANT_NAMES = ("config.toml", "config.json")
VERSIONS_DIR = "versions"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*", re.ASCII)  # a variant folder's name

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
        raise UsageError(f"{display(project, folder)} is a link: a variant is a plain folder")
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


def display(project: Path, path: Path) -> str:
    """`path` as messages show it: relative to the project when inside it."""
    try:
        return path.relative_to(project).as_posix()
    except ValueError:
        return str(path)


def pick_file(project: Path, folder: Path, names: tuple[str, ...]) -> Path | None:
    """The one of `names` (a TOML file, or its JSON twin) in `folder`, if any; ConfigError when
    both are there."""
    # Any entry but a folder counts: a FIFO or a link to nowhere is refused by the read, with
    # its name, rather than skipped as if absent.
    found = [folder / n for n in names if _present(folder / n)]
    if len(found) > 1:
        shown = " and ".join(display(project, p) for p in found)
        raise ConfigError(shown, None, "both exist: keep one of the two")
    return found[0] if found else None


def _present(path: Path) -> bool:
    return (path.exists() or path.is_symlink()) and not path.is_dir()
