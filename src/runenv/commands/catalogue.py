"""`runenv catalogue`: index every built archive into the catalogue package's wheel.

The manifests beside the archives in `dist/` are the only input: each archive is checked
against its manifest (size, sha256; for an archive in parts, each part, and the whole or else
the parts joined), the entries become `catalogue.json` (variant -> platform -> URL, sha256,
size, paths, layout, packages, runtime env, parts) in a staged copy of the `catalogue/` project,
and that copy is built into a wheel with the `build` package. The catalogue's build backend
is the stdlib-only one in `catalogue/_build/`, so the build needs no index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from runenv._cache import file_sha256, staged_file
from runenv._safe_paths import PathRefused, parts_of
from runenv._subprocess import run
from runenv.artifact.manifest import SCHEMA_VERSION as MANIFEST_SCHEMA
from runenv.artifact.manifest import read_manifest
from runenv.config.project import check_variant_name
from runenv.errors import BuildError, ChecksumError, UsageError
from runenv.fetch.download import local_source, redact
from runenv.platforms import ALL_PLATFORMS, Platform

log = logging.getLogger(__name__)

CATALOGUE_SCHEMA = 1
"""The `schema_version` of `catalogue.json`; the catalogue package refuses others."""
LAYOUTS = ("installed", "wheelhouse")
"""A runtime's `layout`: packages installed into its tree, or a Python plus a wheelhouse
(`packages/`) that each block venv installs its own subset from. A manifest without the key
is an installed tree (every build before the wheelhouse layout)."""
MANIFEST_GLOB = "runenv-*.json"
PROJECT_DIR = "catalogue"
DATA_FILE = Path("src") / "runenv_catalogue" / "catalogue.json"
BUILD_TIMEOUT = 300.0
_CHUNK = 1 << 20


# Loads a catalogue.json with the catalogue package's own reader (`Catalogue.load`).
_SELF_LOAD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from runenv_catalogue._catalogue import Catalogue
from runenv_catalogue._provision import CatalogueError
try:
    Catalogue.load(Path(sys.argv[2]))
except CatalogueError as exc:
    sys.exit(str(exc))
"""


def find_manifests(dist: Path) -> list[Path]:
    """Every `runenv-*.json` in `dist` and in its subfolders, at any depth, sorted.

    Subfolders count because CI gathers each machine's outputs into a folder of its own.
    Hidden and temporary folders (`.name`) are skipped.
    """
    found = [
        p
        for p in dist.rglob(MANIFEST_GLOB)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(dist).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(dist).as_posix())


def archive_url(base_url: str, filename: str) -> str:
    """The URL of `filename` under `base_url`: http(s), `file://`, or a local directory.

    A directory path becomes an absolute `file://` URL, so the catalogue does not depend on the
    consumer's working directory.
    """
    base = base_url.strip()
    if not base:
        raise UsageError("--base-url is empty: give a URL or a directory")
    local = local_source(base)  # UsageError for an unsupported scheme
    name = quote(filename)
    if local is not None and not base.lower().startswith("file:"):
        return local.expanduser().resolve().as_uri().rstrip("/") + "/" + name
    return base.rstrip("/") + "/" + name


def _field(manifest: dict[str, Any], key: str, kind: type, shown: str) -> Any:
    value = manifest.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BuildError(f"{shown}: {key}: missing or not a {kind.__name__}")
    return value


def _tree_path(manifest: dict[str, Any], key: str, shown: str) -> str:
    """A manifest's path inside the runtime (`bin_dir`, `wheelhouse`): relative, POSIX, no `..`."""
    value = _field(manifest, key, str, shown)
    parts = value.split("/")
    if not value or value.startswith("/") or "\\" in value or ":" in value or ".." in parts:
        raise BuildError(f"{shown}: {key}: {value!r} is not a relative path inside the runtime")
    return "/".join(p for p in parts if p not in ("", ".")) or "."


