"""The one verified download of runenv: PBS archives, wheels, anything named by a sha256.

`fetch_to_cache` puts a file into the content-addressed cache and returns its path. The bytes are
hashed while they arrive, written to a temp path under a file lock, and renamed into place only
when their sha256 is the expected one, so the cache never holds an entry a later run would wrongly
trust, and concurrent fetchers of one file download it once.

Sources may be `http(s)://` URLs (streamed with httpx: bounded retries with exponential backoff
on connection errors, 5xx and truncated bodies; resume with HTTP Range where the server offers
it; redirects followed; proxy variables honoured), `file://` URLs or plain filesystem paths
(copied, with the same verification). Credentials in URLs never reach a message or a log line:
every URL shown goes through `redact`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from runenv._cache import Cache
from runenv._cache_entry import Blob
from runenv._progress import progress_bar
from runenv._shared.redact import redact as redact  # the catalogue's too: one rule for URLs
from runenv._shared.redact import scrub
from runenv.errors import ChecksumError, FetchError, UsageError

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
# Backoff before retry n (1-based): BACKOFF_BASE * 2**(n-1) seconds, jittered, at most BACKOFF_MAX.
BACKOFF_BASE = 0.25
BACKOFF_MAX = 8.0
# A transfer slower than this many bytes per `timeout` seconds counts as stalled (a server that
# dribbles bytes would otherwise never hit the read timeout).
MIN_BYTES_PER_TIMEOUT = 1024
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.ASCII)


def local_source(url: str) -> Path | None:
    """The filesystem path a `file://` URL or a plain path names; None for http(s) URLs.

    Raises UsageError for any other scheme.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"unsupported file URL {redact(url)}: only local files (file:///...)")
        return Path(url2pathname(unquote(parts.path)))
    if not scheme or len(scheme) == 1:  # relative/absolute path, or C:\... on Windows
        return Path(url).expanduser()
    raise UsageError(
        f"unsupported URL scheme {scheme!r} in {redact(url)}: use http(s)://, file:// or a path"
    )


def _check_inputs(sha256: str, filename: str) -> str:
    expected = sha256.strip().lower()
    if expected.startswith("sha256:"):
        expected = expected[len("sha256:") :]
    if not _SHA256.fullmatch(expected):
        raise UsageError(f"{filename}: {sha256!r} is not a sha256 (64 hex digits)")
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        raise UsageError(f"{filename!r} is not a plain file name")
    return expected


@dataclass(frozen=True)
class FetchOptions:
    """How files are fetched: over which client (None: one of its own), how long a wait for
    data may last, whether only the cache may serve, a progress bar, how many retries."""

    client: httpx.Client | None = None
    timeout: float = 300.0
    offline: bool = False
    progress: bool = False
    retries: int = 4


def fetch_to_cache(
    cache: Cache,
    section: str,
    url: str,
    sha256: str,
    filename: str,
    how: FetchOptions | None = None,
) -> Path:
    """Make sure the file with `sha256` is in `cache` and return its path.

    The path is `cache.blob_path(section, sha256, filename)`; when it is there already and
    still holds those bytes (`_cache.is_verified`) this returns without touching the network; a
    cached copy that does not is evicted and fetched again, with a warning (refused offline).
    Otherwise the file is fetched from `url` (http(s)://, file:// or a plain path), verified,
    and renamed into place under a file lock (concurrent fetchers wait, then find it).
    `timeout` bounds connecting and each wait for data: a stalled server is a FetchError after
    about `timeout` seconds (not retried). `offline` allows only the cache. `progress` shows a
    tqdm bar on a terminal's stderr. (Those are `how`'s, `FetchOptions`.)

    Raises FetchError (network, HTTP status, timeout, missing while offline), ChecksumError
    (wrong bytes, never cached) or UsageError (malformed sha256, filename or URL).
    """
    expected = _check_inputs(sha256, filename)
    how = how or FetchOptions()
    client, timeout, offline, progress = how.client, how.timeout, how.offline, how.progress
    blob = Blob(cache.blob_path(section, expected, filename), expected)
    found = blob.get()
    if found is not None:
        return found
    if offline and not blob.present():
        raise FetchError(
            f"{filename} (sha256 {expected}) is not in the cache ({blob.path.parent}) and "
            f"--offline forbids downloading it from {redact(url)}"
        )
    path = local_source(url)

    def write(tmp: Path) -> None:
        if path is not None:
            _copy_verified(path, tmp, expected, filename, progress)
            return
        with _client_for(client) as http:
            _Transfer(http, url, tmp, expected, filename, timeout, how.retries, progress).run()

    target = blob.get_or_make(
        write, on_bad=lambda bad: _refuse_corrupt(bad, expected, filename, offline)
    )
    log.debug("cached %s from %s", filename, redact(url))
    return target


