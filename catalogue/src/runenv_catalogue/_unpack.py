"""Unpack a gzip tar stream into a new folder: its gzip members inflated on every core, the
tree written in order by one thread, every entry checked before it is written.

runenv's archives are gzip members that each say, in an extra header field (`RE`, written by
`runenv.artifact.pack`), their own length and the size they inflate to. So the members are found
without inflating anything: one thread reads the bytes in order (hashing them, in
`_provision`) and hands each member to a pool of inflating threads (zlib releases the GIL),
while the calling thread takes their output in order and writes the tree. A stream without
the field (an older catalogue's archive, another tool's gzip) is inflated by one thread, as
one stream of members. Memory stays bounded whatever the archive's size: at most
`2 * threads + 1` members are in flight, each with a few MiB of input and output queued, and
a member of any size is inflated and written in pieces.

The entries are checked as they come (`Planner`: the rules runenv's extraction applies too,
`_shared/tar_rules.py`), files are created without following symlinks,
and every symlink made is resolved at the end: nothing lands outside the folder.
"""

# The writer's hot loop uses str paths and os calls, not Path objects: Path parsing per entry
# is GIL time on the one thread that writes the tree.
# ruff: noqa: PTH101, PTH103, PTH108, PTH112, PTH118, PTH120, PTH211

from __future__ import annotations

import contextlib
import os
import queue
import struct
import tarfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from runenv_catalogue._errors import CatalogueError
from runenv_catalogue._shared.tar_rules import Planner
from runenv_catalogue._shared.tar_rules import check_symlinks as _check_symlinks

# The extra field in every member's header (runenv.artifact.pack.member_header):
# XLEN, subfield id `RE`, its length 16, the member's length and its inflated size.
MEMBER_FIELD = b"RE"
_HEAD = struct.Struct("<4s6xH2sHQQ")  # magic+method+flags, ..., XLEN, id, LEN, length, size
PIECE = 4 << 20  # the most a worker inflates in one call: the unit the writer is handed
WHOLE = 8 << 20  # a member that inflates to at most this is inflated in one call
_QUEUED = 4  # pieces queued per member, each way
# Inflating threads at most: one thread writes the tree, and beyond a few inflaters it is the
# bottleneck. With `2 * threads + 1` members in flight, each holding at most a `WHOLE` member
# (and its compressed bytes) or `_QUEUED` pieces each way, memory stays under ~150 MB.
MAX_THREADS = 4
_POLL = 0.2  # seconds between looks at the stop flag while blocked on a queue
_END = object()


class _Stopped(Exception):
    """The pipeline was stopped (an error elsewhere): this thread gives up."""


# --- finding and inflating the members -----------------------------------------------------


def member_info(head: bytes) -> tuple[int, int] | None:
    """(length, inflated size) from the start of a gzip member carrying runenv's extra field,
    or None when it does not (or `head` is too short to tell)."""
    if len(head) < _HEAD.size:
        return None
    magic, xlen, field, flen, length, size = _HEAD.unpack_from(head)
    if magic != b"\x1f\x8b\x08\x04" or xlen != 20 or field != MEMBER_FIELD or flen != 16:
        return None
    return (length, size) if length >= _HEAD.size + 10 else None


class _Chunks:
    """The source's chunks, for cutting into members: look ahead, take exact runs."""

    def __init__(self, source: Iterator[bytes]) -> None:
        self.source = source
        self.view = memoryview(b"")

    def peek(self, n: int) -> bytes:
        """The next `n` bytes (fewer at the end), not consumed."""
        while len(self.view) < n:
            chunk = next(self.source, None)
            if chunk is None:
                break
            self.view = memoryview(bytes(self.view) + chunk) if self.view else memoryview(chunk)
        return bytes(self.view[:n])

    def take(self, n: int | None) -> Iterator[memoryview]:
        """The next `n` bytes (all that is left if None) in pieces; fewer if the source ends."""
        left = n
        while left is None or left > 0:
            if not self.view:
                chunk = next(self.source, None)
                if chunk is None:
                    return
                self.view = memoryview(chunk)
            piece = self.view if left is None else self.view[:left]
            self.view = self.view[len(piece) :]
            if left is not None:
                left -= len(piece)
            yield piece


