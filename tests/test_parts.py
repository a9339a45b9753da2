"""Archives in parts, end to end on a real runtime archive built for the host with a small part
size: the split, `runenv catalogue` from parts alone, installs through the catalogue package
exactly as from the single archive, and a corrupted, missing or dropped-mid-way part refused
with nothing installed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runenv_catalogue import Catalogue, ChecksumMismatch, DownloadError, Part
from runenv_catalogue.__main__ import main as catalogue_main
from runenv_catalogue._provision import CHUNK, Verified

from runenv.artifact.parts import (
    DEFAULT_PART_SIZE,
    part_size_from,
    publish_parts,
    split,
    stale_parts,
)
from runenv.commands.catalogue import collect
from runenv.errors import BuildError, ChecksumError, UsageError
from runenv.platforms import host_platform
from support.http import LoopbackServer, drop_after
from support.pbs import PY_VERSION

HOST = host_platform()
VARIANT = f"{PY_VERSION}-parts"


@pytest.fixture(scope="module")
def built(host_build: Callable[..., Path]) -> Path:
    """dist/ of a project with one variant built for the host (a real runtime archive)."""
    return host_build(VARIANT, ["rtdep==1.0"]).parent


def _copy_dist(built: Path, dest: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of dist/ (archive and manifest); the manifest's path and its content."""
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("*.log"))
    path = dest / f"runenv-{VARIANT}-{HOST.value}.json"
    return path, json.loads(path.read_text())


def _three_parts(size: int) -> int:
    return size // 3 + 1


def _catalogue(dist: Path) -> Catalogue:
    return Catalogue({"schema_version": 1, "version": "1", "variants": collect(dist, str(dist))})


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".provisioned"
    }


def test_split_cuts_the_archive_into_verified_parts_and_the_manifest_lists_them(
    built: Path, tmp_path: Path
) -> None:
    manifest_path, before = _copy_dist(built, tmp_path / "dist")
    archive = manifest_path.parent / before["archive"]
    data = archive.read_bytes()
    part_size = _three_parts(len(data))
    parts = publish_parts(manifest_path, part_size)
    after = json.loads(manifest_path.read_text())
    assert [p["name"] for p in parts] == [f"{archive.name}.part00{i}" for i in (1, 2, 3)]
    assert after["parts"] == parts and after["part_size"] == part_size
    assert {k: v for k, v in after.items() if k not in ("parts", "part_size")} == before
    joined = b""
    for p in parts:
        blob = (archive.parent / p["name"]).read_bytes()
        assert len(blob) == p["size"] <= part_size
        assert hashlib.sha256(blob).hexdigest() == p["sha256"]
        joined += blob
    assert joined == data and after["sha256"] == hashlib.sha256(data).hexdigest()

    # Again with the same size: nothing rewritten; with a larger one: re-split; above the
    # archive's size: no parts, the old ones gone, the manifest as the build wrote it.
    stamp = manifest_path.stat().st_mtime_ns
    assert publish_parts(manifest_path, part_size) == parts
    assert manifest_path.stat().st_mtime_ns == stamp
    assert len(publish_parts(manifest_path, len(data) - 1)) == 2
    assert len(stale_parts(archive)) == 2
    assert publish_parts(manifest_path, len(data)) == []
    assert stale_parts(archive) == [] and json.loads(manifest_path.read_text()) == before


def test_part_size_setting() -> None:
    assert part_size_from(None) == DEFAULT_PART_SIZE == 2_000_000_000
    assert part_size_from("1_000_000") == 1_000_000
    with pytest.raises(UsageError, match="not a number of bytes"):
        part_size_from("2GB")
    with pytest.raises(UsageError, match="too small"):
        part_size_from(10)


