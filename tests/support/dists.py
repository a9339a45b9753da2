"""Real wheels and sdists written by hand, for tests (the one wheel writer of the suite).

`write_wheel` makes a valid wheel (sorted entries, fixed dates, RECORD with hashes) and can
also make broken ones on purpose: a wrong RECORD hash (`record_override`) or files RECORD does
not list (`unrecorded`). `write_sdist` makes `name-version.tar.gz` (fixed mtimes, no owners).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

ZIP_DATE = (2020, 1, 1, 0, 0, 0)
SDIST_MTIME = 1577836800  # 2020-01-01


def record_hash(data: bytes) -> str:
    """The RECORD form of `data`'s hash: `sha256=<urlsafe base64, unpadded>`."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def write_wheel(
    out_dir: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    tag: str = "py3-none-any",
    metadata: str | None = None,
    entry_points: str | None = None,
    purelib: bool = True,
    record_override: Mapping[str, str] | None = None,
    unrecorded: Mapping[str, bytes] | None = None,
) -> Path:
    """Write `out_dir/name-version-tag.whl`; return its path.

    `files` maps archive paths (e.g. `pkg/__init__.py`, `pkg-1.0.data/data/share/x`) to bytes;
    `metadata` defaults to the minimal METADATA (name and version).
    """
    dist = f"{name}-{version}"
    info = f"{dist}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = (
        metadata or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    members[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: runenv-tests\n"
        f"Root-Is-Purelib: {'true' if purelib else 'false'}\nTag: {tag}\n"
    ).encode()
    if entry_points:
        members[f"{info}/entry_points.txt"] = entry_points.encode()
    record_name = f"{info}/RECORD"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for path in sorted(members):
        digest = (record_override or {}).get(path) or record_hash(members[path])
        writer.writerow([path, digest, len(members[path])])
    writer.writerow([record_name, "", ""])
    members[record_name] = buf.getvalue().encode()
    members.update(unrecorded or {})
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(members, key=lambda p: (p.startswith(info), p)):
            zi = zipfile.ZipInfo(path, ZIP_DATE)
            zi.external_attr = (0o755 if path.endswith((".so", ".pyd")) else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, members[path])
    return target


def write_sdist(out_dir: Path, name: str, version: str, files: Mapping[str, bytes]) -> Path:
    """Write `name-version.tar.gz` with `files` under `name-version/` (fixed mtimes, no owners)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{version}"
    target = out_dir / f"{base}.tar.gz"
    with tarfile.open(target, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(files):
            data = files[path]
            ti = tarfile.TarInfo(f"{base}/{path}")
            ti.size, ti.mtime, ti.mode = len(data), SDIST_MTIME, 0o644
            tf.addfile(ti, io.BytesIO(data))
    return target