def _refuse_corrupt(target: Path, expected: str, filename: str, offline: bool) -> None:
    """A cached file that is not the bytes its sha256 names: refused offline, else it is
    evicted (`Blob.get_or_make`) with this warning."""
    if offline:
        raise FetchError(
            f"{filename}: the cached copy ({target}) does not match sha256 {expected} and "
            "--offline forbids fetching it again: run without --offline, or `runenv clean --cache`"
        )
    log.warning(
        "%s: the cached copy does not match sha256 %s (corrupted or replaced): evicted it, "
        "fetching it again",
        filename,
        expected,
    )


@contextlib.contextmanager
def _client_for(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with new_client() as own:
        yield own


def new_client(timeout: float = 300.0) -> httpx.Client:
    """An httpx client as runenv wants it: redirects followed, proxy variables honoured."""
    return httpx.Client(
        follow_redirects=True,
        trust_env=True,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": _user_agent()},
    )


def _user_agent() -> str:
    from runenv import __version__

    return f"runenv/{__version__} httpx/{httpx.__version__}"


def _copy_verified(src: Path, dest: Path, expected: str, name: str, progress: bool) -> None:
    """Copy a local file to `dest`, hashing it on the way; ChecksumError on wrong bytes."""
    hasher = hashlib.sha256()
    try:
        size: int | None = src.stat().st_size
        with (
            src.open("rb") as fin,
            dest.open("wb") as fout,
            progress_bar(size, name, enabled=progress) as bar,
        ):
            while chunk := fin.read(CHUNK_SIZE):
                hasher.update(chunk)
                fout.write(chunk)
                bar.update(len(chunk))
    except FileNotFoundError:
        raise FetchError(f"{name}: {src} does not exist") from None
    except OSError as exc:
        raise FetchError(f"{name}: cannot read {src}: {exc.strerror or exc}") from None
    got = hasher.hexdigest()
    if got != expected:
        raise ChecksumError(f"{name} from {src}", expected, got)


class _Retry(Exception):
    """An attempt that failed in a way another attempt may fix."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class _Transfer:
    """One HTTP download into `dest`, over as many attempts as `retries` allows."""

    client: httpx.Client
    url: str
    dest: Path
    expected: str
    name: str
    timeout: float
    retries: int
    progress: bool
    written: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    resumable: bool = False
    etag: str | None = None
    resumed: bool = False
    length_known: bool = True

    def run(self) -> None:
        failures = 0
        restarted_on_mismatch = False
        self.dest.write_bytes(b"")
        while True:
            try:
                self._attempt()
            except _Retry as exc:
                failures += 1
                if failures > self.retries:
                    raise FetchError(
                        f"{self.name}: download from {redact(self.url)} failed after "
                        f"{failures} attempts: {exc.reason}"
                    ) from None
                delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1))
                delay *= 1 + random.random() / 4  # jitter, not crypto
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, BACKOFF_MAX))
                log.info(
                    "%s: %s; retrying in %.1fs (%d/%d)",
                    self.name,
                    exc.reason,
                    delay,
                    failures,
                    self.retries,
                )
                time.sleep(delay)
                continue
            got = self.hasher.hexdigest()
            if got == self.expected:
                return
            if (self.resumed or not self.length_known) and not restarted_on_mismatch:
                # Resumed pieces may come from two versions of the file, and a body without a
                # length may have been cut short unnoticed: try once more from scratch.
                restarted_on_mismatch = True
                log.info("%s: checksum mismatch; downloading again from scratch", self.name)
                self._restart(resumable=False)
                continue
            raise ChecksumError(f"{self.name} from {redact(self.url)}", self.expected, got)

    def _restart(self, *, resumable: bool) -> None:
        self.dest.write_bytes(b"")
        self.written = 0
        self.hasher = hashlib.sha256()
        self.resumed = False
        self.resumable = resumable

    def _attempt(self) -> None:
        headers = {"Accept-Encoding": "identity"}
        ranged = bool(self.written and self.resumable)
        if ranged:
            headers["Range"] = f"bytes={self.written}-"
            if self.etag:
                headers["If-Range"] = self.etag
        elif self.written:
            self._restart(resumable=False)
        try:
            with self.client.stream(
                "GET",
                self.url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=True,
            ) as resp:
                total = self._check_response(resp, ranged)
                self._receive(resp, total)
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"{self.name}: timed out after {self.timeout:g}s without data from "
                f"{redact(self.url)} ({type(exc).__name__})"
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(f"{self.name}: {scrub(str(exc), self.url)}") from None
        except httpx.TransportError as exc:
            detail = scrub(str(exc), self.url) or "connection failed"
            raise _Retry(f"{type(exc).__name__}: {detail}") from None
        except httpx.TooManyRedirects:
            raise FetchError(f"{self.name}: too many redirects from {redact(self.url)}") from None
        except httpx.InvalidURL as exc:
            raise UsageError(
                f"invalid URL {redact(self.url)}: {scrub(str(exc), self.url)}"
            ) from None

    def _check_response(self, resp: httpx.Response, ranged: bool) -> int | None:
        """Validate the status and headers; return the total size expected, if known."""
        status = resp.status_code
        where = redact(str(resp.url))
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(
                f"HTTP {status} {resp.reason_phrase} from {where}",
                _retry_after(resp.headers.get("Retry-After")),
            )
        if status == 416 and ranged:
            self._restart(resumable=False)
            raise _Retry(f"HTTP 416 for a resumed download from {where}")
        if status >= 400:
            raise FetchError(f"{self.name}: HTTP {status} {resp.reason_phrase} from {where}")
        if status == 206 and ranged:
            match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
            if not match or int(match.group(1)) != self.written:
                self._restart(resumable=False)
                got = resp.headers.get("Content-Range")
                raise _Retry(f"bad Content-Range {got!r} for a resumed download from {where}")
            self.resumed = True
            return None if match.group(3) == "*" else int(match.group(3))
        if status != 200:
            raise FetchError(f"{self.name}: unexpected HTTP {status} from {where}")
        if self.written:  # the server ignored our Range: start over with this full body
            self._restart(resumable=False)
        self.resumable = resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        etag = resp.headers.get("ETag")
        self.etag = etag if etag and not etag.startswith("W/") else None
        length = resp.headers.get("Content-Length", "").strip()
        self.length_known = length.isascii() and length.isdigit()
        return int(length) if self.length_known else None

    def _receive(self, resp: httpx.Response, total: int | None) -> None:
        window_start, window_bytes = time.monotonic(), 0
        with (
            self.dest.open("ab") as out,
            progress_bar(total, self.name, enabled=self.progress, initial=self.written) as bar,
        ):
            for chunk in resp.iter_raw():
                out.write(chunk)
                self.hasher.update(chunk)
                self.written += len(chunk)
                bar.update(len(chunk))
                window_bytes += len(chunk)
                now = time.monotonic()
                if now - window_start >= self.timeout:
                    if window_bytes < MIN_BYTES_PER_TIMEOUT:
                        raise FetchError(
                            f"{self.name}: timed out: under {MIN_BYTES_PER_TIMEOUT} bytes in "
                            f"{self.timeout:g}s from {redact(self.url)}"
                        )
                    window_start, window_bytes = now, 0
        if total is not None and self.written != total:
            raise _Retry(f"truncated body: {self.written} of {total} bytes")


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isascii() and value.strip().isdigit():
        return float(value.strip())
    return None
