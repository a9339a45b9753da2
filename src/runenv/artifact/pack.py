"""Reproducible `.tar.gz` archives of a runtime tree, and their JSON manifests.

The same tree gives the same bytes, whoever builds it, wherever and whenever. The rules:

- **Entries**: the tree's contents at the archive root (`bin/python3`, not `python/bin/...`),
  no `./` entry. A directory comes before its contents; the children of a directory are
  sorted by the bytes of their names (what `tar --sort=name` does).
- **Times**: every entry's mtime is `$SOURCE_DATE_EPOCH` when set (the convention of
  https://reproducible-builds.org/specs/source-date-epoch/), else 315532800
  (1980-01-01T00:00:00Z: the earliest date ZIP can store, the fallback `wheel` uses too, and
  late enough that no tar warns of an "implausibly old time stamp"). No atime/ctime is stored.
- **Owners**: uid and gid 0, empty uname and gname.
- **Modes**: directories and files with any execute bit 0o755, other files 0o644, symlinks
  0o777. No setuid/setgid/sticky bits survive.
- **Links**: symlinks are kept as symlinks with their target text unchanged. Hard links are
  always stored as separate regular files, so the archive does not depend on whether the copy
  that produced the tree kept them linked. Sockets, FIFOs and devices are an error.
- **Format**: POSIX.1-2001 (PAX), the bytes `tarfile` writes: a plain ustar header (made by
  `_header` itself), plus a PAX header (by `tarfile`) only where ustar cannot hold a value (long
  or non-ASCII names, sizes of 8 GiB and more). Two zero blocks end the archive, padded to a
  multiple of 10240 bytes as `tar` does.
- **Compression**: gzip (RFC 1952) by libdeflate (the `deflate` package, a dependency): the tar
  stream is cut in 4 MiB blocks and each block is compressed on its own thread into its own
  gzip member (mtime 0, no file name, OS 255 so the host's OS does not show), the members
  concatenated in order. RFC 1952 allows a file of several members and every gzip reader
  (`gzip`, `tar`, Python's `gzip`/`tarfile`, libarchive) reads them as one stream. A file of
  64 KiB to 32 MiB that came unchanged out of a wheel is a member of its own made of the
  wheel's deflate stream (`runenv.artifact.wheel_streams`: not compressed again), the blocks
  around it cut short; a larger one is compressed in blocks like the rest, so no member holds
  more than one thread of a consumer can inflate in about 0.1 s. The output depends only on
  the input bytes (the wheels' among them), the level and the block size, never on the number
  of threads or their timing.

  Every member's header carries an extra field (FEXTRA, RFC 1952 2.3.1.1) with the subfield
  `RE` (`MEMBER_FIELD`): the member's own length in bytes, header to trailer, and the size it
  inflates to, both as 64-bit little-endian integers. A reader finds every member from these
  without inflating anything, so the catalogue's consumer inflates members on every core
  (`runenv_catalogue._unpack`); every gzip reader skips extra fields it does not know.

  Measured on the 3.12.10 variant's linux-x64 tree (396 MB of tar stream, 2 cores): libdeflate
  level 6, 2.3 s, 116.5 MB; `tar czf`, 16 s, 118.3 MB.

The sha256 and size of the archive are computed while it is written (no second read), and the
archive appears at its final path only when complete (`staged_file`).

"Same bytes" assumes the same deflate implementation: the `deflate` release runenv pins (its
libdeflate is bundled). The tar stream, and so the unpacked tree, never differs.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import stat
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

import deflate

from runenv._cache import staged_file
from runenv.artifact.wheel_streams import Stream, Verifier, member_body, read_exactly
from runenv.errors import BuildError

# Chosen by measurement (`python -m benchmarks pack TREE`): level 6 with libdeflate gives
# 116.5 MB in 2.3 s on the 3.12.10 tree, against `tar czf`'s 118.3 MB in 16 s.
DEFAULT_LEVEL = 6
# Members of 4 MiB: each costs an 18-byte header and a window that starts empty, small next to
# a 4 MiB block, and 4 MiB keeps both cores busy from about 10 MB of input.
MEMBER_SIZE = 4 << 20
DEFAULT_MTIME = 315532800  # 1980-01-01T00:00:00Z
# The extra subfield every member carries: its length and inflated size. The consumer
# (runenv_catalogue._members) reads the same layout: change both together.
MEMBER_FIELD = b"RE"
_EXTRA = struct.Struct("<H2sHQQ")  # XLEN, SI1 SI2, LEN, member length, inflated size
_FIXED = 10 + _EXTRA.size  # the header: the fixed 10 bytes and the extra field

_T = TypeVar("_T")
_R = TypeVar("_R")

_RECORDSIZE = 20 * tarfile.BLOCKSIZE


def source_date_epoch() -> int:
    """The mtime every entry gets: `$SOURCE_DATE_EPOCH` if set and valid, else 1980-01-01."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_MTIME
    try:
        epoch = int(value)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH={value!r} is not an integer") from None
    if epoch < 0:
        raise BuildError(f"SOURCE_DATE_EPOCH={value!r} is negative")
    return epoch


