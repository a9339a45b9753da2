"""Trees the measurements are done with, moved aside rather than removed (see `Trash`)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from benchmarks.log import log


class Trash:
    """Trees the measurements are done with, moved aside instead of removed.

    On a filesystem without a journal (this machine's ext4), ext4 does not reuse an inode freed
    in the last minute (six while its inode table is not written back), and it walks past every
    such inode on each file it creates (`recently_deleted()` in fs/ext4/ialloc.c). Removing a
    previous measurement's 10,000-file tree just before a timed build made that build spend 3-5 s
    more in the kernel (sys 7-10 s against 3 s): one measurement billed for the clean-up of the
    one before. So, during the measurements, a tree is renamed into `work/trash/` (no inode
    freed); the trash is removed at the end, or earlier if the disk runs low, and then the next
    timed command waits until the freed inodes are a minute old (`settle`).
    """

    LOW_DISK = 40 << 30  # bytes free below which the trash is emptied (the torch-sized trees)
    QUIET = 65.0  # seconds after a removal, written back by sync, before a timed command

    def __init__(self) -> None:
        self.root: Path | None = None
        self.count = 0
        self.removed_at: float | None = None

    def discard(self, path: Path) -> None:
        if not (path.is_symlink() or path.exists()):
            return
        if self.root is None or path.is_symlink() or path.is_file():
            self.remove(path)
            return
        self.root.mkdir(exist_ok=True)
        self.count += 1
        try:
            path.rename(self.root / str(self.count))
        except OSError:  # another filesystem
            self.remove(path)
            return
        if shutil.disk_usage(self.root).free < self.LOW_DISK:
            self.empty()

    def remove(self, path: Path) -> None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        self.removed_at = time.monotonic()

    def empty(self) -> None:
        if self.root is not None and self.root.exists():
            log("emptying the trash (disk low)")
            self.remove(self.root)

    def settle(self) -> None:
        """Wait, if needed, until the last removal's freed inodes no longer slow file creation."""
        if self.removed_at is None:
            return
        os.sync()
        left = self.QUIET - (time.monotonic() - self.removed_at)
        if left > 0:
            log(f"waiting {left:.0f} s for the inodes freed by a removal to age (see Trash)")
            time.sleep(left)
        self.removed_at = None


TRASH = Trash()


def rmtree(path: Path) -> None:
    """Be done with `path`: moved into the trash during the measurements."""
    TRASH.discard(path)


def copy_tree(src: Path, dst: Path) -> None:
    """`src` copied to `dst` (symlinks kept), whatever was at `dst` discarded first."""
    rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def tree_bytes(root: Path) -> int:
    """The bytes of the regular files under `root` (links not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total
