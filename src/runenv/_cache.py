"""Caches and build targets written so that nothing half-done is ever trusted.

Every entry is produced in a temporary path beside its final place, under a file lock, and
renamed into place only when complete (the `.provisioned` habit): a killed or concurrent
writer leaves at most a stray temp path, which later runs ignore and sweep.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from filelock import FileLock

CACHE_ENV = "RUNENV_CACHE_DIR"
TMP_PREFIX = ".tmp-"


def default_cache_root() -> Path:
    """`$RUNENV_CACHE_DIR`, else the user cache dir for runenv."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("runenv"))


@dataclass(frozen=True)
class Cache:
    """The cache root and its sections. `ephemeral()` gives a throwaway one (`--refresh`)."""

    root: Path

    @classmethod
    def default(cls) -> Cache:
        return cls(default_cache_root())

    @classmethod
    @contextlib.contextmanager
    def ephemeral(cls) -> Iterator[Cache]:
        base = default_cache_root() / "ephemeral"
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        try:
            yield cls(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def section(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def blob_path(self, section: str, sha256: str, filename: str) -> Path:
        """Where a content-addressed file lives: `<section>/<sha[:2]>/<sha>/<filename>`."""
        return self.section(section) / sha256[:2] / sha256 / filename


def lock_for(path: Path, *, in_dir: Path | None = None) -> FileLock:
    """The lock that guards writing `path`: `<path>.lock` beside it, or in `in_dir`.

    `in_dir` keeps lock files out of folders users read or commit (`dist/`, `versions/`).
    """
    folder = in_dir or path.parent
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / (path.name + ".lock")))


@contextlib.contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` atomically."""
    with temp_beside(target) as tmp:
        yield tmp
        tmp.replace(target)


@contextlib.contextmanager
def temp_beside(target: Path) -> Iterator[Path]:
    """Yield a new empty temp file beside `target`, removed on exit unless moved away.

    Beside `target` means on its filesystem, so the caller can rename it over `target` when
    it chooses (a build publishes its archive so). The name starts with `.tmp-<target name>.`,
    which `sweep_stale` removes after a kill. The file is created with the process umask (not
    mkstemp's 0600), so what lands in `dist/` is readable as any file the user writes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.parent / f"{TMP_PREFIX}{target.name}.{secrets.token_hex(6)}"
        try:
            tmp.touch(exist_ok=False)
            break
        except FileExistsError:
            continue
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temp dir beside `target`; on success it takes `target`'s place.

    The old `target`, if any, is first renamed aside and then removed, so at every instant
    `target` is either absent, the old complete tree, or the new complete tree.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(src: Path, target: Path) -> None:
    """Move the complete tree `src` to `target` (same filesystem), replacing any old one.

    The old tree is first renamed aside, then removed: at every instant `target` is absent,
    the old complete tree, or the new complete tree.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + target.name + ".old.", dir=target.parent))
        target.replace(old / target.name)
        src.replace(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        src.replace(target)


def sweep_stale(target: Path) -> None:
    """Remove the temp paths that killed writers of `target` left beside it.

    Call it while holding `lock_for(target)`: then no live writer of `target` owns them.
    """
    if not target.parent.is_dir():
        return
    prefix = TMP_PREFIX + target.name + "."
    for child in target.parent.iterdir():
        if not child.name.startswith(prefix):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
