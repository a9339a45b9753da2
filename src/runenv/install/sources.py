"""Wheels as installer sources: opened once, and grouped so that no two groups write one path.

Wheels are installed on parallel threads; wheels that would write the same path are put in one
group and installed one after the other, in the order given, so the result never depends on
thread timing (the later wheel wins, as with pip).
"""

from __future__ import annotations

import posixpath
import struct
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import deflate
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from installer.utils import parse_entrypoints

from runenv.errors import BuildError
from runenv.install.layout import Layout
from runenv.install.scripts import script_stem

if TYPE_CHECKING:
    from installer.sources import WheelContentElement


# Deflated entries up to this size are inflated whole by libdeflate, 2.5x zlib's speed (0.37 s
# against 0.95 s for the reference workload's wheels), their CRC-32 checked as zipfile does;
# larger ones stream through zipfile. Memory stays bounded whatever the wheel: at most one such
# entry and its compressed bytes per image thread (3 on 2 cores), read out in chunks (`_Whole`).
WHOLE_ENTRY = 64 << 20

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


class WheelSource(WheelFile):
    """A `WheelFile` that tells the destination which RECORD row it is installing."""

    def __init__(self, f: zipfile.ZipFile, path: Path) -> None:
        super().__init__(f)
        self.zip = f
        self.path = path
        self.current: tuple[str, str, str] | None = None
        self._raw: BinaryIO | None = None

    def get_contents(self) -> Iterator[WheelContentElement]:
        for record, stream, executable in super().get_contents():
            self.current = record
            whole = self._inflated(record[0])
            yield record, stream if whole is None else cast("BinaryIO", _Whole(whole)), executable
            self.current = None

    def _inflated(self, name: str) -> bytearray | None:
        """The entry's bytes inflated by libdeflate, or None to let zipfile read it."""
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            return None
        if (
            info.compress_type != zipfile.ZIP_DEFLATED
            or info.flag_bits & 0x1  # encrypted
            or info.file_size > WHOLE_ENTRY
        ):
            return None
        if self._raw is None:
            self._raw = self.path.open("rb")
        start = local_data_offset(self._raw, info.header_offset)
        if start is None:
            return None
        self._raw.seek(start)
        raw = self._raw.read(info.compress_size)
        try:
            data = deflate.deflate_decompress(raw, info.file_size)
        except deflate.DeflateError:
            data = bytearray()
        del raw
        if len(data) != info.file_size or deflate.crc32(data) != info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")  # zipfile's own words
        return data

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self.zip.close()


class _Whole:
    """The reading end of an inflated entry: chunks of it, without a copy of the whole."""

    def __init__(self, data: bytearray) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(len(self._view), self._at + size)
        chunk = bytes(self._view[self._at : end])
        self._at = end
        return chunk

    def close(self) -> None:
        self._view.release()


def open_wheel(wheel: Path) -> WheelSource:
    """Open `wheel`, or fail naming it."""
    try:
        f = zipfile.ZipFile(wheel)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot install {wheel.name}: {exc}") from None
    for name in f.namelist():
        # installer refuses these too, but with a message that names neither (its
        # os.path.commonpath raises "Can't mix absolute and relative paths").
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            f.close()
            raise BuildError(
                f"cannot install {wheel.name}: entry {name!r} is an absolute path or leaves the "
                "install folder: the wheel is broken or hostile, do not use it"
            )
    return WheelSource(f, wheel)


def clash_groups(sources: Sequence[WheelSource], layout: Layout) -> list[list[int]]:
    """Wheel indexes in groups that share no path, each group in the given order."""
    parent = list(range(len(sources)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, source in enumerate(sources):
        try:
            paths = _dest_paths(source, layout)
        except (InstallerError, ValueError, KeyError, AssertionError) as exc:
            raise BuildError(f"cannot install {source.path.name}: {exc}") from None
        for path in paths:
            j = owner.setdefault(path, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(sources)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _dest_paths(source: WheelSource, layout: Layout) -> set[str]:
    """Every path the wheel will write (case-folded for Windows), to find clashing wheels."""
    lib = layout.schemes["purelib"]
    data_dir = source.data_dir + "/"
    paths: set[str] = set()
    for name in source.zip.namelist():
        if name.endswith("/"):
            continue
        if name.startswith(data_dir):
            scheme, _, rest = name[len(data_dir) :].partition("/")
            base = layout.schemes.get(scheme, lib)
            if scheme == "scripts":
                rest = script_stem(rest)
            paths.add(posixpath.join(base, rest))
        else:
            paths.add(posixpath.join(lib, name))
    try:
        text = source.read_dist_info("entry_points.txt")
    except (KeyError, ValueError):
        text = ""
    for script, *_ in parse_entrypoints(text) if text else ():
        paths.add(posixpath.join(layout.schemes["scripts"], script_stem(script)))
    return {p.lower() for p in paths} if layout.windows else paths


def local_data_offset(f: BinaryIO, header_offset: int) -> int | None:
    """Where the data of the zip entry whose local header is at `header_offset` starts (after
    the header's own name and extra field, which may differ from the central directory's);
    None if no local header is there."""
    f.seek(header_offset)
    head = f.read(_LOCAL_HEADER.size)
    if len(head) != _LOCAL_HEADER.size:
        return None
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(head)
    if signature != b"PK\x03\x04":
        return None
    return header_offset + _LOCAL_HEADER.size + int(name_len) + int(extra_len)