def _layout(manifest: dict[str, Any], shown: str) -> dict[str, str]:
    """The catalogue's `layout` (and, for a wheelhouse, `bin_dir` and `wheelhouse`) of a
    manifest: a consumer needs them to make a block venv the way the runtime expects."""
    layout = manifest.get("layout", "installed")
    if layout not in LAYOUTS:
        raise BuildError(f"{shown}: layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    fields = {"layout": layout}
    if "bin_dir" in manifest or layout == "wheelhouse":
        fields["bin_dir"] = _tree_path(manifest, "bin_dir", shown)
    if layout == "wheelhouse":
        fields["wheelhouse"] = _tree_path(manifest, "wheelhouse", shown)
    return fields


def _platform(manifest: dict[str, Any], shown: str) -> Platform:
    value = _field(manifest, "platform", str, shown)
    try:
        return Platform(value)
    except ValueError:
        raise BuildError(f"{shown}: platform: unknown platform {value!r}") from None


def _entry(path: Path, manifest: dict[str, Any], base_url: str) -> dict[str, Any]:
    """One catalogue entry from a manifest, after checking the archive beside it."""
    shown = str(path)
    schema = manifest.get("schema_version")
    if schema != MANIFEST_SCHEMA:
        raise BuildError(f"{shown}: schema_version {schema!r}: this runenv reads {MANIFEST_SCHEMA}")
    name = _field(manifest, "archive", str, shown)
    if not name or Path(name).name != name or "\\" in name or name in (".", ".."):
        raise BuildError(f"{shown}: archive: {name!r} is not a file name")
    sha256 = _field(manifest, "sha256", str, shown)
    size = _field(manifest, "size", int, shown)
    archive = path.parent / name
    parts = _parts(path, manifest, base_url)
    if parts and not archive.exists():  # a release carries the parts only: check their join
        got, actual = _joined_sha256(path, manifest["parts"])
        if actual != size:
            raise BuildError(
                f"{archive}: its parts join to {actual} bytes, but {shown} says {size}"
            )
        if got != sha256:
            raise ChecksumError(f"{archive} (joined from its parts, manifest {shown})", sha256, got)
    else:
        _check_file(archive, size, sha256, shown)
    plat = _platform(manifest, shown)
    version = _field(manifest, "python_version", str, shown)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version, re.ASCII):
        raise BuildError(f"{shown}: python_version: {version!r} is not a version X.Y.Z")
    paths = {key: _field(manifest, key, str, shown) for key in ("interpreter", "site_packages")}
    for key, value in paths.items():
        try:  # the one rule for paths a manifest names (`_safe_paths`)
            parts_of(value)
        except PathRefused as exc:
            raise BuildError(f"{shown}: {key}: {exc}: a path inside the runtime") from None
    packages = _field(manifest, "packages", list, shown)
    env = _field(manifest, "runtime_env", dict, shown)
    try:
        listed = [{"name": str(p["name"]), "version": str(p["version"])} for p in packages]
    except (KeyError, TypeError):
        raise BuildError(f"{shown}: packages: each needs a name and a version") from None
    return {
        "url": archive_url(base_url, name),
        "sha256": sha256,
        "size": size,
        "python_version": version,
        "interpreter": paths["interpreter"],
        "site_packages": paths["site_packages"],
        "scripts": plat.info.scripts_dir().as_posix(),
        "packages": listed,
        "env": {str(k): str(v) for k, v in sorted(env.items())},
        **_layout(manifest, shown),
        **({"parts": parts} if parts else {}),
    }


def _check_file(path: Path, size: int, sha256: str, shown: str) -> None:
    """`path` exists with `size` bytes and `sha256`; else one line naming it and `shown`."""
    try:
        actual = path.stat().st_size
    except OSError:
        raise BuildError(
            f"{path}: missing (named by {shown}): copy it beside its manifest"
        ) from None
    if actual != size:
        raise BuildError(f"{path}: {actual} bytes, but {shown} says {size}")
    got = file_sha256(path)
    if got != sha256:
        raise ChecksumError(f"{path} (manifest {shown})", sha256, got)


def _parts(path: Path, manifest: dict[str, Any], base_url: str) -> list[dict[str, Any]]:
    """The catalogue's `parts` of an archive that has them (URL, size, sha256 each), every
    part file beside the manifest checked; [] when the manifest lists none."""
    shown = str(path)
    raw = manifest.get("parts")
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise BuildError(f"{shown}: parts: not a list of parts")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(raw, 1):
        try:
            name, size, sha256 = str(part["name"]), part["size"], str(part["sha256"])
        except (KeyError, TypeError):
            raise BuildError(f"{shown}: parts[{i}]: needs a name, a size and a sha256") from None
        if Path(name).name != name or "\\" in name or not isinstance(size, int) or size <= 0:
            raise BuildError(f"{shown}: parts[{i}]: {name!r} is not a part file name and size")
        if name == manifest.get("archive") or any(p["name"] == name for p in parts):
            raise BuildError(f"{shown}: parts[{i}]: {name!r} is listed twice (or is the archive)")
        _check_file(path.parent / name, size, sha256, shown)
        parts.append({"name": name, "size": size, "sha256": sha256})
    total, whole = sum(p["size"] for p in parts), manifest.get("size")
    if total != whole:
        raise BuildError(f"{shown}: parts: they add up to {total} bytes, not the archive's {whole}")
    return [
        {"url": archive_url(base_url, p["name"]), "size": p["size"], "sha256": p["sha256"]}
        for p in parts
    ]


def _joined_sha256(path: Path, parts: list[dict[str, Any]]) -> tuple[str, int]:
    """sha256 and size of the parts beside `path`, joined in order (read once, streaming)."""
    digest = hashlib.sha256()
    count = 0
    for part in parts:
        with (path.parent / str(part["name"])).open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                count += len(chunk)
    return digest.hexdigest(), count


