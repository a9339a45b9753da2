"""Fetch, verify and unpack one runtime archive into the cache, once, safely.

The bytes are hashed while they arrive and written to a temp file; nothing is unpacked unless
the sha256 and size match the catalogue. An archive published in parts (release assets are
limited to 2 GiB) is joined while its parts arrive: each part is hashed on its way into the
joined file (never held in memory) and checked against its own sha256 and size, then the
whole against the archive's. The tree is unpacked into a temp folder beside its
final place, under a file lock, then renamed into place, and the `.provisioned` marker is
written last: a killed or concurrent install never leaves a tree a later call would trust.
Standard library only, on Linux, macOS and Windows.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

MARKER = ".provisioned"
CHUNK = 1 << 16
TIMEOUT = 60.0
LOCK_TIMEOUT = 1800.0
ATTEMPTS = 3
_USERINFO = re.compile(r"(//)[^/@?#\s]*@")


class CatalogueError(Exception):
    """An error reported as one line; `exit_code` is the CLI's exit status for it."""

    exit_code = 1


class UsageError(CatalogueError):
    """An unknown variant or platform: exit code 2."""

    exit_code = 2


class ChecksumMismatch(CatalogueError):
    """Bytes that are not the catalogue's: never unpacked."""


class DownloadError(CatalogueError):
    """An archive that could not be read: unreachable URL, HTTP error, missing file."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry  # a transient failure worth another attempt


class UnsafeArchiveError(CatalogueError):
    """An archive entry that would land outside the runtime's folder."""


@dataclass(frozen=True)
class Part:
    """One part of an archive published in parts: its URL, size and sha256."""

    url: str
    size: int
    sha256: str


def redact(url: str) -> str:
    """`url` without its user info (credentials never reach a message)."""
    return _USERINFO.sub(r"\1***@", url)


def _open(url: str) -> IO[bytes]:
    """A binary stream of `url`: http(s) through urllib, `file://` or a path from disk."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        request = urllib.request.Request(url, headers={"User-Agent": "runenv-catalogue"})
        try:
            stream: IO[bytes] = urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"cannot download {redact(url)}: HTTP {exc.code} {exc.reason}",
                retry=exc.code >= 500 or exc.code in (408, 429),
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"cannot download {redact(url)}: {reason}", retry=True) from None
        except ValueError as exc:
            raise DownloadError(f"cannot download {redact(url)}: {exc}") from None
        return stream
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"unsupported file URL {redact(url)}: only local files")
        path = Path(urllib.request.url2pathname(unquote(parts.path)))
    elif not scheme or len(scheme) == 1:  # a path, or C:\... on Windows
        path = Path(url)
    else:
        raise DownloadError(f"unsupported URL {redact(url)}: use http(s)://, file:// or a path")
    try:
        return path.open("rb")
    except OSError as exc:
        raise DownloadError(f"cannot read {path}: {exc.strerror}") from None


def fetch_verified(url: str, sha256: str, size: int, dest: Path) -> None:
    """Copy `url` to `dest`, hashing while streaming; raise unless sha256 and size match.

    Reads at most `size + 1` bytes, so a hostile server cannot fill the disk. Transient network
    failures are retried (ATTEMPTS in all); a wrong checksum is not.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            got, count = _copy_hashed(url, dest, size)
            break
        except DownloadError as exc:
            if attempt == ATTEMPTS or not exc.retry:
                raise
            time.sleep(0.5 * attempt)
    if got != sha256 or count != size:
        with contextlib.suppress(OSError):
            dest.unlink()
        seen = f"more than {size}" if count > size else str(count)
        raise ChecksumMismatch(
            f"{redact(url)}: sha256 mismatch: expected {sha256}, got {got} ({seen} bytes, "
            f"catalogue says {size}); the archive is not the one catalogued, nothing was installed"
        )


