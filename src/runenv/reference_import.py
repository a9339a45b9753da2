"""`runenv import PATH`: bring a checkout of the reference system into this project's layout.

The reference keeps `shared-config.json` at its root and one `python-<variant>/config.json` per
variant, beside the files its `copyFiles` entries ship. runenv reads that JSON format as it is,
so the configs are copied byte for byte (`shared-config.json` to the project root,
`python-<variant>/config.json` to `versions/<variant>/config.json`): a user can diff them against
upstream and import again, and nothing is lost in a conversion. The `copyFiles` sources (and
only those; `package.json` and build leftovers stay behind) are copied to the same relative
paths.

Everything is written to a staging folder inside the project and loaded there with runenv's own
validation first; only then are the folders moved into place, so a checkout that does not load
leaves the project untouched.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from runenv import _bounded
from runenv.config import SHARED_NAMES, VERSIONS_DIR, check_variant_name, load_variant
from runenv.errors import ConfigError, UsageError

SHARED_JSON = "shared-config.json"
VARIANT_JSON = "config.json"
_FOLDER_RE = re.compile(r"python-(?P<variant>\d+\.\d+\.\d+.*)", re.ASCII | re.DOTALL)


@dataclass(frozen=True)
class Imported:
    """One variant brought in: where from, where to, and how many payload files came along."""

    source: Path
    variant: str
    target: Path
    copied: tuple[str, ...]  # the copyFiles sources copied, relative to the variant folder
    files: int


@dataclass(frozen=True)
class ImportResult:
    shared: Path | None  # the shared config written, if the checkout has one
    variants: tuple[Imported, ...]
    replaced: tuple[Path, ...]  # files or folders that --force replaced


def _variant_folders(checkout: Path) -> list[tuple[str, Path]]:
    found = []
    for folder in sorted(checkout.iterdir()):
        match = _FOLDER_RE.fullmatch(folder.name)
        if match and folder.is_dir() and (folder / VARIANT_JSON).is_file():
            found.append((check_variant_name(match.group("variant")), folder))
    return found


def _copy_sources(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, from) of every copyFiles entry of one config file's raw data."""
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return
    for i, entry in enumerate(packages.get("copyFiles") or []):
        if isinstance(entry, dict) and isinstance(entry.get("from"), str):
            yield f"packages.copyFiles[{i}].from", entry["from"]
    specific = packages.get("platformSpecific")
    for plat, spec in specific.items() if isinstance(specific, dict) else ():
        for i, entry in enumerate((spec or {}).get("copyFiles") or []):
            if isinstance(entry, dict) and isinstance(entry.get("from"), str):
                yield f"packages.platformSpecific.{plat}.copyFiles[{i}].from", entry["from"]


def _read_json(path: Path, shown: str) -> dict[str, Any]:
    try:
        data = _bounded.loads_json(_bounded.read_text(path))
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read: {exc.strerror or exc}") from None
    except _bounded.InputError as exc:
        raise ConfigError(shown, None, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            shown, None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(shown, None, "the top level must be an object")
    return data


def _stage_variant(source: Path, variant: str, staged: Path, checkout: Path) -> Imported:
    shown = source.relative_to(checkout).as_posix() + "/" + VARIANT_JSON
    data = _read_json(source / VARIANT_JSON, shown)
    target = staged / VERSIONS_DIR / variant
    target.mkdir(parents=True)
    shutil.copyfile(source / VARIANT_JSON, target / VARIANT_JSON)
    copied: list[str] = []
    files = 0
    for key, rel in _copy_sources(data):
        path = PurePosixPath(rel.replace("\\", "/"))
        origin = (source / path).resolve()
        if not origin.is_relative_to(source.resolve()):
            raise ConfigError(shown, key, f"{rel!r} leaves the variant folder")
        if not origin.exists():
            raise ConfigError(
                shown, key, f"{source.name}/{rel} is not in the checkout: add it, then import again"
            )
        dest = target / path
        if dest.exists():  # two entries naming one source
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, dest, symlinks=True)
            files += sum(1 for p in dest.rglob("*") if not p.is_dir())
        else:
            shutil.copy2(origin, dest)
            files += 1
        copied.append(path.as_posix().rstrip("/"))
    return Imported(source, variant, target, tuple(copied), files)


def import_reference(checkout: Path, project: Path, *, force: bool = False) -> ImportResult:
    """Import the reference checkout at `checkout` into `project` (see the module docstring).

    UsageError when `checkout` is not such a checkout, or when a variant (or the shared config)
    exists already and `force` is not set; ConfigError (naming the checkout's file and key) when
    an imported config does not load.
    """
    checkout = checkout.resolve()
    if not checkout.is_dir():
        raise UsageError(f"{checkout}: no such folder (give a checkout of the reference system)")
    variants = _variant_folders(checkout)
    if not variants:
        raise UsageError(
            f"{checkout}: no python-<version>[-<flavour>]/config.json folders: "
            "not a checkout of the reference system"
        )
    shared_src = checkout / SHARED_JSON
    project.mkdir(parents=True, exist_ok=True)
    conflicts = [
        project / VERSIONS_DIR / v for v, _ in variants if (project / VERSIONS_DIR / v).exists()
    ]
    if shared_src.is_file():
        conflicts += [project / n for n in SHARED_NAMES if (project / n).exists()]
    if conflicts and not force:
        shown = ", ".join(_rel(project, p) for p in conflicts)
        raise UsageError(f"{shown} already exist: pass --force to replace them with the import")

    (project / VERSIONS_DIR).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".runenv-import-", dir=project) as tmp:
        staged = Path(tmp)
        (staged / VERSIONS_DIR).mkdir()
        if shared_src.is_file():
            _read_json(shared_src, SHARED_JSON)
            shutil.copyfile(shared_src, staged / SHARED_JSON)
        else:  # the variants will merge over the project's own shared config: check with it
            for name in SHARED_NAMES:
                if (project / name).is_file():
                    shutil.copyfile(project / name, staged / name)
        imported = [_stage_variant(src, v, staged, checkout) for v, src in variants]
        for item in imported:
            try:
                load_variant(staged, item.variant)
            except ConfigError as exc:  # name the checkout's file, not the staging copy
                raise ConfigError(_origin(exc.path), exc.key, exc.message) from None
        # Everything loads: move it into place.
        for path in conflicts:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        shared = None
        if shared_src.is_file():
            shared = project / SHARED_JSON
            (staged / SHARED_JSON).replace(shared)
        final = []
        for item in imported:
            target = project / VERSIONS_DIR / item.variant
            item.target.rename(target)
            final.append(Imported(item.source, item.variant, target, item.copied, item.files))
    return ImportResult(shared, tuple(final), tuple(conflicts))


def _rel(project: Path, path: Path) -> str:
    try:
        return path.relative_to(project).as_posix()
    except ValueError:
        return str(path)


def _origin(shown: str) -> str:
    """The checkout's name for a staged file (`versions/3.12.10/config.json` ->
    `python-3.12.10/config.json`); the shared config keeps its name."""
    prefix = f"{VERSIONS_DIR}/"
    return "python-" + shown[len(prefix) :] if shown.startswith(prefix) else shown