def collect(dist: Path, base_url: str) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> platform -> entry for every manifest under `dist`, each archive verified.

    Two manifests for one (variant, platform) are an error naming both files: which archive
    the catalogue should point at is not ours to guess.
    """
    if not dist.is_dir():
        raise UsageError(f"{dist}: no such folder: build first (runenv build ...)")
    seen: dict[tuple[str, str], Path] = {}
    variants: dict[str, dict[str, dict[str, Any]]] = {}
    for path in find_manifests(dist):
        manifest = read_manifest(path)
        if manifest is None:
            raise BuildError(f"{path}: not a readable manifest (JSON object)")
        variant = _field(manifest, "variant", str, str(path))
        try:  # the variant names a catalogue key and, for consumers, a runtime: a plain name
            check_variant_name(variant)
        except UsageError:
            raise BuildError(f"{path}: variant: {variant!r} is not a variant name") from None
        platform = _platform(manifest, str(path)).value
        if (variant, platform) in seen:
            raise BuildError(
                f"{seen[variant, platform]} and {path} are both manifests of {variant} "
                f"{platform}: keep one"
            )
        seen[variant, platform] = path
        log.debug("catalogue: %s %s from %s", variant, platform, path)
        variants.setdefault(variant, {})[platform] = _entry(path, manifest, base_url)
    if not variants:
        raise UsageError(f"no {MANIFEST_GLOB} manifest in {dist}: build first (runenv build ...)")
    order = {p.value: i for i, p in enumerate(ALL_PLATFORMS)}
    return {
        v: dict(sorted(plats.items(), key=lambda kv: order.get(kv[0], len(order))))
        for v, plats in sorted(variants.items())
    }


def default_version(variants: dict[str, dict[str, dict[str, Any]]]) -> str:
    """`0+<12 hex digits>`: a hash of the catalogue's content (a valid PEP 440 version).

    Chosen over a date so that the same archives give the same wheel, byte for byte; it
    names the content but does not order releases: pass `--version` for those (CI passes the
    tag's version).
    """
    digest = hashlib.sha256(json.dumps(variants, sort_keys=True).encode()).hexdigest()
    return f"0+{digest[:12]}"


def normalise_version(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        raise UsageError(f"--version {version!r} is not a valid version (PEP 440)") from None


def catalogue_json(variants: dict[str, dict[str, dict[str, Any]]], version: str) -> str:
    """The text of `catalogue.json`: stable bytes for the same input."""
    data = {"schema_version": CATALOGUE_SCHEMA, "version": version, "variants": variants}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def build_catalogue(
    dist: Path, base_url: str, *, version: str | None, project: Path, out: Path | None = None
) -> Path:
    """Build the catalogue wheel from every manifest under `dist`; return the wheel's path.

    Manifests are found in `dist` and its subfolders (see `find_manifests`); each archive
    must sit beside its manifest with the manifest's size and sha256. The wheel goes to `out`
    (default `dist`). Same manifests and version give the same wheel bytes.
    """
    source = project / PROJECT_DIR
    if not (source / "pyproject.toml").is_file():
        raise UsageError(f"{source}: no catalogue project (pyproject.toml) here")
    variants = collect(dist, base_url)
    final_version = normalise_version(version) if version else default_version(variants)
    out = out or dist
    with tempfile.TemporaryDirectory(prefix="runenv-catalogue-") as tmp:
        stage = Path(tmp) / PROJECT_DIR
        shutil.copytree(
            source,
            stage,
            ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", ".*", "build", "dist", "*.egg-info"
            ),
        )
        (stage / DATA_FILE).write_bytes(catalogue_json(variants, final_version).encode())
        # The wheel must be readable by its own code, or every command of it fails: load the
        # staged catalogue.json with the staged package before building.
        run(
            [sys.executable, "-I", "-c", _SELF_LOAD, stage / "src", stage / DATA_FILE],
            what=f"the catalogue's own check of {DATA_FILE.name} (a manifest it cannot read?)",
            timeout=BUILD_TIMEOUT,
        )
        wheels = Path(tmp) / "wheels"
        run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", wheels, stage],
            what="build the catalogue wheel",
            timeout=BUILD_TIMEOUT,
        )
        built = sorted(wheels.glob("*.whl"))
        if len(built) != 1:
            raise BuildError(f"building the catalogue gave {len(built)} wheels, expected one")
        out.mkdir(parents=True, exist_ok=True)
        target = out / built[0].name
        with staged_file(target) as staged:
            shutil.copyfile(built[0], staged)
            staged.chmod(0o644)
    count = sum(len(p) for p in variants.values())
    log.info(
        "catalogue %s: %d archives of %d variants, base %s -> %s",
        final_version,
        count,
        len(variants),
        redact(base_url),
        target,
    )
    return target