def _put(q: queue.Queue[Any], item: object, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            continue


class _Member:
    """One member (or, `size` None, the rest of a stream of members) on its way through a
    worker: compressed pieces in, inflated pieces out."""

    def __init__(self, size: int | None, shown: str) -> None:
        self.size = size
        self.shown = shown
        self.input: queue.Queue[Any] = queue.Queue(_QUEUED)
        self.output: queue.Queue[Any] = queue.Queue(_QUEUED)

    def inflate(self, stop: threading.Event) -> None:
        """The worker's part: inflate the pieces, check the member's CRC-32 and size (zlib
        does, in gzip mode) and, for a sized member, that it ends exactly where it said."""
        try:
            self._inflate(stop)
            _put(self.output, _END, stop)
        except _Stopped:
            pass
        except BaseException as exc:  # the writer re-raises it, in order
            if isinstance(exc, zlib.error):
                exc = CatalogueError(f"{self.shown}: cannot unpack: corrupt gzip data ({exc})")
            with contextlib.suppress(_Stopped):
                _put(self.output, exc, stop)

    def _inflate(self, stop: threading.Event) -> None:
        if self.size is not None and self.size <= WHOLE:
            self._inflate_whole(stop)
            return
        d = zlib.decompressobj(31)
        out = 0
        ended = False  # the current member's trailer is read (and checked)
        while True:
            item = _get(self.input, stop)
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            data = item
            while True:
                if ended:
                    if self.size is not None:  # one member, exactly
                        if data:
                            raise self._bad("is longer than its header says")
                        break
                    data = bytes(data).lstrip(b"\0")  # zero padding after a member, as gzip
                    if not data:
                        break
                    d, ended = zlib.decompressobj(31), False
                piece = d.decompress(data, PIECE)
                data = d.unconsumed_tail
                if piece:
                    out += len(piece)
                    if self.size is not None and out > self.size:
                        raise self._bad("inflates to more than its header says")
                    _put(self.output, piece, stop)
                if d.eof:
                    ended, data = True, d.unused_data
                elif not data and len(piece) < PIECE:  # all in, nothing held back
                    break
        if not ended:
            raise self._bad("is cut short")
        if self.size is not None and out != self.size:
            raise self._bad("inflates to less than its header says")

    def _inflate_whole(self, stop: threading.Event) -> None:
        """A member of known, moderate size in one call, into one buffer of that size: no
        growing and joining of output blocks, as a stream of calls has."""
        pieces = []
        while (item := _get(self.input, stop)) is not None:
            if isinstance(item, BaseException):
                raise item
            pieces.append(item)
        data = b"".join(pieces)
        del pieces
        try:
            out = zlib.decompress(data, 31, max(self.size or 0, 1))
        except zlib.error as exc:
            if "incomplete" in str(exc) or "truncated" in str(exc):
                raise self._bad("is cut short") from None
            raise
        if len(out) != self.size:
            raise self._bad("inflates to other than its header says")
        _put(self.output, out, stop)

    def _bad(self, what: str) -> CatalogueError:
        return CatalogueError(f"{self.shown}: cannot unpack: a gzip member {what}")


class _Pipeline:
    """Members read in order by one thread, inflated by `threads` workers, handed to the
    caller in order (`pieces`)."""

    def __init__(self, source: Iterator[bytes], threads: int, shown: str) -> None:
        self.source = source
        self.shown = shown
        self.stop = threading.Event()
        self.drain = False  # on stop, read the source to its end anyway (its verdict)
        self.verdict: BaseException | None = None  # the source's own error, if any
        self.members: queue.Queue[Any] = queue.Queue()  # bounded by `slots`
        self.slots = threading.Semaphore(2 * threads + 1)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="runenv-inflate")
        self.reader = threading.Thread(target=self._read, name="runenv-read", daemon=True)
        self.reader.start()

    def _acquire(self) -> None:
        while not self.slots.acquire(timeout=_POLL):
            if self.stop.is_set():
                raise _Stopped

    def _start(self, size: int | None) -> _Member:
        self._acquire()
        member = _Member(size, self.shown)
        self.pool.submit(member.inflate, self.stop)
        self.members.put(member)
        return member

    def _read(self) -> None:
        chunks = _Chunks(self.source)
        current: _Member | None = None
        try:
            while True:
                head = chunks.peek(_HEAD.size)
                if not head:
                    break
                info = member_info(head)
                current = self._start(None if info is None else info[1])
                for piece in chunks.take(None if info is None else info[0]):
                    _put(current.input, piece, self.stop)
                _put(current.input, None, self.stop)
                current = None
                if info is None:
                    break
            self.members.put(None)
        except _Stopped:
            if self.drain:
                try:
                    for _ in self.source:
                        pass
                except BaseException as exc:
                    self.verdict = exc
        except BaseException as exc:  # the source failed: its error comes in order
            self.verdict = exc
            if current is not None:  # its worker raises it, unless everything is stopping
                with contextlib.suppress(_Stopped):
                    _put(current.input, exc, self.stop)
            self.members.put(exc)

    def pieces(self) -> Iterator[bytes]:
        """The inflated stream, in order."""
        while True:
            member = _get(self.members, self.stop)
            if member is None:
                return
            if isinstance(member, BaseException):
                raise member
            while True:
                item = _get(member.output, self.stop)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
            self.slots.release()

    def close(self, *, drain: bool) -> BaseException | None:
        """Stop every thread (after the source is read to its end, if `drain`); the
        source's own error, if it failed."""
        self.drain = drain
        self.stop.set()
        self.reader.join()
        self.pool.shutdown(wait=True)
        return self.verdict


# --- writing the tree ----------------------------------------------------------------------


