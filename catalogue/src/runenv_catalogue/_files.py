"""Files created by the writing threads: new (`O_EXCL`, never through a symlink), their bytes
written from views of the inflated pieces, at most `WRITE` bytes a call, their mode (tarfile's
`data` filter) and mtime set; a large file's pieces written at their offsets by the writing
threads, one at a time (`Spanning`).
"""

# ruff: noqa: PTH101, PTH123

from __future__ import annotations

import os
import threading


def file_mode(mode: int) -> int:
    """tarfile's `data` filter: no high bits, no group/other write, owner reads and writes;
    no execute bits unless the owner's."""
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def umask() -> int | None:
    """The process's umask, read without changing it (Linux's /proc); None where it cannot
    be (then every file's mode is set after its creation)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


O_NEW = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL  # a new file, never one (or a symlink) already there
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
BY_FD = os.chmod in os.supports_fd and os.utime in os.supports_fd
# A batch of files handed to a writing thread: this many, or this many bytes, at most. Small
# enough to keep every thread busy, large enough that handing them out costs nothing.
BATCH_FILES = 64
BATCH_BYTES = 1 << 20
# A file whose bytes span pieces is handed out as its pieces if it is at most this large,
# else each piece is handed out on its own as it comes (`Spanning`; memory stays bounded).
SPANNING = 8 << 20
# Pieces of a large file written at their offsets by several threads (not on Windows, which
# has no os.pwrite: there the reading thread writes them, in order).
PWRITE = hasattr(os, "pwrite")
# The most bytes one write call is given. Linux sizes the page-cache folios a write allocates
# after the write's length (`fgf_set_order`): a write of 2 MiB or more takes whole free 2 MiB
# blocks of memory (/proc/vmstat's nr_free_pages_blocks fell by 16,000 pages an install, by
# 2,000-3,000 with this limit). On this VM those are, most likely, the blocks its free page
# reporting has handed back to the host, each faulting there as it is filled. Installing the
# reference workload after a dropped page cache (as the benchmark does), medians of 4-5
# shuffled rounds: whole-file writes 1.60-1.93 s of system time and 2.63-2.85 s of wall, 1 MiB
# writes 0.95-1.27 s and 1.94-2.30 s; 16 to 256 KiB alike, 4 KiB worse (more calls), 2 MiB
# as bad as whole files. GNU tar writes 10 KiB at a time.
WRITE = 1 << 20

# A new file: its path, its bytes (one view, or the views of the pieces it spans), its mode,
# its mtime and whether its mode must be set after its creation (the umask took bits of it).
Job = tuple[str, "memoryview | list[memoryview]", int, float, bool]


def write_files(jobs: list[Job]) -> None:
    """A writing thread's part: create each file (never following or replacing anything),
    write its bytes, set its mode and mtime."""
    for path, data, mode, mtime, chmod in jobs:
        fd = os.open(path, O_NEW, mode)
        try:
            if isinstance(data, memoryview):
                write_all(fd, data)
            else:
                for view in data:
                    write_all(fd, view)
        except BaseException:
            os.close(fd)
            raise
        finish(fd, path, mode, mtime, chmod)


def write_all(fd: int, view: memoryview) -> None:
    """All of `view` at the file's position, at most `WRITE` bytes a call."""
    while view:
        view = view[os.write(fd, view[:WRITE]) :]


def finish(fd: int, path: str, mode: int, mtime: float, chmod: bool) -> None:
    """Set a written file's mode (if the umask took bits of it) and mtime, and close it."""
    try:
        if BY_FD:
            if chmod:
                os.chmod(fd, mode)
            os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)
    if not BY_FD:
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))


class Spanning:
    """A large file, created by the reading thread, its pieces written at their offsets by
    the writing threads (`piece`) as they come, one at a time, so the reading thread goes on
    while a runtime's largest files are written. The reading thread holds it open until it has
    handed out every piece (`hold`, `release`); whoever releases it last sets its mode and
    mtime and closes it."""

    def __init__(self, path: str, mode: int, mtime: float, chmod: bool) -> None:
        self.fd: int | None = os.open(path, O_NEW, mode)
        self.path, self.mode, self.mtime, self.chmod = path, mode, mtime, chmod
        self.held = 1  # the reading thread's hold
        self.lock = threading.Lock()
        # Taken around each piece's writes. Linux filesystems take a file's inode lock for the
        # whole of a buffered write (ext4_buffered_write_iter), so two writes to one file never
        # overlap; a thread that waits for it in the kernel spins while the holder copies
        # (rwsem_spin_on_owner: 11.5% of an atls install's samples, a core the inflating
        # threads lacked), while one that waits for this lock sleeps.
        self.writing = threading.Lock()

    def hold(self) -> None:
        with self.lock:
            self.held += 1

    def piece(self, offset: int, view: memoryview) -> None:
        """A writing thread's job: the bytes at `offset`, then the piece's hold released
        (without os.pwrite, the reading thread's, the pieces in order)."""
        try:
            fd = self.fd
            assert fd is not None  # held: not closed
            if not PWRITE:  # one thread, the pieces in order: the file's position is offset
                write_all(fd, view)
                return
            with self.writing:
                while view:
                    done = os.pwrite(fd, view[:WRITE], offset)
                    view, offset = view[done:], offset + done
        finally:
            self.release()

    def release(self) -> None:
        with self.lock:
            self.held -= 1
            fd = self.fd if self.held == 0 else None
            if fd is not None:
                self.fd = None
        if fd is not None:
            finish(fd, self.path, self.mode, self.mtime, self.chmod)

    def abandon(self) -> None:
        """Closed, if a failure left it open (once no thread writes any more)."""
        with self.lock:
            fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