def test_parts_install_exactly_as_the_single_archive(built: Path, tmp_path: Path) -> None:
    whole = _catalogue(built)
    python = whole.install(VARIANT, cache_dir=tmp_path / "whole")
    assert not whole.entry(VARIANT).parts

    manifest_path, m = _copy_dist(built, tmp_path / "dist")
    publish_parts(manifest_path, _three_parts(m["size"]))
    (manifest_path.parent / m["archive"]).unlink()  # a release carries the parts only
    cat = _catalogue(manifest_path.parent)
    entry = cat.entry(VARIANT)
    assert len(entry.parts) == 3 and entry.sha256 == m["sha256"] and entry.size == m["size"]
    assert all(p.url.startswith("file://") and ".part00" in p.url for p in entry.parts)
    from_parts = cat.install(VARIANT, cache_dir=tmp_path / "parts")
    assert from_parts.relative_to(tmp_path / "parts") == python.relative_to(tmp_path / "whole")
    assert _files(from_parts.parents[1]) == _files(python.parents[1])
    out = subprocess.run(
        [from_parts, "-c", "import rtdep, sys; print(rtdep.VALUE, sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["rtdep", "1.0", str(from_parts.parents[1])]


@pytest.mark.parametrize("damage", ["corrupt", "missing", "short"])
def test_a_bad_part_is_refused_and_nothing_is_installed(
    built: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_path, m = _copy_dist(built, tmp_path / "dist")
    parts = publish_parts(manifest_path, _three_parts(m["size"]))
    cat = _catalogue(manifest_path.parent)  # catalogued while every part was good
    second = manifest_path.parent / parts[1]["name"]
    blob = second.read_bytes()
    if damage == "corrupt":
        second.write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    elif damage == "missing":
        second.unlink()
    else:
        second.write_bytes(blob[:-1])
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch if damage != "missing" else DownloadError) as info:
        cat.install(VARIANT, cache_dir=cache)
    message = str(info.value)
    assert message.startswith("part 2 of 3 (") and "nothing was installed" in message
    if damage == "corrupt":
        assert parts[1]["sha256"] in message
    assert [p.name for p in cache.iterdir()] == [f"{m['sha256'][:16]}.lock"]
    assert cat.which(VARIANT, cache_dir=cache) is None
    code = catalogue_main(["install", VARIANT, "--cache-dir", str(cache)], catalogue=cat)
    err = capsys.readouterr().err
    assert code == 1 and "part 2 of 3" in err and len(err.strip().splitlines()) == 1

    # runenv catalogue refuses it too, naming the part.
    with pytest.raises((ChecksumError, BuildError), match=parts[1]["name"]):
        collect(manifest_path.parent, "https://example.invalid/r")


def _read_all(source: Verified) -> Iterator[bytes]:
    """Every chunk `source` gives, read as the consumer reads it: a `CHUNK` at a time."""
    try:
        while chunk := source.read(CHUNK):
            yield chunk
    finally:
        source.close()


def test_a_part_dropped_mid_way_is_fetched_again_and_joined(built: Path, tmp_path: Path) -> None:
    manifest_path, m = _copy_dist(built, tmp_path / "dist")
    parts = publish_parts(manifest_path, _three_parts(m["size"]))
    dist = manifest_path.parent
    with LoopbackServer(root=dist) as server:
        server.script(f"/{parts[1]['name']}", drop_after(1000))  # the connection dies once
        entry = _catalogue(dist).entry(VARIANT)
        served = [Part(server.url_for(p["name"]), p["size"], p["sha256"]) for p in parts]
        joined = b"".join(_read_all(Verified("", entry.sha256, entry.size, served)))
        assert server.requests_for(f"/{parts[1]['name']}") == 2
    assert joined == (dist / m["archive"]).read_bytes()


def test_parts_are_read_streaming_never_a_whole_part_in_memory(tmp_path: Path) -> None:
    part_size = 8 << 20
    blobs = [bytes([i]) * part_size for i in range(3)]
    parts = []
    for i, blob in enumerate(blobs):
        (tmp_path / f"a.part{i}").write_bytes(blob)
        parts.append(
            Part(str(tmp_path / f"a.part{i}"), part_size, hashlib.sha256(blob).hexdigest())
        )
    whole = hashlib.sha256(b"".join(blobs)).hexdigest()
    del blobs
    tracemalloc.start()
    try:
        total = sum(len(c) for c in _read_all(Verified("", whole, 3 * part_size, parts)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * CHUNK < part_size // 2, peak  # a chunk or two at a time
    assert total == 3 * part_size


def test_split_of_a_small_archive_makes_no_parts(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x" * 5000)
    (tmp_path / "a.tar.gz.part001").write_bytes(b"stale")
    assert split(archive, 5000) == []
    assert stale_parts(archive) == []
    exact = split(archive, 2500)
    assert [p["size"] for p in exact] == [2500, 2500]  # no empty third part
