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
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from runenv_catalogue._errors import (
    CatalogueError,
    ChecksumMismatch,
    DownloadError,
    UnsafeArchiveError,
    UsageError,
)
from runenv_catalogue._shared.redact import redact, scrub

__all__ = [
    "CatalogueError",
    "ChecksumMismatch",
    "DownloadError",
    "Part",
    "UnsafeArchiveError",
    "UsageError",
    "Verified",
    "is_provisioned",
    "provision",
]

MARKER = ".provisioned"
CHUNK = 1 << 20  # bytes per read where nothing asks for a size (skipping what was read)
TIMEOUT = 60.0
LOCK_TIMEOUT = 1800.0
ATTEMPTS = 3


if sys.platform == "win32":  # what urllib.request uses, without loading it (and http, ssl)
    from nturl2path import url2pathname as _url2pathname
else:

    def _url2pathname(path: str) -> str:
        """The path a `file://` URL's (quoted) path names: urllib.request's rule here."""
        return unquote(path)


class Part(NamedTuple):
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


class _Download:
    """The bytes of `url`, at most `size + 1` of them (a hostile server cannot fill the disk),
    read in the sizes asked for. A transient failure, or an end before `size` bytes (most
    likely a dropped connection), is resumed where it stopped (ATTEMPTS tries in all); what
    was read is never read again, so the caller's hash covers exactly the bytes it was given.
    """

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.done = 0  # bytes read
        self.attempt = 1
        self.stream: IO[bytes] | None = None

    def read(self, n: int) -> bytes:
        """Up to `n` bytes (as the stream gives them); b"" at the end."""
        while True:
            if self.done > self.size:
                return b""
            try:
                if self.stream is None:
                    self.stream = _open(self.url, self.done)
                chunk = self.stream.read(min(n, self.size + 1 - self.done))
                if chunk:
                    self.done += len(chunk)
                    return chunk
                self.close()
                if self.done >= self.size or self.attempt == ATTEMPTS:
                    return b""
            except DownloadError as exc:
                self.close()
                if self.attempt == ATTEMPTS or not exc.retry:
                    raise
            except _transient() as exc:
                self.close()
                if self.attempt == ATTEMPTS:
                    raise DownloadError(
                        f"cannot download {redact(self.url)}: {scrub(str(exc), self.url)}"
                    ) from None
            time.sleep(0.5 * self.attempt)
            self.attempt += 1

    def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close()


class Verified:
    """The archive's bytes in order, read in the sizes asked for (`read`), from `url` or from
    `parts`, joined, hashed on the way: a part whose sha256 or size is not its own raises
    ChecksumMismatch at its end, and the whole at the end of the last. A consumer may use the
    bytes at once, but trusts nothing it made of them before `read` has returned b"" without
    an error."""

    def __init__(self, url: str, sha256: str, size: int, parts: Sequence[Part] = ()) -> None:
        self.url, self.sha256, self.size = url, sha256, size
        self.parts = list(parts) or [Part(url, size, sha256)]
        self.split = bool(parts)
        self.whole = hashlib.sha256()
        self.count = 0  # bytes read, all parts
        self.index = 0  # the part being read
        self.current: _Download | None = None
        self.digest = self.whole  # one archive: hashed once, not twice

    def _label(self) -> str:
        part = self.parts[self.index]
        if not self.split:
            return redact(self.url)
        return f"part {self.index + 1} of {len(self.parts)} ({redact(part.url)})"

    def read(self, n: int) -> bytes:
        """Up to `n` bytes (fewer where a part ends); b"" once every part is read and
        matched its sha256."""
        while self.index < len(self.parts):
            part = self.parts[self.index]
            if self.current is None:
                self.current = _Download(part.url, part.size)
                self.digest = hashlib.sha256() if self.split else self.whole
            try:
                chunk = self.current.read(n)
            except DownloadError as exc:
                self.close()
                if not self.split:
                    raise
                raise DownloadError(f"{self._label()}: {exc}; nothing was installed") from None
            if chunk:
                self.digest.update(chunk)
                if self.split:
                    self.whole.update(chunk)
                self.count += len(chunk)
                return chunk
            self._check(part, self.current.done)
            self.current = None
            self.index += 1
        if self.split and (self.whole.hexdigest() != self.sha256 or self.count != self.size):
            raise ChecksumMismatch(
                f"{redact(self.parts[0].url)} and the {len(self.parts) - 1} parts after it join "
                f"to sha256 {self.whole.hexdigest()} ({self.count} bytes), but the catalogue "
                f"says {self.sha256} ({self.size} bytes); nothing was installed"
            )
        return b""

    def _check(self, part: Part, n: int) -> None:
        """Raise ChecksumMismatch unless the part just read (`n` bytes) is the one listed."""
        if self.digest.hexdigest() == part.sha256 and n == part.size:
            return
        seen = f"more than {part.size}" if n > part.size else str(n)
        what = "part is" if self.split else "archive is"
        raise ChecksumMismatch(
            f"{self._label()}: sha256 mismatch: expected {part.sha256}, got "
            f"{self.digest.hexdigest()} ({seen} bytes, catalogue says {part.size}); the {what} "
            "not the one catalogued, nothing was installed"
        )

    def close(self) -> None:
        """The download being read, if any, closed (a reader stopped midway)."""
        current, self.current = self.current, None
        if current is not None:
            current.close()


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
            # Loaded here only: `which` and `run` of an installed runtime need none of the
            # unpacking (tarfile, concurrent.futures and logging among it).
            from runenv_catalogue._unpack import unpack

            try:
                unpack(Verified(url, sha256, size, parts), tree, shown)
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
