"""Get a portable CPython for a platform: `resolve -> download -> unpack`.

`resolve` takes the python-build-standalone (PBS) `install_only` archive and its sha256 from
pbs-installer's index (`pbs_index`), through a mirror if one is set, or a pinned archive
instead; `download` puts it in the content-addressed cache (`download.fetch_to_cache`);
`unpack` extracts it safely (`extract`). `fetch_python` chains the three and `fetch_many` runs
several platforms at once over one shared httpx client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from runenv._cache import Cache, lock_for
from runenv.config.load import VariantConfig
from runenv.errors import FetchError, UsageError
from runenv.fetch import pbs_index
from runenv.fetch.download import (
    FetchOptions,
    fetch_to_cache,
    local_source,
    new_client,
    redact,
)
from runenv.fetch.extract import extract_tar, extract_tar_apart
from runenv.platforms import Platform

log = logging.getLogger(__name__)

MIRROR_ENV = "RUNENV_PYTHON_MIRROR"
"""The environment variable the CLI reads for a mirror (after `--python-mirror`, before config)."""

CACHE_SECTION = "python"

UPSTREAM_PREFIXES = (
    "https://github.com/astral-sh/python-build-standalone/releases/download",
    "https://github.com/indygreg/python-build-standalone/releases/download",
)
"""Release prefixes a mirror replaces; what follows them is `<release-tag>/<filename>`."""

_TAG_IN_FILENAME = re.compile(r"\+(\d{8})-", re.ASCII)


@dataclass(frozen=True)
class PinnedArchive:
    """An archive a variant pins for one platform (`[python.archives.<platform>]`).

    Exactly one of `url` (http(s):// or file://) and `path` is set; `sha256` is required.
    """

    url: str | None
    path: Path | None
    sha256: str

    def __post_init__(self) -> None:
        if (self.url is None) == (self.path is None):
            raise UsageError("a pinned Python archive needs exactly one of url and path")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256 or "", re.ASCII):
            raise UsageError(
                f"a pinned Python archive needs a sha256 (64 hex digits), got {self.sha256!r}"
            )


@dataclass(frozen=True)
class PythonSource:
    """Where one platform's Python archive comes from, and the sha256 it must have.

    `url` may carry credentials (a mirror's); show `public_url`, never `url`.
    """

    version: str
    platform: Platform
    url: str = field(repr=False)
    sha256: str
    filename: str

    @property
    def public_url(self) -> str:
        """`url` without credentials: the form for messages, logs and manifests."""
        return redact(self.url)

    def __repr__(self) -> str:
        return (
            f"PythonSource(version={self.version!r}, platform={self.platform.value!r}, "
            f"url={self.public_url!r}, sha256={self.sha256!r}, filename={self.filename!r})"
        )


def _mirror_url(mirror: str, upstream: str, filename: str) -> str:
    """The archive's URL in `mirror`: `<mirror>/<release-tag>/<filename>`.

    That is the layout of GitHub release downloads, so a mirror is a copy of
    `.../releases/download/` (uv's `UV_PYTHON_INSTALL_MIRROR` uses the same convention). For
    URL mirrors the filename stays percent-encoded as upstream has it (`%2B` for `+`); a plain
    directory mirror holds `<dir>/<tag>/<filename>` with the literal file name.
    """
    remainder: str | None = None
    for prefix in UPSTREAM_PREFIXES:
        if upstream.startswith(prefix + "/"):
            remainder = upstream[len(prefix) + 1 :]
            break
    if remainder is None:
        found = _TAG_IN_FILENAME.search(filename)
        if not found:
            raise UsageError(f"cannot place {filename} in a mirror: no release tag known")
        remainder = f"{found.group(1)}/{filename.replace('+', '%2B')}"
    if local_source(mirror) is not None and urlsplit(mirror).scheme.lower() != "file":
        tag, _, encoded = remainder.partition("/")
        return str(Path(mirror).expanduser().resolve() / tag / unquote(encoded))
    return mirror.rstrip("/") + "/" + remainder


def resolve(
    version: str,
    platform: Platform,
    *,
    mirror: str | None = None,
    pinned: PinnedArchive | None = None,
) -> PythonSource:
    """Which archive to fetch for CPython `version` (X.Y.Z) on `platform`.

    A `pinned` archive wins; else the PBS index gives the upstream URL and sha256, and a
    `mirror` (http(s)://, file:// or a directory) replaces the upstream release prefix, giving
    `<mirror>/<release-tag>/<filename>`. A version or platform the index lacks is a UsageError
    naming the nearest versions it has.
    """
    if pinned is not None:
        pbs_index.parse_version(version)  # a pin is of an X.Y.Z too
        return _pinned_source(version, platform, pinned)
    entry = pbs_index.lookup(version, platform)
    assert entry.sha256 is not None  # `lookup` gives only archives with one
    url = _mirror_url(mirror, entry.url, entry.filename) if mirror else entry.url
    return PythonSource(version, platform, url, entry.sha256.lower(), entry.filename)


def pinned_archive(vc: VariantConfig, platform: Platform) -> PinnedArchive | None:
    """The archive the variant pins for `platform` (`[python.archives.<platform>]`), if any."""
    spec = vc.config.python.archives.get(platform)
    if spec is None:
        return None
    path = (vc.folder / spec.path).resolve() if spec.path else None
    return PinnedArchive(url=spec.url, path=path, sha256=spec.sha256)


def choose_mirror(option: str | None, configured: str | None) -> str | None:
    """The mirror to use: `--python-mirror`, else `$RUNENV_PYTHON_MIRROR`, else the config's."""
    return option or os.environ.get(MIRROR_ENV) or configured


def variant_source(vc: VariantConfig, platform: Platform, *, mirror: str | None) -> PythonSource:
    """Where a variant's interpreter for `platform` comes from: pinned, mirror, or upstream.

    `mirror` is the command line's `--python-mirror` (None: the environment's, else the
    config's).
    """
    return resolve(
        vc.python_version,
        platform,
        mirror=choose_mirror(mirror, vc.config.python.mirror),
        pinned=pinned_archive(vc, platform),
    )


def _pinned_source(version: str, platform: Platform, pinned: PinnedArchive) -> PythonSource:
    if pinned.path is not None:
        path = pinned.path.expanduser().resolve()
        url, name = str(path), path.name
    else:
        assert pinned.url is not None
        url = pinned.url
        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        name = f"cpython-{version}-{platform.value}.tar.gz"
    return PythonSource(version, platform, url, pinned.sha256.lower(), name)


def download(
    source: PythonSource,
    cache: Cache,
    *,
    client: httpx.Client | None = None,
    timeout: float = 300.0,
    offline: bool = False,
    progress: bool = False,
) -> Path:
    """The verified archive of `source` in the cache, downloaded only if not there yet."""
    how = FetchOptions(client, timeout, offline, progress)
    try:
        return fetch_to_cache(cache, CACHE_SECTION, source.url, source.sha256, source.filename, how)
    except FetchError as exc:
        if offline or not source.url.startswith(UPSTREAM_PREFIXES):
            raise
        # Upstream is GitHub: say how to get Python where GitHub cannot be reached.
        raise FetchError(
            f"{exc} (where GitHub is out of reach, use a mirror: --python-mirror URL or "
            f"{MIRROR_ENV}, or pin the archive in [python.archives.{source.platform.value}])"
        ) from None


def unpack(archive: Path, dest: Path, *, apart: bool = False) -> Path:
    """Extract a PBS archive into `dest` (its top `python/` folder stripped); return `dest`.

    `dest` is replaced atomically under a file lock; nothing is left behind on failure. With
    `apart`, in a process of its own (`extract_tar_apart`: for a caller with busy threads).
    """
    lock = lock_for(dest)
    with lock:
        try:
            return extract_tar_apart(archive, dest) if apart else extract_tar(archive, dest)
        finally:
            # The parent holds only `dest`; waiters retry on a fresh lock file.
            with contextlib.suppress(OSError):  # Windows will not delete an open file
                Path(lock.lock_file).unlink(missing_ok=True)


def fetch_python(
    version: str,
    platform: Platform,
    dest: Path,
    *,
    cache: Cache,
    mirror: str | None = None,
    pinned: PinnedArchive | None = None,
    client: httpx.Client | None = None,
    timeout: float = 300.0,
    offline: bool = False,
    progress: bool = False,
) -> Path:
    """Resolve, download and unpack CPython `version` for `platform` into `dest`; return `dest`."""
    source = resolve(version, platform, mirror=mirror, pinned=pinned)
    archive = download(
        source, cache, client=client, timeout=timeout, offline=offline, progress=progress
    )
    return unpack(archive, dest)


def fetch_many(
    version: str,
    targets: Mapping[Platform, Path],
    *,
    cache: Cache,
    mirror: str | None = None,
    pinned: Mapping[Platform, PinnedArchive] | None = None,
    client: httpx.Client | None = None,
    timeout: float = 300.0,
    offline: bool = False,
    progress: bool = False,
    max_workers: int | None = None,
) -> dict[Platform, Path]:
    """`fetch_python` for each platform -> dest in `targets`, concurrently over one client.

    Everything is resolved first, so a bad version or platform fails before any download.
    Every fetch runs to its end; then the first failure (in `targets` order) is raised.
    """
    pins = pinned or {}
    sources = {p: resolve(version, p, mirror=mirror, pinned=pins.get(p)) for p in targets}
    if not sources:
        return {}
    own = client is None
    http = new_client(timeout) if client is None else client
    try:

        def one(platform: Platform) -> Path:
            archive = download(
                sources[platform],
                cache,
                client=http,
                timeout=timeout,
                offline=offline,
                progress=progress,
            )
            return unpack(archive, targets[platform])

        with ThreadPoolExecutor(
            max_workers=max_workers or len(sources), thread_name_prefix="fetch-python"
        ) as pool:
            futures = {p: pool.submit(one, p) for p in sources}
        results: dict[Platform, Path] = {}
        errors: list[BaseException] = []
        for platform, future in futures.items():
            exc = future.exception()
            if exc is None:
                results[platform] = future.result()
            else:
                log.error("%s: %s", platform.value, exc)
                errors.append(exc)
        if errors:
            raise errors[0]
        return results
    finally:
        if own:
            http.close()
