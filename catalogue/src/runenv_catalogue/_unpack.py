"""Unpack a gzip tar stream into a new folder: its gzip members inflated on every core, its
entries read and checked in order by one thread, its files written by several.

runenv's archives are gzip members that each say, in an extra header field (`RE`, written by
`runenv.artifact.pack`), their own length and the size they inflate to. So the members are found
without inflating anything: one thread reads the bytes in order (hashing them, in
`_provision`) and hands the members to a pool of inflating threads (zlib releases the GIL;
consecutive small members go as one job of about `GROUP` bytes), while the calling thread
takes their output in order, reads the headers (a plain ustar header by `_plain_header`,
anything else by tarfile), checks each entry, makes its folders and links, and hands the files
to writing threads in batches: views of the inflated pieces, no copy. Files are independent
once their folder exists, and creating one is mostly the kernel's work, which the threads
overlap. A path written a second time and a hard link first wait for every file handed out
before them, so the tree is the one writing the entries one by one in order gives (what
`tar xzf` gives). A stream without the field (an older catalogue's archive, another tool's
gzip) is inflated by one thread, as one stream of members.

Memory stays bounded whatever the archive's size: at most `2 * threads + 1` jobs are in
flight, each with a few MiB of input and output queued (a member of any size is inflated in
pieces), and at most `2 * writers` batches of files are out, each at most about 1 MiB of files
and one file of at most 8 MiB; a larger file that spans pieces is written by the reading
thread as its pieces come.

The entries are checked as they come (`Planner`: the rules runenv's extraction applies too,
`_shared/tar_rules.py`), files are created new (`O_EXCL`, never through a symlink), and every
symlink made is resolved at the end: nothing lands outside the folder.
"""

# The hot loops use str paths and os calls, not Path objects: Path parsing per entry is GIL
# time on the one thread that reads the entries.
# ruff: noqa: PTH101, PTH102, PTH103, PTH108, PTH112, PTH118, PTH211

from __future__ import annotations

import collections
import contextlib
import os
import queue
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
# Consecutive members of at most `WHOLE` are inflated as one job until they inflate to this
# much: most of a runtime's members are a wheel's file of 64 KiB to 1 MiB, and a job per
# member spent more time handing members between threads than inflating them.
GROUP = 4 << 20
# Inflating threads at most: one thread writes the tree, and beyond a few inflaters it is the
# bottleneck. With `2 * threads + 1` members in flight, each holding at most a `WHOLE` member
# (and its compressed bytes) or `_QUEUED` pieces each way, memory stays under ~150 MB.
MAX_THREADS = 4
# Writing threads at least: creating a file is mostly the kernel's work (and, on a busy disk,
# waiting), which threads overlap even on one core.
WRITERS = 2
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

    def __init__(
        self, size: int | None, shown: str, group: list[tuple[bytes, int]] | None = None
    ) -> None:
        self.size = size
        self.shown = shown
        self.group = group  # whole members read already: (bytes, inflated size) each
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
        if self.group is not None:
            # One output item for the whole group: its members' outputs, in order.
            _put(self.output, [self._whole(data, size) for data, size in self.group], stop)
            return
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
        _put(self.output, self._whole(data, self.size or 0), stop)

    def _whole(self, data: bytes, size: int) -> bytes:
        try:
            out = zlib.decompress(data, 31, max(size, 1))
        except zlib.error as exc:
            if "incomplete" in str(exc) or "truncated" in str(exc):
                raise self._bad("is cut short") from None
            raise
        if len(out) != size:
            raise self._bad("inflates to other than its header says")
        return out

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

    def _start(self, size: int | None, group: list[tuple[bytes, int]] | None = None) -> _Member:
        """A job for the inflating threads: one member (its bytes to come on its input), the
        rest of a stream without member fields (`size` None), or a `group` of whole members
        read already (`size` their inflated size)."""
        self._acquire()
        member = _Member(size, self.shown, group)
        self.pool.submit(member.inflate, self.stop)
        self.members.put(member)
        return member

    def _read(self) -> None:
        chunks = _Chunks(self.source)
        current: _Member | None = None
        group: list[tuple[bytes, int]] = []
        grouped = 0  # the group's inflated size
        try:
            while True:
                head = chunks.peek(_HEAD.size)
                info = member_info(head) if head else None
                if info is not None and info[1] <= WHOLE:
                    group.append((b"".join(chunks.take(info[0])), info[1]))
                    grouped += info[1]
                    if grouped < GROUP:
                        continue
                if group:
                    self._start(grouped, group)
                    group, grouped = [], 0
                if not head:
                    break
                if info is not None and info[1] <= WHOLE:
                    continue
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
                if isinstance(item, list):  # a group's members
                    yield from item
                else:
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