def fetch_parts(parts: Sequence[Part], sha256: str, size: int, dest: Path) -> None:
    """Join `parts` into `dest`, checking each part as it arrives and then the whole.

    Each part is streamed into `dest` while two hashes run over it (the part's, and the
    whole's so far); a transient failure truncates `dest` back to where the part began and
    tries again. A part with the wrong bytes or size, a missing part, or a whole that is not
    the catalogue's raises, and the caller drops `dest`: nothing is unpacked.
    """
    whole = hashlib.sha256()
    count = 0
    with dest.open("wb") as out:
        for index, part in enumerate(parts, 1):
            label = f"part {index} of {len(parts)} ({redact(part.url)})"
            start = out.tell()
            for attempt in range(1, ATTEMPTS + 1):
                candidate = whole.copy()
                try:
                    got, n = _copy_hashed_into(part.url, out, part.size, candidate)
                    if n >= part.size or attempt == ATTEMPTS:
                        break  # a short part is most likely a dropped connection: again
                except DownloadError as exc:
                    if attempt == ATTEMPTS or not exc.retry:
                        raise DownloadError(f"{label}: {exc}; nothing was installed") from None
                out.seek(start)
                out.truncate()
                time.sleep(0.5 * attempt)
            if got != part.sha256 or n != part.size:
                seen = f"more than {part.size}" if n > part.size else str(n)
                raise ChecksumMismatch(
                    f"{label}: sha256 mismatch: expected {part.sha256}, got {got} ({seen} "
                    f"bytes, catalogue says {part.size}); the part is not the one catalogued, "
                    "nothing was installed"
                )
            whole = candidate
            count += n
    if whole.hexdigest() != sha256 or count != size:
        raise ChecksumMismatch(
            f"{redact(parts[0].url)} and the {len(parts) - 1} parts after it join to sha256 "
            f"{whole.hexdigest()} ({count} bytes), but the catalogue says {sha256} ({size} "
            "bytes); nothing was installed"
        )


def _copy_hashed_into(url: str, out: IO[bytes], size: int, whole: Any) -> tuple[str, int]:
    """Append at most `size + 1` bytes of `url` to `out`, hashing them into a new digest
    (returned) and into `whole`."""
    digest = hashlib.sha256()
    count = 0
    try:
        with _open(url) as src:
            while count <= size:
                chunk = src.read(min(CHUNK, size + 1 - count))
                if not chunk:
                    break
                count += len(chunk)
                digest.update(chunk)
                whole.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot download {redact(url)}: {exc}", retry=True) from None
    return digest.hexdigest(), count


def _copy_hashed(url: str, dest: Path, size: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    count = 0
    try:
        with _open(url) as src, dest.open("wb") as out:
            while count <= size:
                chunk = src.read(min(CHUNK, size + 1 - count))
                if not chunk:
                    break
                count += len(chunk)
                digest.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot download {redact(url)}: {exc}", retry=True) from None
    return digest.hexdigest(), count


# The archive rules below are a copy of runenv's `_extract.py` (this package imports nothing
# but the standard library); tests/test_catalogue_parity.py checks both refuse and accept the
# same archives. Change them together.


def _clean_name(name: str, archive: str) -> PurePosixPath:
    """The entry's path with `.` parts dropped; refuses absolute paths and `..`."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: absolute or non-POSIX path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: '..' leaves the tree")
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _inside(path: str) -> bool:
    """Whether a normalised relative POSIX path stays inside the tree."""
    return path == "." or not (path == ".." or path.startswith("../") or path.startswith("/"))


def plan_members(members: list[tarfile.TarInfo], archive: str) -> list[tarfile.TarInfo]:
    """Check every entry and return them with clean names, ready to extract in order.

    Refuses absolute paths, `..`, devices and other special files, entries written through
    or over a symlink, symlinks pointing out of the tree and hard links to anything but a
    regular file extracted before them; the error names the first entry at fault.
    """
    planned: list[tarfile.TarInfo] = []
    kinds: dict[PurePosixPath, str] = {}
    modes: dict[PurePosixPath, int] = {}
    for member in members:
        rel = _clean_name(member.name, archive)
        if not rel.parts:  # the tree's root itself
            if not member.isdir():
                raise UnsafeArchiveError(f"{archive}: refused entry {member.name!r}: not a folder")
            continue
        for parent in list(rel.parents)[:-1]:
            if kinds.get(parent) == "symlink":
                raise UnsafeArchiveError(
                    f"{archive}: refused entry {member.name!r}: it would be written through "
                    f"the symlink {parent}"
                )
        if kinds.get(rel) == "symlink":
            raise UnsafeArchiveError(
                f"{archive}: refused entry {member.name!r}: it would replace the symlink {rel}"
            )
        if member.issym():
            target = member.linkname
            if (
                not target
                or target.startswith("/")
                or "\\" in target
                or (len(target) > 1 and target[1] == ":")
            ):
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {member.name!r} -> {target!r}: absolute target"
                )
            resolved = posixpath.normpath(posixpath.join(str(rel.parent), target))
            if not _inside(resolved):
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {member.name!r} -> {target!r}: leaves the tree"
                )
            kind = "symlink"
        elif member.islnk():
            try:
                link = _clean_name(member.linkname, archive)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "leaves the tree"
                ) from None
            if kinds.get(link) != "file":
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "not a regular file extracted before it"
                )
            member = copy.copy(member)
            member.linkname = str(link)
            member.mode = modes[link]  # tarfile chmods the shared inode: keep the file's mode
            kind = "file"
        elif member.isreg():
            kind = "file"
        elif member.isdir():
            kind = "dir"
        else:
            raise UnsafeArchiveError(
                f"{archive}: refused entry {member.name!r}: device, fifo or other special file"
            )
        member = copy.copy(member)  # the archive's own index keeps the original names
        member.name = str(rel)
        kinds[rel] = kind
        modes[rel] = member.mode
        planned.append(member)
    return planned


def check_links(root: Path, archive: str) -> None:
    """Refuse a tree with a symlink that, followed through the others, resolves outside `root`."""
    real_root = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            resolved = Path(os.path.realpath(path))
            if resolved != real_root and real_root not in resolved.parents:
                entry = path.relative_to(root).as_posix()
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {entry!r} -> {str(path.readlink())!r}: "
                    "resolves outside the tree"
                )


def safe_extract(archive: Path, dest: Path, shown: str) -> None:
    """Unpack `archive` into the new folder `dest`, refusing anything that would escape it.

    Checks every entry first (`plan_members`), uses tarfile's `data` filter where this Python
    has it as a second line of defence, and checks where each symlink really points once made.
    """
    dest.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = plan_members(tf.getmembers(), shown)
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Pythons without PEP 706
                tf.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        # The checks above should catch what the filter would (FilterError: Python >= 3.11.4).
        filter_error: Any = getattr(tarfile, "FilterError", ())
        if isinstance(exc, filter_error):
            raise UnsafeArchiveError(
                f"{shown}: refused entry {exc.tarinfo.name!r}: {exc}"
            ) from None
        raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
    check_links(dest, shown)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing); the OS drops it if we die."""
    with path.open("a+b") as fh:
        if sys.platform == "win32":
            import msvcrt

            deadline = time.monotonic() + timeout
            while True:
                fh.seek(0)
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise CatalogueError(f"timed out waiting for the lock {path}") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _make_writable(func: Callable[..., Any], path: str, _exc: Any) -> None:
    """rmtree helper: Windows refuses to delete read-only files; clear the flag and retry."""
    Path(path).chmod(stat.S_IWRITE | stat.S_IREAD | stat.S_IEXEC)
    func(path)


def rmtree(path: Path) -> None:
    """Remove a tree, read-only files included; a missing tree is fine."""
    if not path.exists() and not path.is_symlink():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=_make_writable)
    else:
        shutil.rmtree(path, onerror=_make_writable)


