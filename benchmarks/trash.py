"""Trees the measurements are done with, moved aside rather than removed (see `Trash`), and
the wait before each timed command until nothing an earlier step did is billed to it
(`Trash.settle`)."""

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
    timed command waits until the freed inodes are a minute old (`settle`). That is not
    always enough: a timed command that creates files dirties the inode table again, and
    every inode freed in the last six minutes in a dirty block is walked past
    (RECENTCY_DIRTY); a measurement that creates as many files as a removal freed (the
    consumer's) asks for the full six minutes (`QUIET_TRASH`). Here, at load 7-10: creating
    20,000 files took 0.8 s of system time on its own, 5.1 s just after a removal of 20,000,
    and still 10.9 s (against 8.7 s for the same just before the removal) when the removal was
    synced a minute before.
    """

    LOW_DISK = 40 << 30  # bytes free below which the trash is emptied (the torch-sized trees)
    QUIET = 65.0  # seconds after a removal, written back by sync, before a timed command
    QUIET_TRASH = 370.0  # the same, for a removal of many inodes: ext4's 300 + 60 s, a margin

    def __init__(self) -> None:
        self.root: Path | None = None
        self.count = 0
        self.removed_at: float | None = None
        self.quiet = self.QUIET  # seconds the next timed command waits after `removed_at`

    def discard(self, path: Path, low_disk: int = LOW_DISK, quiet: float = QUIET) -> None:
        """Move `path` into the trash; empty the trash if fewer than `low_disk` bytes are
        left free, the next timed command then waiting `quiet` seconds after."""
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
            self.remove(path, quiet)
            return
        if shutil.disk_usage(self.root).free < low_disk:
            self.empty(quiet)

    def remove(self, path: Path, quiet: float = QUIET) -> None:
        """Remove `path` now; the next timed command waits `quiet` seconds after (`settle`)."""
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        else:
            return
        self.removed_at = time.monotonic()
        self.quiet = max(self.quiet, quiet)

    def removed_elsewhere(self, quiet: float = QUIET) -> None:
        """A step removed files behind the trash's back (a build's temp trees, pip's upgrade):
        the next timed command waits `quiet` seconds, as after `remove`."""
        self.removed_at = time.monotonic()
        self.quiet = max(self.quiet, quiet)

    def empty(self, quiet: float = QUIET) -> None:
        if self.root is not None and self.root.exists():
            log("emptying the trash (disk low)")
            self.remove(self.root, quiet)

    def settle(self) -> None:
        """Before a timed command: nothing an earlier step did is billed to it. What earlier
        commands wrote is written back (`sync`: else the kernel writes it back during this
        one), the inodes the last removal freed are old enough to be reused, and the disk the
        work is on has gone quiet (a removal's discards, a writeback still in flight)."""
        os.sync()
        if self.removed_at is not None:
            left = self.quiet - (time.monotonic() - self.removed_at)
            if left > 0:
                log(f"waiting {left:.0f} s for the inodes freed by a removal to age (see Trash)")
                time.sleep(left)
            self.removed_at, self.quiet = None, self.QUIET
            os.sync()
        wait_for_quiet_disk(self.root.parent if self.root is not None else Path.cwd())


def disk_busy_ms(path: Path) -> int | None:
    """The milliseconds the block device holding `path` has been busy since boot (`io_ticks`
    in Linux's /sys/dev/block/MAJ:MIN/stat), or None where that cannot be read."""
    device = path.stat().st_dev
    stat = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}/stat")
    try:
        return int(stat.read_text().split()[9])
    except (OSError, IndexError, ValueError):
        return None


def wait_for_quiet_disk(path: Path, *, limit: float = 30.0, window: float = 0.5) -> None:
    """Wait (at most `limit` seconds) until the disk holding `path` is busy less than a tenth
    of a `window`: a timed command starts on a disk that is not still writing or discarding
    for an earlier one. On a shared machine others may keep it busy: then the wait gives up,
    and says so."""
    busy = disk_busy_ms(path)
    if busy is None:
        return
    waited = 0.0
    while waited < limit:
        time.sleep(window)
        waited += window
        now = disk_busy_ms(path) or 0
        if now - busy < window * 100:  # ms busy in the window: under a tenth of it
            return
        busy = now
    log(f"the disk stayed busy for {limit:.0f} s (other processes?): measuring anyway")


TRASH = Trash()

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> bool:
    """Written back, then dropped: the page cache of every earlier step (Linux, as root;
    False where it cannot be). This machine is a VM with free page reporting: memory the guest
    frees goes back to the host, and the first write to it costs a fault on the host. A
    command that runs after earlier ones filled the page cache writes its tree into such
    memory: the consumer's install of the 3.12.10 archive took 2.9-3.0 s of CPU so, 2.0-2.1 s
    just after a drop (the kernel's copy into the page cache went from 2% of its samples to
    29%). Dropped before each command, every command starts from the same memory."""
    os.sync()
    try:
        DROP_CACHES.write_text("1\n")
    except OSError:
        return False
    return True


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
