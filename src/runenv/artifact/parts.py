"""Archives of any size in a release: an archive above the part size is also cut into parts.

GitHub refuses release assets of 2 GiB and more, and a runtime with torch and CUDA is larger.
An archive bigger than the part size (default 2,000,000,000 bytes, under that limit) gets
`<archive>.part001`, `.part002`, ... beside it, and its manifest a `parts` list (each part's
file name, size and sha256) with the `part_size`; the whole archive's sha256 and size stay
where they were. Consumers fetch the parts, check each, join them and check the whole
(`runenv_catalogue`). An archive at or below the part size has no parts and no `parts` key.

The parts are made from the finished archive, streaming (one buffer of `_CHUNK` bytes), each
written to a temp file and renamed into place; the manifest is rewritten last, atomically.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from runenv._cache import staged_file
from runenv.artifact.manifest import read_manifest
from runenv.errors import BuildError, UsageError

DEFAULT_PART_SIZE = 2_000_000_000
"""Bytes per part: below GitHub's 2 GiB (2,147,483,648) limit on a release asset."""
PART_SIZE_ENV = "RUNENV_PART_SIZE"
MIN_PART_SIZE = 1024
_CHUNK = 1 << 20
_PART = re.compile(r"\.part\d{3,}\Z", re.ASCII)


def part_size_from(value: str | int | None) -> int:
    """The part size from `--part-size` / `$RUNENV_PART_SIZE` (None: the default)."""
    if value is None:
        value = os.environ.get(PART_SIZE_ENV) or DEFAULT_PART_SIZE
    try:
        size = int(str(value).replace("_", ""))
    except ValueError:
        raise UsageError(f"part size {value!r} is not a number of bytes") from None
    if size < MIN_PART_SIZE:
        raise UsageError(f"part size {size} is too small: use at least {MIN_PART_SIZE} bytes")
    return size


def part_name(archive_name: str, index: int) -> str:
    """The file name of part `index` (1-based) of `archive_name`."""
    return f"{archive_name}.part{index:03d}"


def stale_parts(archive: Path) -> list[Path]:
    """Every `<archive>.partNNN` file beside `archive`."""
    prefix = archive.name + ".part"
    return sorted(
        p
        for p in archive.parent.glob(f"{archive.name}.part*")
        if p.name.startswith(prefix) and _PART.search(p.name)
    )


def split(archive: Path, part_size: int) -> list[dict[str, Any]]:
    """Cut `archive` into parts of `part_size` bytes (the last may be shorter) beside it.

    Returns each part's `name`, `size` and `sha256`, in order; none for an archive of at most
    `part_size` bytes. Parts of an earlier split of this archive are removed first.
    """
    for old in stale_parts(archive):
        old.unlink()
    total = archive.stat().st_size
    if total <= part_size:
        return []
    parts: list[dict[str, Any]] = []
    with archive.open("rb", buffering=0) as src:
        index = 0
        while True:
            index += 1
            target = archive.parent / part_name(archive.name, index)
            digest = hashlib.sha256()
            written = 0
            with staged_file(target) as tmp, tmp.open("wb", buffering=0) as out:
                while written < part_size:
                    chunk = src.read(min(_CHUNK, part_size - written))
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
            if written == 0:
                target.unlink()
                break
            parts.append({"name": target.name, "size": written, "sha256": digest.hexdigest()})
            if written < part_size:
                break
    if sum(p["size"] for p in parts) != total:
        raise BuildError(f"{archive}: changed while being cut into parts")
    return parts


def publish_parts(manifest_path: Path, part_size: int) -> list[dict[str, Any]]:
    """Give the archive named by `manifest_path` its parts, and the manifest its `parts` list.

    The manifest is rewritten (atomically) only when what it lists changes, so calling this
    again with the same part size is cheap: an existing split is reused when every part is
    still there with the listed size. Returns the parts (empty for a small archive).
    """
    from runenv.artifact.pack import (
        write_manifest,  # pack imports nothing of ours: no cycle either way
    )

    manifest = read_manifest(manifest_path)
    if manifest is None or not isinstance(manifest.get("archive"), str):
        raise BuildError(f"{manifest_path}: not a readable manifest")
    archive = manifest_path.parent / manifest["archive"]
    listed = manifest.get("parts")
    if _current(manifest, archive, part_size):
        if not listed:
            for old in stale_parts(archive):  # left by an earlier, larger archive
                old.unlink()
        return list(listed or [])
    parts = split(archive, part_size)
    updated = {k: v for k, v in manifest.items() if k not in ("parts", "part_size")}
    if parts:
        updated["parts"] = parts
        updated["part_size"] = part_size
    write_manifest(manifest_path, updated)
    return parts


def parts_current(manifest_path: Path, part_size: int) -> bool:
    """Whether the manifest already has what `publish_parts` would give it at this part size
    (no parts for an archive within it; else parts of this size, each there)."""
    manifest = read_manifest(manifest_path)
    if manifest is None or not isinstance(manifest.get("archive"), str):
        return False
    return _current(manifest, manifest_path.parent / manifest["archive"], part_size)


def _current(manifest: dict[str, Any], archive: Path, part_size: int) -> bool:
    listed, size = manifest.get("parts"), manifest.get("size")
    if listed is None:
        return isinstance(size, int) and size <= part_size
    return (
        isinstance(listed, list)
        and manifest.get("part_size") == part_size
        and _parts_present(archive, listed)
    )


def _parts_present(archive: Path, listed: list[Any]) -> bool:
    try:
        return bool(listed) and all(
            (archive.parent / str(p["name"])).stat().st_size == p["size"] for p in listed
        )
    except (OSError, KeyError, TypeError):
        return False