# --- reading the tar stream ----------------------------------------------------------------


class _Stream:
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
_END_OF_ARCHIVE: tuple[type[Exception], ...] = (
    _tarfile.EmptyHeaderError,
    _tarfile.EOFHeaderError,
)
_SUPPORTED = frozenset(tarfile.SUPPORTED_TYPES)
# A ustar header's fields (POSIX.1-1988): name, mode, uid, gid, size, mtime, chksum, typeflag,
# linkname, magic+version, uname, gname, devmajor, devminor, prefix, padding.
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
_PLAIN_TYPES = frozenset(
    (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
)


def _byte_sum(block: bytes) -> int:
    """The sum of a header's 512 bytes, as `sum(block)` but in a tenth of its time: adler32's
    low half is 1 + the sum of the bytes modulo 65521, exact for 256 bytes (at most 65280)."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _plain_header(block: bytes) -> tarfile.TarInfo | None:
    """The entry of a plain ustar header (a file, folder or link; octal numbers; a good
    unsigned checksum), as `tarfile.TarInfo.frombuf` reads it, in a fraction of its time;
    None for anything else (PAX and GNU headers, the end, a bad checksum): tarfile reads
    those. tests/test_unpack.py holds both equal."""
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, _, _, _, major, minor, prefix) = (
        _USTAR.unpack(block)
    )
    if kind not in _PLAIN_TYPES:
        return None
    try:  # octal digits, spaces around them, NULs after (else tarfile reads it): `tarfile.nti`
        numbers = [int(f.rstrip(b"\0 ") or b"0", 8) for f in (mode, uid, gid, size, mtime)]
        major_minor = [int(f.rstrip(b"\0 ") or b"0", 8) for f in (major, minor)]
        if int(chksum.rstrip(b"\0 "), 8) != 256 + _byte_sum(block) - sum(chksum):
            return None
    except ValueError:
        return None
    info = tarfile.TarInfo(_text(name))
    info.mode, info.uid, info.gid, info.size, info.mtime = numbers
    info.devmajor, info.devminor = major_minor
    info.type = kind
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


def _next_entry(stream: _Stream) -> tarfile.TarInfo:
    """The next entry, as `tarfile.TarInfo.fromtarfile` reads it (with its PAX and GNU
    headers applied); its header errors at the end of the archive."""
    block = stream.read(tarfile.BLOCKSIZE)
    if len(block) == tarfile.BLOCKSIZE and not stream.pax_headers:
        info = _plain_header(block)
        if info is not None:
            return info
    info = tarfile.TarInfo.frombuf(block, stream.encoding, stream.errors)
    info.offset = stream.pos - len(block)
    processed: tarfile.TarInfo = _tarfile.TarInfo._proc_member(info, stream)
    return processed


# --- writing the tree ----------------------------------------------------------------------


def _file_mode(mode: int) -> int:
    """tarfile's `data` filter: no high bits, no group/other write, owner reads and writes;
    no execute bits unless the owner's."""
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _umask() -> int | None:
    """The process's umask, read without changing it (Linux's /proc); None where it cannot
    be (then every file's mode is set after its creation)."""
    try:
        with open("/proc/self/status", "rb") as f:  # noqa: PTH123
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


_O_NEW = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL  # a new file, never one (or a symlink) already there
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_BY_FD = os.chmod in os.supports_fd and os.utime in os.supports_fd
# A batch of files handed to a writing thread: this many, or this many bytes, at most. Small
# enough to keep every thread busy, large enough that handing them out costs nothing.
_BATCH_FILES = 64
_BATCH_BYTES = 1 << 20
# A file whose bytes span pieces is handed out as its pieces if it is at most this large,
# else written by the calling thread as its pieces come (memory stays bounded).
_SPANNING = 8 << 20

# A new file: its path, its bytes (one view, or the views of the pieces it spans), its mode,
# its mtime and whether its mode must be set after its creation (the umask took bits of it).
_Job = tuple[str, "memoryview | list[memoryview]", int, float, bool]


def _write_files(jobs: list[_Job]) -> None:
    """A writing thread's part: create each file (never following or replacing anything),
    write its bytes, set its mode and mtime."""
    for path, data, mode, mtime, chmod in jobs:
        fd = os.open(path, _O_NEW, mode)
        try:
            if isinstance(data, memoryview):
                _write_all(fd, data)
            else:
                for view in data:
                    _write_all(fd, view)
            if _BY_FD:
                if chmod:
                    os.chmod(fd, mode)
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        if not _BY_FD:
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


class _Tree:
    """Writes the entries, in archive order, into the new folder `root`, every entry checked
    first (`Planner`). The calling thread makes folders and links; the files' bytes (views
    of the inflated pieces, no copy) go in batches to `threads` writing threads, since
    files are independent once their folder exists. A path written twice, and a hard link,
    first wait for every file handed out before them: the tree is the one writing the
    entries one by one in order gives."""

    def __init__(self, root: str, shown: str, threads: int) -> None:
        self.root = root
        self.shown = shown
        self.planner = Planner(shown)
        self.seen: set[str] = set()  # every path written
        self.made: set[str] = {""}  # folders known to be there
        self.links: list[str] = []  # symlinks made, resolved at the end
        self.folders: list[tuple[str, float]] = []  # and their mtimes, set at the end
        self.umask = _umask()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="runenv-write")
        self.limit = 2 * threads  # batches handed out and not done, at most
        self.pending: collections.deque[Future[None]] = collections.deque()
        self.batch: list[_Job] = []
        self.batch_bytes = 0

    def write(self, stream: _Stream) -> None:
        """Write every entry of `stream`, then read it to its end (every member checked)."""
        planner, root, shown = self.planner, self.root, self.shown
        under = os.path.join(root, "")  # + a clean relative path: os.path.join's result
        while True:
            try:
                info = _next_entry(stream)
            except _END_OF_ARCHIVE:  # zero blocks, or no more blocks
                break
            except tarfile.HeaderError as exc:
                raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
            kind = info.type
            data = info.size if info.isreg() or kind not in _SUPPORTED else 0
            if info.issparse():
                raise CatalogueError(f"{shown}: cannot unpack {info.name!r}: a sparse file")
            checked = planner.check(info)
            if checked is None:
                stream.skip(-(-data // 512) * 512)
                continue
            rel, link = checked
            path = under + rel
            again = rel in self.seen
            if again or link:  # in order with the files handed out before it
                self.hand_out()
                self.wait()
            self.seen.add(rel)
            if kind == tarfile.DIRTYPE:
                self.folder(path, rel, info)
            else:
                parent = rel.rpartition("/")[0]
                if parent not in self.made:
                    os.makedirs(os.path.join(root, parent), exist_ok=True)
                    self.made.add(parent)
                if again and os.path.lexists(path):
                    os.unlink(path)  # as tar does: a new file, a hard link to it untouched
                if kind == tarfile.SYMTYPE:
                    os.symlink(info.linkname, path)
                    self.links.append(rel)
                elif kind == tarfile.LNKTYPE:
                    os.link(os.path.join(root, link), path)
                else:
                    self.file(stream, path, info, data)
            stream.skip(-data % 512)
        stream.skip(1 << 62)  # the rest: every member's CRC-32 is checked, the padding read
        self.hand_out()
        self.wait()
        _check_symlinks(Path(root), self.links, shown)
        for path, mtime in reversed(self.folders):  # after their contents, as tar does
            os.utime(path, (mtime, mtime))

    def folder(self, path: str, rel: str, info: tarfile.TarInfo) -> None:
        try:
            os.mkdir(path)
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            if not os.path.isdir(path):
                what = f"{self.shown}: cannot unpack {info.name!r}: not a folder"
                raise CatalogueError(what) from None
        self.made.add(rel)
        self.folders.append((path, info.mtime))

    def file(self, stream: _Stream, path: str, info: tarfile.TarInfo, size: int) -> None:
        mode = _file_mode(info.mode)
        chmod = self.umask is None or bool(mode & self.umask)
        data: memoryview | list[memoryview] | None = stream.take(size)
        if data is None and size <= _SPANNING:
            data = list(stream.views(size))
            if sum(len(view) for view in data) != size:
                raise self._ends_in(info)
        if data is None:  # large, and across pieces: written here as it comes
            self.write_here(stream, path, info, size, mode, chmod)
            return
        self.batch.append((path, data, mode, info.mtime, chmod))
        self.batch_bytes += size
        if len(self.batch) >= _BATCH_FILES or self.batch_bytes >= _BATCH_BYTES:
            self.hand_out()

    def write_here(
        self, stream: _Stream, path: str, info: tarfile.TarInfo, size: int, mode: int, chmod: bool
    ) -> None:
        self.hand_out()  # the batch so far goes on while this thread writes
        written = 0
        fd = os.open(path, _O_NEW, mode)
        try:
            for view in stream.views(size):
                _write_all(fd, view)
                written += len(view)
            if written != size:
                raise self._ends_in(info)
            if _BY_FD:
                if chmod:
                    os.chmod(fd, mode)
                os.utime(fd, (info.mtime, info.mtime))
        finally:
            os.close(fd)
        if not _BY_FD:
            os.chmod(path, mode)
            os.utime(path, (info.mtime, info.mtime))

    def _ends_in(self, info: tarfile.TarInfo) -> CatalogueError:
        return CatalogueError(f"{self.shown}: cannot unpack {info.name!r}: the archive ends in it")

    def hand_out(self) -> None:
        """The batch so far to a writing thread (waiting while `limit` batches are out)."""
        pending = self.pending
        while pending and pending[0].done():
            pending.popleft().result()  # a writing thread's error, raised here
        if not self.batch:
            return
        while len(pending) >= self.limit:
            pending.popleft().result()
        pending.append(self.pool.submit(_write_files, self.batch))
        self.batch, self.batch_bytes = [], 0

    def wait(self) -> None:
        """Until every batch handed out is written; the first error of one, raised."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Stop: batches not started are dropped, running ones finish (nothing writes into
        the folder after this returns)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def unpack(source: Iterator[bytes], dest: Path, shown: str, *, threads: int | None = None) -> None:
    """Unpack the gzip tar stream `source` into the new folder `dest`, refusing anything that
    would escape it. An error the source raises (a checksum, a download) wins over the error
    its bytes caused here: on such an error the source is read to its end first, so a
    corrupt archive is reported as not the catalogue's rather than as bad gzip.
    """
    workers = threads or min(os.cpu_count() or 1, MAX_THREADS)
    dest.mkdir()
    pipeline = _Pipeline(source, workers, shown)
    tree = _Tree(os.fspath(dest), shown, max(workers, WRITERS))
    try:
        try:
            tree.write(_Stream(pipeline.pieces(), tree.hand_out))
        finally:
            tree.close()
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
