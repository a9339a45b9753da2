"""Wheels' deflate streams carried into the archive as they are (`runenv.artifact.wheel_streams`):
used only when the wheel is the verified one and the tree file is what the stream inflates to."""

from __future__ import annotations

import gzip
import hashlib
import random
import subprocess
import tarfile
import zipfile
from pathlib import Path

from runenv_catalogue._members import member_info
from runenv_catalogue._unpack import safe_extract

from runenv.artifact.pack import pack_tree, tar_stream, write_gzip_members
from runenv.artifact.wheel_streams import MIN_SIZE, wheel_streams
from support.dists import write_wheel

SITE = "lib/python3.12/site-packages"


def _text(size: int, seed: int) -> bytes:
    """Compressible, not trivial: words drawn at random."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _raw_stream(wheel: Path, entry: str) -> bytes:
    """The entry's compressed bytes, as stored in the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(entry)
    blob = wheel.read_bytes()
    start = info.header_offset + 30
    start += int.from_bytes(blob[info.header_offset + 26 : info.header_offset + 28], "little")
    start += int.from_bytes(blob[info.header_offset + 28 : info.header_offset + 30], "little")
    return blob[start : start + info.compress_size]


def _installed(tmp_path: Path) -> tuple[Path, Path]:
    """A wheel with a large and a small file, and a tree with the wheel's files in place."""
    files = {
        "pkg/__init__.py": b"VALUE = 1\n",
        "pkg/table.txt": _text(3 * MIN_SIZE, 1),
        "pkg/small.txt": _text(MIN_SIZE // 2, 2),
    }
    wheel = write_wheel(tmp_path / "wheels", "pkg", "1.0", files)
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3").write_bytes(_text(5000, 3))
    for name, data in files.items():
        (tree / SITE / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / SITE / name).write_bytes(data)
    return wheel, tree


def _unpack(archive: Path, out: Path) -> Path:
    out.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(out)], check=True)
    return out


def _member_sizes(blob: bytes) -> list[int]:
    """What each gzip member of a runenv archive inflates to, from its header alone."""
    offset, sizes = 0, []
    while offset < len(blob):
        info = member_info(blob[offset : offset + 64])
        assert info is not None
        offset, sizes = offset + info[0], [*sizes, info[1]]
    assert offset == len(blob)
    return sizes


def test_a_large_unchanged_file_is_carried_as_the_wheels_stream(tmp_path: Path) -> None:
    wheel, tree = _installed(tmp_path)
    streams = wheel_streams([(wheel, _sha(wheel))], SITE)
    assert set(streams) == {f"{SITE}/pkg/table.txt"}  # the small file and metadata stay
    archive = tmp_path / "a.tar.gz"
    pack_tree(tree, archive, streams=streams)
    blob = archive.read_bytes()
    assert _raw_stream(wheel, "pkg/table.txt") in blob  # carried: not compressed again
    assert gzip.decompress(blob)  # every member is valid gzip, CRCs included
    out = _unpack(archive, tmp_path / "out")
    for path in (tree / SITE / "pkg").iterdir():
        assert (out / SITE / "pkg" / path.name).read_bytes() == path.read_bytes()
    with tarfile.open(archive) as tf:  # Python's reader too, every member
        names = tf.getnames()
    assert f"{SITE}/pkg/table.txt" in names and "bin/python3" in names
    # The carried member says its length and size like the others: the catalogue's consumer
    # cuts the archive at every member from their headers and unpacks the same files.
    assert (tree / SITE / "pkg" / "table.txt").stat().st_size in _member_sizes(blob)
    safe_extract(archive, tmp_path / "ours", "a.tar.gz")
    for path in (tree / SITE / "pkg").iterdir():
        assert (tmp_path / "ours" / SITE / "pkg" / path.name).read_bytes() == path.read_bytes()
    # The same inputs, any number of threads: the same bytes.
    again = tmp_path / "again.tar.gz"
    pack_tree(tree, again, streams=streams)
    assert again.read_bytes() == blob
    one = tmp_path / "one.tar.gz"
    with one.open("wb") as f:
        write_gzip_members(tar_stream(tree, streams=streams), f, threads=1)
    assert one.read_bytes() == blob


