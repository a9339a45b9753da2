"""Caches and build targets written so that nothing half-done is ever trusted.

Every entry is produced in a temporary path beside its final place, under a file lock, and
renamed into place only when complete (the `.provisioned` habit): a killed or concurrent
writer leaves at most a stray temp path, which later runs ignore and sweep. This module is the
means, for the cache and for build outputs alike: where the cache keeps things (`Cache`), the
file lock, the staged write, the sweep, the marker that vouches for a verified file and the
eviction of one that fails. A cache entry is made with them through `_cache_entry` (`Entry`, a
folder; `Blob`, a content-addressed file), the one place that pattern is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from filelock import FileLock

from runenv.errors import UsageError

CACHE_ENV = "RUNENV_CACHE_DIR"
TMP_PREFIX = ".tmp-"
VERIFIED_SUFFIX = ".verified"
CACHEDIR_TAG = "CACHEDIR.TAG"
_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by runenv.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_HASH_CHUNK = 1 << 20


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
        base = cls.default().section("ephemeral")
        path = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        try:
            yield cls(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def section(self, name: str) -> Path:
        """The folder of one section, made on first use (with the root's CACHEDIR.TAG).

        A root that cannot be made or written (a file, a read-only filesystem) is a UsageError
        naming it, not a traceback.
        """
        path = self.root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
            tag = self.root / CACHEDIR_TAG
            if not tag.exists():
                # The tag marks the folder as runenv's: `runenv clean --cache` removes only a
                # tagged root, and backup tools skip it.
                with staged_file(tag) as tmp:
                    tmp.write_text(_TAG_TEXT, encoding="ascii")
        except OSError as exc:
            raise UsageError(
                f"cache folder {self.root} is not usable ({exc.strerror or exc}): set "
                f"{CACHE_ENV} to a writable folder"
            ) from None
        return path

    def blob_path(self, section: str, sha256: str, filename: str) -> Path:
        """Where a content-addressed file lives: `<section>/<sha[:2]>/<sha>/<filename>`."""
        return self.section(section) / sha256[:2] / sha256 / filename

    def entry_path(self, section: str, key: str, *, sharded: bool = True) -> Path:
        """Where the folder entry `key` of `section` lives: `<section>/<key[:2]>/<key>`
        (sharded, for sections with many entries), else `<section>/<key>`."""
        base = self.section(section)
        return base / key[:2] / key if sharded else base / key


def is_plain_dir(path: Path) -> bool:
    """Whether `path` is a folder itself, not a link to one (nothing in the cache is
    followed through a link)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


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


# --- verified cache entries ----------------------------------------------------------------
#
# Every file taken from the cache is checked against the sha256 it is used for. Re-hashing on
# every take costs about 4 s per GB on a small runner (sha256 runs at ~240 MB/s without SHA
# instructions), so a file is hashed once and a marker beside it, `<file>.verified`, records its
# sha256 with its stat fingerprint: size, mtime, ctime, inode and device. A later take trusts
# the marker only while the fingerprint is unchanged; any write to the file, a replacement by
# another file, or a restore from elsewhere (actions/cache, a copied folder) changes the ctime or
# the inode, which user code cannot set back, so the file is hashed again. A mismatch evicts it.


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _fingerprint(path: Path) -> dict[str, int] | None:
    """The stat fields a marker records, or None when `path` is not a regular file."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def _marker(path: Path, in_dir: Path | None = None) -> Path:
    return (in_dir or path.parent) / (path.name + VERIFIED_SUFFIX)


def mark_verified(path: Path, sha256: str, *, in_dir: Path | None = None) -> None:
    """Record that `path` holds `sha256` as of now (call it right after verifying the bytes).

    The marker sits beside `path`, or in `in_dir` (for files in folders users publish).
    """
    seen = _fingerprint(path)
    if seen is None:
        return
    marker = _marker(path, in_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(marker) as tmp:
        tmp.write_text(json.dumps({"sha256": sha256, **seen}), encoding="utf-8")


def recorded_sha256(path: Path) -> str | None:
    """The sha256 the marker of `path` records, if it has a readable one."""
    try:
        data = json.loads(_marker(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("sha256") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def is_verified(path: Path, sha256: str, *, in_dir: Path | None = None) -> bool:
    """Whether the cached file `path` holds exactly `sha256`.

    True at the cost of a stat when its marker vouches for it; otherwise the file is hashed
    (and the marker renewed when it matches). A link, a folder or a missing file is False.
    """
    seen = _fingerprint(path)
    if seen is None:
        return False
    try:
        data = json.loads(_marker(path, in_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data == {"sha256": sha256, **seen}:
        return True
    try:
        if file_sha256(path) != sha256:
            return False
    except OSError:
        return False
    mark_verified(path, sha256, in_dir=in_dir)
    return True


def evict(path: Path) -> None:
    """Remove a cache entry that failed verification, and its marker (a link is not followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    _marker(path).unlink(missing_ok=True)
