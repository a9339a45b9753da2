"""Files created by the writing threads: new (`O_EXCL`, never through a symlink), their bytes
written from views of the inflated pieces, their mode (tarfile's `data` filter) and mtime set.
"""

# ruff: noqa: PTH101, PTH123

from __future__ import annotations

import os


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
# else written by the calling thread as its pieces come (memory stays bounded).
SPANNING = 8 << 20

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
            if BY_FD:
                if chmod:
                    os.chmod(fd, mode)
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        if not BY_FD:
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


def write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
