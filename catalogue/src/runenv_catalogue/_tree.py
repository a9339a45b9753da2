"""The tree written from the tar stream's entries, in archive order, each checked first
(`Planner`): folders and links by the calling thread, files in batches by writing threads
(`_files`).
"""

# The hot loops use str paths and os calls, not Path objects: Path parsing per entry is GIL
# time on the one thread that reads the entries.
# ruff: noqa: PTH102, PTH103, PTH108, PTH112, PTH118, PTH211

from __future__ import annotations

import collections
import os
import tarfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from runenv_catalogue import _files, _ustar
from runenv_catalogue._errors import CatalogueError
from runenv_catalogue._shared import tar_rules
from runenv_catalogue._shared.tar_rules import Planner


class Tree:
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
        self.umask = _files.umask()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="runenv-write")
        self.threads = threads
        self.limit = 2 * threads  # jobs handed out and not done, at most
        self.pending: collections.deque[Future[None]] = collections.deque()
        self.batch: list[_files.Job] = []
        self.batch_bytes = 0
        self.spanning: list[_files.Spanning] = []  # large files opened, closed by the last piece

    def write(self, stream: _ustar.Stream) -> None:
        """Write every entry of `stream`, then read it to its end (every member checked)."""
        planner, root, shown = self.planner, self.root, self.shown
        under = os.path.join(root, "")  # + a clean relative path: os.path.join's result
        while True:
            try:
                info = _ustar.next_entry(stream)
            except _ustar.END_OF_ARCHIVE:  # zero blocks, or no more blocks
                break
            except tarfile.HeaderError as exc:
                raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
            kind = info.type
            data = info.size if info.isreg() or kind not in _ustar.SUPPORTED else 0
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
        tar_rules.check_symlinks(Path(root), self.links, shown)
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

    def file(self, stream: _ustar.Stream, path: str, info: tarfile.TarInfo, size: int) -> None:
        mode = _files.file_mode(info.mode)
        chmod = self.umask is None or bool(mode & self.umask)
        data: memoryview | list[memoryview] | None = stream.take(size)
        if data is None and size <= _files.SPANNING:
            data = list(stream.views(size))
            if sum(len(view) for view in data) != size:
                raise self._ends_in(info)
        if data is None:  # large, and across pieces: written piece by piece as it comes
            self.write_large(stream, path, info, size, mode, chmod)
            return
        self.batch.append((path, data, mode, info.mtime, chmod))
        self.batch_bytes += size
        if len(self.batch) >= _files.BATCH_FILES or self.batch_bytes >= _files.BATCH_BYTES:
            self.hand_out()

    def write_large(
        self,
        stream: _ustar.Stream,
        path: str,
        info: tarfile.TarInfo,
        size: int,
        mode: int,
        chmod: bool,
    ) -> None:
        """A large file's pieces written as they come, each at its offset: by the writing
        threads (while at most one per thread is out: a piece is up to 4 MiB), so its bytes
        are written on every core while the pieces after them are inflated; without
        os.pwrite (Windows), in order by this thread."""
        self.hand_out()  # the files before it first: they go on while its pieces come
        big = _files.Spanning(path, mode, info.mtime, chmod)
        self.spanning.append(big)
        written = 0
        for view in stream.views(size):
            big.hold()
            if not _files.PWRITE:
                big.piece(written, view)
            else:
                try:
                    self.submit(big.piece, written, view, most=self.threads)
                except BaseException:
                    big.release()  # this piece's hold: it was never handed out
                    raise
            written += len(view)
        if written != size:
            raise self._ends_in(info)
        big.release()  # the reading thread's hold: the last piece written closes it

    def _ends_in(self, info: tarfile.TarInfo) -> CatalogueError:
        return CatalogueError(f"{self.shown}: cannot unpack {info.name!r}: the archive ends in it")

    def hand_out(self) -> None:
        """The batch so far to a writing thread (waiting while `limit` jobs are out)."""
        if not self.batch:
            self.reap()
            return
        self.submit(_files.write_files, self.batch, most=self.limit)
        self.batch, self.batch_bytes = [], 0

    def submit(self, job: Callable[..., None], *args: object, most: int) -> None:
        """`job(*args)` to a writing thread, once fewer than `most` jobs are out."""
        self.reap()
        while len(self.pending) >= most:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(job, *args))

    def reap(self) -> None:
        """The jobs done so far taken off; a writing thread's error, raised here."""
        pending = self.pending
        while pending and pending[0].done():
            pending.popleft().result()

    def wait(self) -> None:
        """Until every batch handed out is written; the first error of one, raised."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Stop: jobs not started are dropped, running ones finish (nothing writes into the
        folder after this returns), and a large file a failure left open is closed."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        for big in self.spanning:
            big.abandon()