def pack_tree(
    root: Path,
    archive: Path,
    *,
    level: int = DEFAULT_LEVEL,
    streams: Mapping[str, Stream] | None = None,
) -> tuple[str, int]:
    """Pack the tree under `root` into the gzip tar `archive`; return its (sha256, size).

    `streams` (`wheel_streams`, by archive name) are the wheels' deflate streams a file may be
    carried as. `archive` appears only when complete; an error or a kill leaves at most a temp
    file.
    """
    if not 1 <= level <= 9:
        raise BuildError(f"gzip level must be 1..9, not {level}")
    if not root.is_dir():
        raise BuildError(f"cannot pack {root}: not a directory")
    mtime = source_date_epoch()
    with staged_file(archive) as tmp, tmp.open("wb", buffering=0) as out:
        chunks = tar_stream(root, mtime=mtime, streams=streams or {})
        return write_gzip_members(chunks, out, level=level)


def write_manifest(path: Path, manifest: Mapping[str, object]) -> None:
    """Write `manifest` as JSON (sorted keys, indent 2, trailing newline), atomically."""
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with staged_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --- the tar stream ------------------------------------------------------------------------


def tar_stream(
    root: Path, *, mtime: int = DEFAULT_MTIME, streams: Mapping[str, Stream] | None = None
) -> Iterator[bytes | memoryview | Stream]:
    """The uncompressed tar archive of the tree under `root`, as a sequence of byte chunks;
    a file's data is a wheel's `Stream` where that is proven to be its content."""
    written = 0
    verifier = Verifier()
    for rel, path, st in _walk(os.fspath(root), ""):
        if stat.S_ISDIR(st.st_mode):
            header = _header(rel, tarfile.DIRTYPE, 0o755, mtime)
        elif stat.S_ISLNK(st.st_mode):
            target = os.fspath(Path(path).readlink())
            header = _header(rel, tarfile.SYMTYPE, 0o777, mtime, linkname=target)
        elif stat.S_ISREG(st.st_mode):
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            header = _header(rel, tarfile.REGTYPE, mode, mtime, size=st.st_size)
        else:
            raise BuildError(f"cannot pack {path}: not a file, directory or symlink")
        written += len(header)
        yield header
        if stat.S_ISREG(st.st_mode):
            stream = streams.get(rel) if streams else None
            if stream is not None and verifier.proven(stream, path):
                yield stream
            else:
                yield from _file_chunks(path, st.st_size)
            written += st.st_size
            padding = -st.st_size % tarfile.BLOCKSIZE
            if padding:
                written += padding
                yield bytes(padding)
    end = 2 * tarfile.BLOCKSIZE
    end += -(written + end) % _RECORDSIZE
    yield bytes(end)


# The fixed end of a ustar header as tarfile writes it for runenv's entries: magic and version,
# empty uname and gname, no device numbers, no prefix, padding to 512 bytes.
_USTAR_END = tarfile.POSIX_MAGIC + bytes(32 + 32 + 8 + 8 + 155 + 12)
_USTAR_MAX = 8**11  # sizes and times up to 11 octal digits


