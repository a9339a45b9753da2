"""Fetch, verify and unpack one runtime archive into the cache, once, safely.

The archive is read once, from a file or a download: its bytes are hashed as they arrive and
unpacked at once (`_unpack`: its gzip members inflated on every core) into a temp folder
beside the tree's final place, under a file lock. An archive published in parts (release
assets are limited to 2 GiB) is read part after part, each checked against its own sha256
and size, the whole against the archive's. Only when every hash matched is the folder
renamed into place, and the `.provisioned` marker is written last: bytes that are not the
catalogue's, and a killed or concurrent install, never leave a tree a later call would trust.
Standard library only, on Linux, macOS and Windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from runenv_catalogue._errors import (
    CatalogueError,
    ChecksumMismatch,
    DownloadError,
    UnsafeArchiveError,
    UsageError,
)
from runenv_catalogue._shared.redact import redact, scrub
from runenv_catalogue._shared.tar_rules import plan_members
from runenv_catalogue._unpack import safe_extract, unpack

__all__ = [
    "CatalogueError",
    "ChecksumMismatch",
    "DownloadError",
    "Part",
    "UnsafeArchiveError",
    "UsageError",
    "is_provisioned",
    "plan_members",
    "provision",
    "safe_extract",
    "verified_chunks",
]

MARKER = ".provisioned"
CHUNK = 1 << 20  # bytes per read: the unit the members are cut from
TIMEOUT = 60.0
LOCK_TIMEOUT = 1800.0
ATTEMPTS = 3


if sys.platform == "win32":  # what urllib.request uses, without loading it (and http, ssl)
    from nturl2path import url2pathname as _url2pathname
else:

    def _url2pathname(path: str) -> str:
        """The path a `file://` URL's (quoted) path names: urllib.request's rule here."""
        return unquote(path)


@dataclass(frozen=True)
class Part:
    """One part of an archive published in parts: its URL, size and sha256."""

    url: str
    size: int
    sha256: str


def _open(url: str, offset: int = 0) -> IO[bytes]:
    """A binary stream of `url` from byte `offset` on: http(s) through urllib (a Range request;
    a server that ignores it is read past the first `offset` bytes), `file://` or a path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        # Loaded for a download only: with ssl they are a quarter of the package's import
        # time, which an install from a file or a cache would pay for nothing.
        import http.client
        import urllib.error
        import urllib.request

        headers = {"User-Agent": "runenv-catalogue"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            stream: IO[bytes] = urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"cannot download {redact(url)}: HTTP {exc.code} {exc.reason}",
                retry=exc.code >= 500 or exc.code in (408, 429),
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(
                f"cannot download {redact(url)}: {scrub(str(reason), url)}", retry=True
            ) from None
        except ValueError as exc:
            raise DownloadError(f"cannot download {redact(url)}: {scrub(str(exc), url)}") from None
        if offset and getattr(stream, "status", 200) != 206:  # the whole file again
            _skip(stream, offset, url)
        return stream
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"unsupported file URL {redact(url)}: only local files")
        path = Path(_url2pathname(parts.path))
    elif not scheme or len(scheme) == 1:  # a path, or C:\... on Windows
        path = Path(url)
    else:
        raise DownloadError(f"unsupported URL {redact(url)}: use http(s)://, file:// or a path")
    try:
        f = path.open("rb", buffering=0)
    except OSError as exc:
        raise DownloadError(f"cannot read {path}: {exc.strerror}") from None
    f.seek(offset)
    return f


def _skip(stream: IO[bytes], n: int, url: str) -> None:
    """Read past the first `n` bytes of `stream`, which were read before."""
    while n:
        chunk = stream.read(min(n, CHUNK))
        if not chunk:
            raise DownloadError(f"cannot download {redact(url)}: it ended early", retry=True)
        n -= len(chunk)


def _transient() -> tuple[type[Exception], ...]:
    """What a read may raise that another attempt can cure: an OSError, and http.client's
    errors once a download loaded it (before that, nothing can raise them)."""
    client = sys.modules.get("http.client")
    return (OSError,) if client is None else (OSError, client.HTTPException)


def _read(url: str, size: int) -> Iterator[bytes]:
    """The bytes of `url`, at most `size + 1` of them (a hostile server cannot fill the disk),
    in chunks. A transient failure, or an end before `size` bytes (most likely a dropped
    connection), is resumed where it stopped (ATTEMPTS tries in all); what was read is never
    read again, so the caller's hash covers exactly the bytes it was given."""
    done = 0
    attempt = 1
    while True:
        try:
            with _open(url, done) as src:
                while done <= size:
                    chunk = src.read(min(CHUNK, size + 1 - done))
                    if not chunk:
                        break
                    done += len(chunk)
                    yield chunk
            if done >= size or attempt == ATTEMPTS:
                return
        except DownloadError as exc:
            if attempt == ATTEMPTS or not exc.retry:
                raise
        except _transient() as exc:
            if attempt == ATTEMPTS:
                raise DownloadError(
                    f"cannot download {redact(url)}: {scrub(str(exc), url)}"
                ) from None
        time.sleep(0.5 * attempt)
        attempt += 1


def verified_chunks(
    url: str, sha256: str, size: int, parts: Sequence[Part] = ()
) -> Iterator[bytes]:
    """The archive's bytes in order, as they are read from `url` (or from `parts`, joined),
    hashed on the way: a part whose sha256 or size is not its own raises ChecksumMismatch at
    its end, and the whole at the end of the last. A consumer may use the bytes at once, but
    trusts nothing it made of them before this generator has finished without an error.
    """
    whole = hashlib.sha256()
    count = 0
    for index, part in enumerate(parts or [Part(url, size, sha256)], 1):
        label = f"part {index} of {len(parts)} ({redact(part.url)})" if parts else redact(url)
        digest = hashlib.sha256() if parts else whole  # one archive: hashed once, not twice
        n = 0
        try:
            for chunk in _read(part.url, part.size):
                digest.update(chunk)
                if parts:
                    whole.update(chunk)
                n += len(chunk)
                yield chunk
        except DownloadError as exc:
            if not parts:
                raise
            raise DownloadError(f"{label}: {exc}; nothing was installed") from None
        if digest.hexdigest() != part.sha256 or n != part.size:
            seen = f"more than {part.size}" if n > part.size else str(n)
            what = "part is" if parts else "archive is"
            raise ChecksumMismatch(
                f"{label}: sha256 mismatch: expected {part.sha256}, got {digest.hexdigest()} "
                f"({seen} bytes, catalogue says {part.size}); the {what} not the one "
                "catalogued, nothing was installed"
            )
        count += n
    if whole.hexdigest() != sha256 or count != size:
        raise ChecksumMismatch(
            f"{redact(parts[0].url)} and the {len(parts) - 1} parts after it join to sha256 "
            f"{whole.hexdigest()} ({count} bytes), but the catalogue says {sha256} ({size} "
            "bytes); nothing was installed"
        )


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
            # Read once: hashed and unpacked as the bytes come, into a folder nothing trusts
            # until the hash is known good (the generator ends without an error).
            tree = work / "tree"
            shown = redact(parts[0].url if parts else url)
            try:
                unpack(verified_chunks(url, sha256, size, parts), tree, shown)
            except OSError as exc:
                where = f" {exc.filename}" if exc.filename else ""
                raise CatalogueError(f"{shown}: cannot unpack:{where} {exc.strerror}") from None
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
