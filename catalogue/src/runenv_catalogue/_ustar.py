"""The inflated tar stream read entry by entry: a plain ustar header by `plain_header` (a
fraction of tarfile's time per entry, on the one thread that reads the entries), anything else
(PAX and GNU headers) by tarfile's own code, reading from `Stream`.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any


class Stream:
    """The inflated tar stream, read as tarfile's `TarInfo.fromtarfile` reads a `TarFile`:
    `fileobj.read`/`tell` and the attributes below (the same since Python 3.6). `waiting` is
    called before each wait for the next piece (the writer hands its files out then)."""

    encoding = "utf-8"
    errors = "surrogateescape"

    def __init__(self, pieces: Iterator[bytes], waiting: Callable[[], None]) -> None:
        self.pieces = pieces
        self.waiting = waiting
        self.view = memoryview(b"")
        self.pos = 0
        self.fileobj = self
        self.pax_headers: dict[str, str] = {}
        self.seen: dict[tuple[bytes, ...], tuple[int, ...]] = {}  # `plain_header`'s
        self.offset = 0

    def tell(self) -> int:
        return self.pos

    def _fill(self) -> bool:
        self.waiting()
        piece = next(self.pieces, None)
        if piece is None:
            return False
        self.view = memoryview(piece)
        return True

    def read(self, n: int) -> bytes:
        if len(self.view) >= n:
            out = bytes(self.view[:n])
            self.view = self.view[n:]
            self.pos += n
            return out
        return b"".join([bytes(piece) for piece in self.views(n)])

    def take(self, n: int) -> memoryview | None:
        """The next `n` bytes as one view, if the current piece holds them all (no copy);
        else None, and nothing is consumed."""
        view = self.view
        if len(view) < n:
            return None
        self.view = view[n:]
        self.pos += n
        return view[:n]

    def views(self, n: int) -> Iterator[memoryview]:
        """The next `n` bytes in pieces, without copying; fewer if the stream ends."""
        while n > 0:
            if not self.view and not self._fill():
                return
            piece = self.view[:n]
            self.view = self.view[len(piece) :]
            self.pos += len(piece)
            n -= len(piece)
            yield piece

    def skip(self, n: int) -> None:
        if len(self.view) >= n:
            self.view = self.view[n:]
            self.pos += n
            return
        for _ in self.views(n):
            pass


_tarfile: Any = tarfile  # the header errors and TarInfo's member processing: not in typeshed
END_OF_ARCHIVE: tuple[type[Exception], ...] = (
    _tarfile.EmptyHeaderError,
    _tarfile.EOFHeaderError,
)
SUPPORTED = frozenset(tarfile.SUPPORTED_TYPES)
# A ustar header's fields (POSIX.1-1988): name, mode, uid, gid, size, mtime, chksum, typeflag,
# linkname, magic+version, uname, gname, devmajor, devminor, prefix, padding.
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
# Distinct mode, owner, mtime and device fields kept per archive, at most (`plain_header`).
SEEN = 256
_PLAIN_TYPES = frozenset(
    (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
)


def byte_sum(block: bytes) -> int:
    """The sum of a header's 512 bytes, as `sum(block)` but in a tenth of its time: adler32's
    low half is 1 + the sum of the bytes modulo 65521, exact for 256 bytes (at most 65280)."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def plain_header(
    block: bytes, seen: dict[tuple[bytes, ...], tuple[int, ...]]
) -> tarfile.TarInfo | None:
    """The entry of a plain ustar header (a file, folder or link; octal numbers; a good
    unsigned checksum), as `tarfile.TarInfo.frombuf` reads it, in a fraction of its time;
    None for anything else (PAX and GNU headers, the end, a bad checksum): tarfile reads
    those. tests/test_unpack.py holds both equal. `seen` keeps the numbers of mode, owner,
    mtime and device fields read before: an archive's entries share a few of them."""
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, _, _, _, major, minor, prefix) = (
        _USTAR.unpack(block)
    )
    if kind not in _PLAIN_TYPES:
        return None
    shared = (mode, uid, gid, mtime, major, minor)
    try:  # octal digits, spaces around them, NULs after (else tarfile reads it): `tarfile.nti`
        numbers = seen.get(shared)
        if numbers is None:
            numbers = tuple([int(f.rstrip(b"\0 ") or b"0", 8) for f in shared])
            if len(seen) < SEEN:
                seen[shared] = numbers
        length = int(size.rstrip(b"\0 ") or b"0", 8)
        if int(chksum.rstrip(b"\0 "), 8) != 256 + byte_sum(block) - sum(chksum):
            return None
    except ValueError:
        return None
    info = tarfile.TarInfo(_text(name))
    info.mode, info.uid, info.gid, info.mtime, info.devmajor, info.devminor = numbers
    info.size = length
    info.type = kind
    if linkname[0]:
        info.linkname = _text(linkname)
    if kind == tarfile.AREGTYPE and info.name.endswith("/"):  # a V7 folder
        info.type = tarfile.DIRTYPE
    if info.type == tarfile.DIRTYPE:
        info.name = info.name.rstrip("/")
    if prefix[0]:
        info.name = f"{_text(prefix)}/{info.name}"
        if info.type == tarfile.DIRTYPE:
            info.name = info.name.rstrip("/")
    return info


def next_entry(stream: Stream) -> tarfile.TarInfo:
    """The next entry, as `tarfile.TarInfo.fromtarfile` reads it (with its PAX and GNU
    headers applied); its header errors at the end of the archive."""
    block = stream.read(tarfile.BLOCKSIZE)
    if len(block) == tarfile.BLOCKSIZE and not stream.pax_headers:
        info = plain_header(block, stream.seen)
        if info is not None:
            return info
    info = tarfile.TarInfo.frombuf(block, stream.encoding, stream.errors)
    info.offset = stream.pos - len(block)
    processed: tarfile.TarInfo = _tarfile.TarInfo._proc_member(info, stream)
    return processed