def test_a_changed_tree_file_is_compressed_from_the_tree(tmp_path: Path) -> None:
    wheel, tree = _installed(tmp_path)
    table = tree / SITE / "pkg" / "table.txt"
    data = bytearray(table.read_bytes())
    data[1000] ^= 0xFF  # same size, other content
    table.write_bytes(bytes(data))
    archive = tmp_path / "a.tar.gz"
    pack_tree(tree, archive, streams=wheel_streams([(wheel, _sha(wheel))], SITE))
    assert _raw_stream(wheel, "pkg/table.txt") not in archive.read_bytes()
    out = _unpack(archive, tmp_path / "out")
    assert (out / SITE / "pkg" / "table.txt").read_bytes() == bytes(data)


def test_a_wheel_that_is_not_the_verified_one_is_not_read(tmp_path: Path) -> None:
    wheel, tree = _installed(tmp_path)
    streams = wheel_streams([(wheel, _sha(wheel))], SITE)
    # The cached wheel's stream is tampered with after it was verified and installed: its
    # sha256 no longer matches, so none of its bytes may reach the archive.
    raw = _raw_stream(wheel, "pkg/table.txt")
    blob = wheel.read_bytes()
    at = blob.index(raw) + len(raw) // 2
    wheel.write_bytes(blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :])
    archive = tmp_path / "a.tar.gz"
    pack_tree(tree, archive, streams=streams)
    assert raw[len(raw) // 2 + 8 :] not in archive.read_bytes()
    out = _unpack(archive, tmp_path / "out")
    table = f"{SITE}/pkg/table.txt"
    assert (out / table).read_bytes() == (tree / table).read_bytes()


def test_the_later_wheel_owns_a_shared_path(tmp_path: Path) -> None:
    big = _text(2 * MIN_SIZE, 4)
    first = write_wheel(tmp_path / "w1", "one", "1.0", {"shared/data.txt": big})
    second = write_wheel(tmp_path / "w2", "two", "1.0", {"shared/data.txt": big[::-1]})
    streams = wheel_streams([(first, _sha(first)), (second, _sha(second))], SITE)
    assert streams[f"{SITE}/shared/data.txt"].wheel == second
    # A later wheel that stores the path uncompressed leaves no stream for it.
    stored = tmp_path / "w3" / "three-1.0-py3-none-any.whl"
    stored.parent.mkdir()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("shared/data.txt", big)
    streams = wheel_streams([(first, _sha(first)), (stored, _sha(stored))], SITE)
    assert f"{SITE}/shared/data.txt" not in streams


def test_a_file_over_the_largest_stream_is_compressed_again_in_blocks(tmp_path: Path) -> None:
    # One member is inflated by one thread: a library of 1 GB carried as the wheel's stream
    # kept a consumer's other cores idle while it came out. Up to `max_size` (the default
    # MAX_SIZE, 32 MiB; here 128 KiB, with 64 KiB blocks) a file is carried.
    chunk, cap, block = _text(MIN_SIZE, 5), 2 * MIN_SIZE, MIN_SIZE
    files = {"pkg/huge.bin": chunk * 2 + b"!", "pkg/edge.bin": (chunk * 2)[::-1]}
    wheel = write_wheel(tmp_path / "wheels", "pkg", "1.0", files)
    tree = tmp_path / "tree"
    for name, data in files.items():
        (tree / SITE / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / SITE / name).write_bytes(data)
    streams = wheel_streams([(wheel, _sha(wheel))], SITE, max_size=cap)
    assert set(streams) == {f"{SITE}/pkg/edge.bin"}  # exactly max_size bytes is carried
    assert set(wheel_streams([(wheel, _sha(wheel))], SITE)) == {f"{SITE}/{n}" for n in files}
    archive = tmp_path / "a.tar.gz"
    with archive.open("wb") as f:
        write_gzip_members(tar_stream(tree, streams=streams), f, block_size=block)
    blob = archive.read_bytes()
    assert _raw_stream(wheel, "pkg/edge.bin") in blob
    assert _raw_stream(wheel, "pkg/huge.bin") not in blob
    sizes = _member_sizes(blob)
    assert cap in sizes and max(s for s in sizes if s != cap) <= block
    safe_extract(archive, tmp_path / "ours", "a.tar.gz")
    for name, data in files.items():
        assert (tmp_path / "ours" / SITE / name).read_bytes() == data
