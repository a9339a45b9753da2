"""A cache entry got or made the one way: `Entry` (a folder) and `Blob` (a content-addressed
file) are loaded and verified, else made under the entry's lock in a temp path beside it and
renamed into place only when complete (`runenv._cache`: the layout, locks, staging, markers).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from runenv._cache import (
    evict,
    is_plain_dir,
    is_verified,
    lock_for,
    mark_verified,
    staged_dir,
    staged_file,
    sweep_stale,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One folder of the cache, made once under its lock and trusted only once verified.

    `get_or_make(load, make)` is the one way runenv fills the cache: `load(path)` returns what
    a complete, verified entry holds (None for anything else: absent, damaged, a link); when
    it finds nothing, the entry's lock is taken, `load` tried again (a concurrent maker may
    have finished), a damaged entry evicted, and `make(stage)` fills a temp folder beside the
    entry, renamed into place only when `make` returns. A killed maker leaves only a stray
    `.tmp-*` folder, which the next maker sweeps under the lock.
    """

    path: Path

    def load(self, load: Callable[[Path], T | None]) -> T | None:
        """What `load` finds in the entry, or None; never through a link (the entry or the
        folder holding it)."""
        if not (is_plain_dir(self.path.parent) and is_plain_dir(self.path)):
            return None
        return load(self.path)

    def get_or_make(
        self,
        load: Callable[[Path], T | None],
        make: Callable[[Path], T],
        *,
        on_bad: Callable[[Path], None] | None = None,
    ) -> T:
        """The entry's verified content: `load`ed, else made by `make(stage)` under the lock.

        `make` fills the empty folder `stage`, which then becomes `self.path`: what it returns
        names the final place (`self.path / ...`), not the stage. `on_bad(path)`, called before
        a damaged entry is evicted, may raise instead (the default logs a warning).
        """
        return _get_or_make(
            self.path, lambda: self.load(load), make, staged_dir, on_bad or _warn_evicted
        )


@dataclass(frozen=True)
class Blob:
    """One content-addressed file of the cache: the bytes named by `sha256`, nothing else.

    Verified on every take (`is_verified`: a stat while its marker vouches for it); made by
    writing the bytes to a temp file beside it, renamed into place, then marked verified.
    """

    path: Path
    sha256: str

    def get(self) -> Path | None:
        """The file, if it holds exactly `sha256` (a link, a folder or other bytes: None)."""
        return self.path if is_verified(self.path, self.sha256) else None

    def present(self) -> bool:
        """Whether anything (right or wrong) sits at the blob's path."""
        return self.path.exists() or self.path.is_symlink()

    def get_or_make(
        self, write: Callable[[Path], None], *, on_bad: Callable[[Path], None] | None = None
    ) -> Path:
        """The verified file; else `write(tmp)` puts its bytes in a temp file (and must raise
        when they are not `sha256`'s), which is renamed into place and marked verified."""

        def make(tmp: Path) -> Path:
            write(tmp)
            return self.path

        def stored(path: Path) -> None:  # the marker records the renamed file's stat
            mark_verified(path, self.sha256)

        return _get_or_make(
            self.path,
            self.get,
            make,
            staged_file,
            on_bad or _warn_evicted,
            stored,
            drop_lock_on_failure=True,
        )


def _get_or_make(
    path: Path,
    load: Callable[[], T | None],
    make: Callable[[Path], T],
    stage: Callable[[Path], contextlib.AbstractContextManager[Path]],
    on_bad: Callable[[Path], None],
    stored: Callable[[T], None] | None = None,
    *,
    drop_lock_on_failure: bool = False,
) -> T:
    """The pattern behind `Entry` and `Blob`: load; lock; load again; evict; make; rename
    (`stage`); then `stored(made)`, still under the lock."""
    found = load()
    if found is not None:
        return found
    parent = path.parent
    if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
        evict(parent)  # a shard of the cache is a plain folder: the link goes, not its target
    lock = lock_for(path)
    with lock:
        found = load()  # another process made it while we waited
        if found is not None:
            return found
        try:
            sweep_stale(path)  # what a killed maker of this entry left
            if path.exists() or path.is_symlink():
                on_bad(path)
                evict(path)
            with stage(path) as tmp:
                made = make(tmp)
            if stored is not None:
                stored(made)
        except BaseException:
            if drop_lock_on_failure:
                # Leave no trace of a failed fetch; waiters retry on a fresh lock file.
                with contextlib.suppress(OSError):  # Windows will not delete an open file
                    Path(lock.lock_file).unlink(missing_ok=True)
            raise
    return made


def _warn_evicted(path: Path) -> None:
    logger.warning(
        "cache entry %s does not hold what was recorded when it was made: evicted it, "
        "making it again",
        path,
    )
