"""Deflate streams of wheel entries, which the archive carries as they are.

A wheel is a zip; its large files are stored deflated, each as a complete raw deflate stream,
and a gzip member is a raw deflate stream between a 10-byte header and its CRC-32 and size.
So a tree file that came unchanged out of a wheel can go into the archive as one gzip member
made of the wheel's own bytes, instead of being compressed again (`runenv.artifact.pack`): on the
reference workload 471 files, 219 MB of its 337 MB tree, 2.6 s less CPU, 0.8 MB more archive.
Files over `MAX_SIZE` are the exception: they are compressed again, in the archive's blocks,
so that a consumer inflates them on every core: on the atls variant, 20 files, 4.9 GB of its
6.0 GB tree, and its install took 32.9-34.6 s instead of 39.2 s (2 cores, `tar xzf` 71.7 s).

A stream is used only when both ends are proven: the wheel's sha256 is the one its build
verified (checked once per wheel, when its first stream is used) and the tree file's CRC-32 and
size are those the wheel records for the entry. Anything else (a file changed after install, a
script rewritten, an entry stored or encrypted) is compressed from the tree as usual.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import deflate

from runenv.errors import BuildError
from runenv.install.sources import local_data_offset

# Smaller files stay in the 4 MiB blocks: each stream used is a member of its own, and the
# tar headers between two of them a small member too, compressed without the context before.
MIN_SIZE = 64 << 10
# Larger files are compressed again, in the 4 MiB blocks, because one member is inflated by
# one thread: a 32 MiB member is about 0.1 s of one core, about what the consumer's other
# workers need to fill the members it lets them run ahead, and no file of the reference
# workload (the largest: 25 MB) is larger; torch's 1 GB library as one member left all cores
# but one idle for seconds.
MAX_SIZE = 32 << 20
_READ = 1 << 20


@dataclass(frozen=True)
class Stream:
    """Where one wheel entry's deflate stream lies, and what it inflates to."""

    wheel: Path
    wheel_sha256: str
    entry: str
    data_offset: int  # past the entry's local header
    compressed_size: int
    size: int
    crc32: int


def wheel_streams(
    wheels: Iterable[tuple[Path, str]],
    site_packages: str,
    *,
    min_size: int = MIN_SIZE,
    max_size: int = MAX_SIZE,
) -> dict[str, Stream]:
    """Archive name (`lib/python3.12/site-packages/numpy/...so`) -> stream, for each deflated
    entry of `min_size` to `max_size` bytes of each (wheel, sha256), installed in that order: a
    later wheel's entry replaces an earlier one's, as its file does in the tree."""
    streams: dict[str, Stream] = {}
    for wheel, sha256 in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf, wheel.open("rb") as raw:
                for info in zf.infolist():
                    name = f"{site_packages}/{info.filename}"
                    start = None
                    if (
                        info.compress_type == zipfile.ZIP_DEFLATED
                        and not info.flag_bits & 0x1  # encrypted
                        and min_size <= info.file_size <= max_size
                        and not info.is_dir()
                    ):
                        start = local_data_offset(raw, info.header_offset)
                    if start is None:
                        streams.pop(name, None)
                        continue
                    streams[name] = Stream(
                        wheel,
                        sha256,
                        info.filename,
                        start,
                        info.compress_size,
                        info.file_size,
                        info.CRC,
                    )
        except (OSError, zipfile.BadZipFile) as exc:
            raise BuildError(f"{wheel.name}: cannot read: {exc}") from None
    return streams


class Verifier:
    """Decides, thread-safely, whether a stream may stand for a tree file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wheels: dict[Path, bool] = {}

    def proven(self, stream: Stream, tree_file: str) -> bool:
        """Whether the file at `tree_file` is what `stream` inflates to, in the verified wheel."""
        return self._wheel_ok(stream) and _same_content(tree_file, stream)

    def _wheel_ok(self, stream: Stream) -> bool:
        with self._lock:  # one hash per wheel, whichever thread asks first
            known = self._wheels.get(stream.wheel)
            if known is None:
                known = self._wheels[stream.wheel] = _sha256(stream.wheel) == stream.wheel_sha256
            return known


def read_exactly(f: BinaryIO, size: int, short: str) -> Iterator[bytes]:
    """The next `size` bytes of `f`, in chunks; a BuildError saying `short` if it ends first."""
    left = size
    while left:
        chunk = f.read(min(left, _READ))
        if not chunk:
            raise BuildError(short)
        left -= len(chunk)
        yield chunk


def member_body(stream: Stream) -> Iterable[bytes]:
    """The gzip member carrying `stream`, less its header (`runenv.artifact.pack` writes that): the
    wheel's deflate bytes read in chunks, then the CRC-32 and size trailer."""
    with stream.wheel.open("rb") as f:
        f.seek(stream.data_offset)
        short = f"{stream.wheel.name}: shorter than its entry {stream.entry}"
        yield from read_exactly(f, stream.compressed_size, short)
    yield struct.pack("<II", stream.crc32, stream.size & 0xFFFFFFFF)


def _same_content(path: str, stream: Stream) -> bool:
    crc, size = 0, 0
    try:
        with open(path, "rb", buffering=0) as f:  # noqa: PTH123
            while chunk := f.read(_READ):
                crc = deflate.crc32(chunk, crc)
                size += len(chunk)
    except OSError:
        return False
    return size == stream.size and crc == stream.crc32


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb", buffering=0) as f:
            while chunk := f.read(_READ):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