def is_provisioned(dest: Path, sha256: str) -> bool:
    """Whether `dest` holds a finished install of the archive with this sha256."""
    try:
        marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("sha256") == sha256


def provision(
    url: str,
    sha256: str,
    size: int,
    dest: Path,
    interpreter: PurePosixPath,
    *,
    parts: Sequence[Part] = (),
) -> bool:
    """Make `dest` a verified, complete copy of the archive at `url` (or joined from `parts`).

    Returns False when it already was (no download, no unpacking), True when this call
    installed it. Concurrent callers wait on the lock; one does the work.
    """
    if is_provisioned(dest, sha256):
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=".tmp-probe-", dir=dest.parent))
        probe.rmdir()
    except OSError as exc:
        raise UsageError(
            f"cache folder {dest.parent} is not usable ({exc.strerror or exc}): set "
            "RUNENV_CATALOGUE_CACHE or --cache-dir to a writable folder"
        ) from None
    with file_lock(dest.parent / f"{dest.name}.lock"):
        if is_provisioned(dest, sha256):
            return False
        for stale in dest.parent.glob(f".tmp-{dest.name}-*"):  # left by a killed install
            rmtree(stale)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
        try:
            archive = work / "archive"
            if parts:
                fetch_parts(parts, sha256, size, archive)
            else:
                fetch_verified(url, sha256, size, archive)
            tree = work / "tree"
            safe_extract(archive, tree, redact(parts[0].url if parts else url))
            if not (tree / interpreter).is_file():
                raise CatalogueError(f"{redact(url)}: no interpreter at {interpreter} in it")
            rmtree(dest)  # an earlier install that died before its marker
            tree.replace(dest)
        finally:
            rmtree(work)
        marker = dest / f"{MARKER}.tmp"
        marker.write_text(json.dumps({"sha256": sha256, "url": redact(url)}) + "\n", "utf-8")
        marker.replace(dest / MARKER)
    return True