def _header(
    name: str, kind: bytes, mode: int, mtime: int, *, size: int = 0, linkname: str = ""
) -> bytes:
    """The header `TarInfo.tobuf(PAX_FORMAT)` writes for an entry owned by uid/gid 0 with no
    user or group names: made here when plain ustar holds it (ASCII names of at most 100
    bytes, sizes and times below 8 GiB and year 2242), the common case, which tarfile's
    general code made 0.5 s of a pack's one GIL-bound thread; else by tarfile, with its PAX
    record. tests/test_pack.py holds both to the same bytes."""
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if name.isascii() and linkname.isascii():
        path, link = name.encode(), linkname.encode()
        if len(path) <= 100 and len(link) <= 100 and size < _USTAR_MAX and mtime < _USTAR_MAX:
            head = b"".join(
                (
                    path.ljust(100, b"\0"),
                    b"%07o\0" % (mode & 0o7777),
                    b"0000000\0" * 2,  # uid, gid
                    b"%011o\0%011o\0" % (size, mtime),
                    b" " * 8,  # the checksum counts its own field as spaces
                    kind,
                    link.ljust(100, b"\0"),
                    _USTAR_END,
                )
            )
            return head[:148] + b"%06o\0" % sum(head) + head[155:]
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, linkname
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _walk(top: str, prefix: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(archive name, path, lstat) of everything under `top`, parents first, names sorted."""
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        rel = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        yield rel, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(entry.path, rel + "/")


def _file_chunks(path: str, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the file at `path`; a file that changes size is an error."""
    with open(path, "rb", buffering=0) as f:  # noqa: PTH123 - a str from scandir, per file
        yield from read_exactly(f, size, f"cannot pack {path}: it shrank while being read")
        if f.read(1):
            raise BuildError(f"cannot pack {path}: it grew while being read")


# --- parallel gzip -------------------------------------------------------------------------


def _blocks(chunks: Iterator[bytes | memoryview | Stream], size: int) -> Iterator[bytes | Stream]:
    """Re-cut a stream of chunks into blocks of exactly `size` bytes; a block is cut short
    where a wheel's `Stream` comes, which passes through in its place."""
    buf = bytearray()
    for chunk in chunks:
        if isinstance(chunk, Stream):
            if buf:
                yield bytes(buf)
                buf = bytearray()
            yield chunk
            continue
        view = memoryview(chunk)
        if buf:
            take = size - len(buf)
            buf += view[:take]
            view = view[take:]
            if len(buf) < size:
                continue
            yield bytes(buf)
            buf = bytearray()
        while len(view) >= size:
            yield bytes(view[:size])
            view = view[size:]
        buf += view
    if buf:
        yield bytes(buf)


def _in_order(func: Callable[[_T], _R], items: Iterable[_T], threads: int | None) -> Iterator[_R]:
    """`func` over `items` on threads, results in input order, with a bounded read-ahead
    (enough to keep every thread busy, no more in memory)."""
    workers = threads or os.cpu_count() or 1
    pending: collections.deque[Future[_R]] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runenv-gzip") as pool:
        try:
            for item in items:
                pending.append(pool.submit(func, item))
                while len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class _Sink:
    """Writes bytes to a file while hashing and counting them (no second read of the archive)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def emit(self, data: bytes | bytearray | memoryview) -> None:
        self.digest.update(data)
        view = memoryview(data)
        while view:  # a raw file may write less than asked
            n = self.out.write(view)
            if n is None:  # a non-blocking stream had no room: never for files
                raise BuildError("archive output would block")
            view = view[n:]
        self.size += len(data)


def member_header(length: int, size: int, xfl: int = 0) -> bytes:
    """The header of a gzip member of `length` bytes in all that inflates to `size` bytes:
    mtime 0, no name, OS 255, and the `MEMBER_FIELD` extra field saying both."""
    fixed = b"\x1f\x8b\x08\x04\x00\x00\x00\x00" + bytes((xfl, 255))
    return fixed + _EXTRA.pack(_EXTRA.size - 2, MEMBER_FIELD, 16, length, size)


def write_gzip_members(
    chunks: Iterator[bytes | memoryview | Stream],
    out: BinaryIO,
    *,
    level: int = DEFAULT_LEVEL,
    block_size: int = MEMBER_SIZE,
    threads: int | None = None,
) -> tuple[str, int]:
    """Write `chunks` to `out` as gzip members of `block_size` input bytes each, compressed by
    libdeflate on threads (it releases the GIL), a wheel's `Stream` as it is, each with its
    `member_header`; return (sha256, size)."""
    compress = deflate.gzip_compress

    def work(block: bytes | Stream) -> tuple[bytes, memoryview] | Stream:
        if isinstance(block, Stream):
            return block
        # libdeflate's member with its 10-byte header replaced by one with the extra field.
        whole = compress(block, level)
        body = memoryview(whole)[10:]
        return member_header(_FIXED + len(body), len(block), whole[8]), body

    def emit(done: tuple[bytes, memoryview] | Stream) -> None:
        if isinstance(done, Stream):
            sink.emit(member_header(_FIXED + done.compressed_size + 8, done.size))
            for piece in member_body(done):
                sink.emit(piece)
        else:
            sink.emit(done[0])
            sink.emit(done[1])

    sink = _Sink(out)
    blocks = _blocks(chunks, block_size)
    for done in _in_order(work, blocks, threads):
        emit(done)
    if sink.size == 0:  # an empty input still makes a valid gzip file
        emit(work(b""))
    return sink.digest.hexdigest(), sink.size
