"""`runenv import PATH`: bring a checkout of the reference system into this project's layout.

The reference keeps `shared-config.json` at its root and one `python-<variant>/config.json` per
variant, beside the files its `copyFiles` entries ship. runenv reads that JSON format as it is,
so the configs are copied byte for byte (`shared-config.json` to the project root,
`python-<variant>/config.json` to `versions/<variant>/config.json`): a user can diff them against
upstream and import again, and nothing is lost in a conversion. The `copyFiles` sources (and
only those, and the variant's `package.json`, whose runtime artifact sets `binDir` and
`envVars`; build leftovers stay behind) are copied to the same relative paths.

Everything is written to a staging folder inside the project and loaded there with runenv's own
validation first; only then are the folders moved into place, so a checkout that does not load
leaves the project untouched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from runenv._safe_paths import PathRefused, inside, parts_of
from runenv.config.load import load_variant, read_config_file
from runenv.config.package_json import PACKAGE_JSON
from runenv.config.project import SHARED_NAMES, VERSIONS_DIR, check_variant_name
from runenv.errors import ConfigError, OSFailure, UsageError

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
    """(variant, real folder) of every `python-<variant>/config.json` of the checkout; a folder
    or config that is a link leading out of the checkout is refused (`_safe_paths.inside`)."""
    found = []
    for entry in sorted(checkout.iterdir()):
        match = _FOLDER_RE.fullmatch(entry.name)
        if not match:
            continue
        folder = _in_checkout(checkout, entry.name)
        if folder.is_dir() and _in_checkout(checkout, f"{entry.name}/{VARIANT_JSON}").is_file():
            found.append((check_variant_name(match.group("variant")), entry))
    return found


def _in_checkout(checkout: Path, rel: str) -> Path:
    """The real path of `rel` in the checkout; UsageError when a link leads out of it."""
    try:
        return inside(checkout, rel)
    except PathRefused as exc:
        raise UsageError(f"{checkout}: {exc}: import a checkout that holds its own files") from None


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


def _stage_variant(entry: Path, variant: str, staged: Path, checkout: Path) -> Imported:
    shown = f"{entry.name}/{VARIANT_JSON}"
    source = _in_checkout(checkout, entry.name)
    data = read_config_file(source / VARIANT_JSON, shown)
    target = staged / VERSIONS_DIR / variant
    target.mkdir(parents=True)
    shutil.copyfile(inside(source, VARIANT_JSON), target / VARIANT_JSON)
    if (source / PACKAGE_JSON).is_file():  # its runtime artifact: binDir, envVars (`package_json`)
        shutil.copyfile(inside(source, PACKAGE_JSON), target / PACKAGE_JSON)
    copied: list[str] = []
    files = 0
    for key, rel in _copy_sources(data):
        # Checked as written, and read from where the check walked: never the text again.
        try:
            origin = inside(source, rel)
        except PathRefused as exc:
            raise ConfigError(shown, key, f"{exc}: keep it inside the variant folder") from None
        if not origin.exists():
            raise ConfigError(
                shown, key, f"{entry.name}/{rel} is not in the checkout: add it, then import again"
            )
        path = PurePosixPath(*parts_of(rel))
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
    return Imported(entry, variant, target, tuple(copied), files)


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
    shared_src: Path | None = _in_checkout(checkout, SHARED_JSON)
    if shared_src is not None and not shared_src.is_file():
        shared_src = None
    project.mkdir(parents=True, exist_ok=True)
    versions = project / VERSIONS_DIR
    if versions.is_symlink() or (versions.exists() and not versions.is_dir()):
        raise UsageError(f"{versions}: not a plain folder: make {VERSIONS_DIR}/ a folder")
    # A link is a conflict too (`lexists`): --force replaces the link itself, never what it
    # leads to.
    conflicts = [versions / v for v, _ in variants if _lexists(versions / v)]
    if shared_src is not None:
        conflicts += [project / n for n in SHARED_NAMES if _lexists(project / n)]
    if conflicts and not force:
        shown = ", ".join(_rel(project, p) for p in conflicts)
        raise UsageError(f"{shown} already exist: pass --force to replace them with the import")

    with tempfile.TemporaryDirectory(prefix=".runenv-import-", dir=project) as tmp:
        staged = Path(tmp)
        (staged / VERSIONS_DIR).mkdir()
        if shared_src is not None:
            read_config_file(shared_src, SHARED_JSON)
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
        # Everything loads: move it into place, all or nothing.
        moves = [(item.target, versions / item.variant) for item in imported]
        if shared_src is not None:
            moves.insert(0, (staged / SHARED_JSON, project / SHARED_JSON))
        versions.mkdir(exist_ok=True)
        _swap_in(moves, conflicts, staged / ".replaced")
        shared = project / SHARED_JSON if shared_src is not None else None
        final = [
            Imported(item.source, item.variant, versions / item.variant, item.copied, item.files)
            for item in imported
        ]
    return ImportResult(shared, tuple(final), tuple(conflicts))


def _lexists(path: Path) -> bool:
    return path.is_symlink() or path.exists()


def _swap_in(moves: list[tuple[Path, Path]], conflicts: list[Path], aside: Path) -> None:
    """Rename each of `conflicts` (a link as a link) into `aside`, then each staged path of
    `moves` to its place; on any failure, undo what was done, so the project is as it was.

    Renames within one filesystem: none writes through a link or leaves half a folder.
    """
    aside.mkdir()
    put_aside: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for i, path in enumerate(conflicts):
            kept = aside / str(i)
            path.rename(kept)
            put_aside.append((kept, path))
        for src, dest in moves:
            src.rename(dest)
            placed.append(dest)
    except OSError as exc:
        for dest in reversed(placed):
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest, ignore_errors=True)
            else:
                dest.unlink(missing_ok=True)
        for kept, path in reversed(put_aside):
            kept.rename(path)
        raise OSFailure(exc, "import: nothing was changed") from None


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
