"""A tiny PEP 517 build backend for runenv-catalogue, standard library only.

Why in-tree: the catalogue wheel is built on CI machines and in tests that must not need an
index, so the backend cannot be something pip would download (`build-system.requires` is
empty and `python -m build --no-isolation` works with nothing installed). Why so simple: the
package is pure Python with static metadata in `pyproject.toml`; only the version is dynamic,
read from `src/runenv_catalogue/catalogue.json`, which `runenv catalogue` writes.

Outputs are reproducible: entries sorted, fixed timestamps and permissions, no owner names,
so the same sources give the same wheel and sdist bytes.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAME = "runenv_catalogue"
PACKAGE_DIR = Path("src") / NAME
DATA_FILE = PACKAGE_DIR / "catalogue.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FIXED_MTIME = 315532800  # 1980-01-01, for the sdist
_VERSION = re.compile(r"^[0-9A-Za-z.!+_]+$")
_SKIP = ("__pycache__", ".pyc", ".pyo", ".mypy_cache", ".DS_Store")


def _project() -> Mapping[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11: install the built wheel instead
        raise RuntimeError("building runenv-catalogue needs Python 3.11 or later") from None
    with Path("pyproject.toml").open("rb") as fh:
        project: Mapping[str, Any] = tomllib.load(fh)["project"]
    return project


def _version() -> str:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    version = str(data.get("version", ""))
    if not _VERSION.match(version) or "-" in version:
        raise RuntimeError(f"{DATA_FILE}: version {version!r} is not a normalised version")
    return version


def _metadata(version: str) -> str:
    project = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
    ]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    if isinstance(project.get("license"), str):
        lines.append(f"License: {project['license']}")
    lines.extend(f"Requires-Dist: {dep}" for dep in project.get("dependencies", []))
    body = ""
    readme = project.get("readme")
    if isinstance(readme, str) and Path(readme).is_file():
        lines.append("Description-Content-Type: text/markdown")
        body = "\n" + Path(readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body


def _entry_points() -> str | None:
    scripts = _project().get("scripts", {})
    if not scripts:
        return None
    rows = "".join(f"{name} = {target}\n" for name, target in sorted(scripts.items()))
    return "[console_scripts]\n" + rows


def _package_files() -> list[Path]:
    files = [
        p for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and not any(part.endswith(_SKIP) for part in p.parts)
    ]
    return sorted(files, key=lambda p: p.as_posix())


def _zip_write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = 0o100644 << 16
    info.create_system = 3  # the same bytes whichever OS builds it
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data, compresslevel=9)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """PEP 517: write the pure-Python wheel into `wheel_directory`; return its file name."""
    version = _version()
    dist_info = f"{NAME}-{version}.dist-info"
    contents: list[tuple[str, bytes]] = [
        (p.relative_to("src").as_posix(), p.read_bytes()) for p in _package_files()
    ]
    contents.append((f"{dist_info}/METADATA", _metadata(version).encode()))
    wheel_meta = "Wheel-Version: 1.0\nGenerator: runenv_catalogue_build\nRoot-Is-Purelib: true\n"
    contents.append((f"{dist_info}/WHEEL", (wheel_meta + "Tag: py3-none-any\n").encode()))
    entry_points = _entry_points()
    if entry_points:
        contents.append((f"{dist_info}/entry_points.txt", entry_points.encode()))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in contents:
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    contents.append((f"{dist_info}/RECORD", record.getvalue().encode()))

    filename = f"{NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w") as zf:
        for name, data in contents:
            _zip_write(zf, name, data)
    return filename


def build_sdist(sdist_directory: str, config_settings: Mapping[str, Any] | None = None) -> str:
    """PEP 517: write `runenv_catalogue-VERSION.tar.gz` into `sdist_directory`."""
    version = _version()
    top = f"{NAME}-{version}"
    files = [Path("pyproject.toml"), Path("README.md"), *sorted(Path("_build").glob("*.py"))]
    files += _package_files()
    entries = [(f.as_posix(), f.read_bytes()) for f in files if f.is_file()]
    entries.append(("PKG-INFO", _metadata(version).encode()))
    filename = f"{top}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(entries):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            tf.addfile(info, io.BytesIO(data))
    with (Path(sdist_directory) / filename).open("wb") as out, gzip.GzipFile(
        filename="", mode="wb", fileobj=out, mtime=0
    ) as gz:
        gz.write(raw.getvalue())
    return filename


def get_requires_for_build_wheel(config_settings: Mapping[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: Mapping[str, Any] | None = None) -> list[str]:
    return []