class _Stream:
    """The inflated tar stream, read as tarfile's `TarInfo.fromtarfile` reads a `TarFile`:
    `fileobj.read`/`tell` and the attributes below (the same since Python 3.6)."""

    encoding = "utf-8"
    errors = "surrogateescape"

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.view = memoryview(b"")
        self.pos = 0
        self.fileobj = self
        self.pax_headers: dict[str, str] = {}
        self.offset = 0

    def tell(self) -> int:
        return self.pos

    def _fill(self) -> bool:
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
        parts = []
        for piece in self.views(n):
            parts.append(bytes(piece))
        return b"".join(parts)

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
        for _ in self.views(n):
            pass


def _file_mode(mode: int) -> int:
    """tarfile's `data` filter: no high bits, no group/other write, owner reads and writes;
    no execute bits unless the owner's."""
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


_SUPPORTED = frozenset(tarfile.SUPPORTED_TYPES)
_tarfile: Any = tarfile  # the header errors below are not in typeshed
_END_OF_ARCHIVE: tuple[type[Exception], ...] = (
    _tarfile.EmptyHeaderError,
    _tarfile.EOFHeaderError,
)
_O_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _write_tree(stream: _Stream, dest: Path, shown: str) -> None:
    planner = Planner(shown)
    root = os.fspath(dest)
    links: list[str] = []
    folders: list[tuple[str, float]] = []
    fromtarfile: Any = tarfile.TarInfo.fromtarfile
    while True:
        try:
            info: tarfile.TarInfo = fromtarfile(stream)
        except _END_OF_ARCHIVE:  # zero blocks, or no more blocks
            break
        except tarfile.HeaderError as exc:
            raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
        data = info.size if info.isreg() or info.type not in _SUPPORTED else 0
        if info.issparse():
            raise CatalogueError(f"{shown}: cannot unpack {info.name!r}: a sparse file")
        checked = planner.check(info)
        if checked is None:
            stream.skip(-(-data // 512) * 512)
            continue
        rel, link = checked
        path = os.path.join(root, rel)
        if info.isdir():
            try:
                os.makedirs(path, exist_ok=True)
            except FileExistsError:
                what = f"{shown}: cannot unpack {info.name!r}: not a folder"
                raise CatalogueError(what) from None
            folders.append((path, info.mtime))
        elif info.issym():
            _parent(path)
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(info.linkname, path)
            links.append(rel)
        elif info.islnk():
            _parent(path)
            if os.path.lexists(path):
                os.unlink(path)
            os.link(os.path.join(root, link), path)
        else:
            _write_file(stream, path, info, data, shown)
        stream.skip(-data % 512)
    stream.skip(1 << 62)  # the rest: every member's CRC-32 is checked, the padding read
    _check_symlinks(dest, links, shown)
    for path, mtime in reversed(folders):  # after their contents, as tar and tarfile do
        os.utime(path, (mtime, mtime))


def _parent(path: str) -> None:
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)


def _write_file(stream: _Stream, path: str, info: tarfile.TarInfo, size: int, shown: str) -> None:
    try:
        fd = os.open(path, _O_FLAGS, 0o600)
    except FileNotFoundError:
        _parent(path)
        fd = os.open(path, _O_FLAGS, 0o600)
    try:
        written = 0
        for piece in stream.views(size):
            while piece:
                n = os.write(fd, piece)
                piece = piece[n:]
                written += n
        if written != size:
            raise CatalogueError(f"{shown}: cannot unpack {info.name!r}: the archive ends in it")
        mode = _file_mode(info.mode)
        if os.chmod in os.supports_fd:
            os.chmod(fd, mode)
        if os.utime in os.supports_fd:
            os.utime(fd, (info.mtime, info.mtime))
    finally:
        os.close(fd)
    if os.chmod not in os.supports_fd:
        os.chmod(path, mode)
    if os.utime not in os.supports_fd:
        os.utime(path, (info.mtime, info.mtime))


def unpack(source: Iterator[bytes], dest: Path, shown: str, *, threads: int | None = None) -> None:
    """Unpack the gzip tar stream `source` into the new folder `dest`, refusing anything that
    would escape it. An error the source raises (a checksum, a download) wins over the error
    its bytes caused here: on such an error the source is read to its end first, so a
    corrupt archive is reported as not the catalogue's rather than as bad gzip.
    """
    workers = threads or min(os.cpu_count() or 1, MAX_THREADS)
    dest.mkdir()
    pipeline = _Pipeline(source, workers, shown)
    try:
        _write_tree(_Stream(pipeline.pieces()), dest, shown)
    except (CatalogueError, tarfile.TarError, EOFError) as exc:
        verdict = pipeline.close(drain=True)
        if verdict is not None and verdict is not exc:
            raise verdict from None
        if isinstance(exc, CatalogueError):
            raise
        raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
    except BaseException:
        pipeline.close(drain=False)
        raise
    pipeline.close(drain=False)


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb", buffering=0) as f:
        while chunk := f.read(size):
            yield chunk


def safe_extract(archive: Path, dest: Path, shown: str) -> None:
    """Unpack the gzip tar file `archive` into the new folder `dest` (`unpack`)."""
    try:
        unpack(_file_chunks(archive), dest, shown)
    except OSError as exc:
        raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
