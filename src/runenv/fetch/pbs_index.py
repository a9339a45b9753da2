"""The python-build-standalone (PBS) index that the `pbs-installer` package ships: which
`install_only` archive, with its sha256, holds CPython X.Y.Z for a platform (no hand-written
table of releases here), and which versions are nearest when it has none.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any
from urllib.parse import unquote

from runenv.errors import UsageError
from runenv.platforms import Platform

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)", re.ASCII)


@dataclass(frozen=True)
class IndexEntry:
    """One archive of the index: its upstream URL, file name and sha256 (if the index has it)."""

    url: str
    filename: str
    sha256: str | None


def _installer_version() -> str:
    try:
        return dist_version("pbs-installer")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


@functools.cache
def load() -> dict[tuple[int, int, int], dict[tuple[str, str], IndexEntry]]:
    """CPython (not free-threaded) install_only archives in pbs-installer's index.

    Keyed by (major, minor, micro), then by (os, arch) as pbs-installer spells them. Read from
    the `versions.json` it ships, so `PBS_INSTALLER_BASE_URL` does not rewrite the URLs.
    Where both exist, `install_only_stripped` wins over `install_only`.
    """
    try:
        text = resources.files("pbs_installer").joinpath("versions.json").read_text("utf-8")
        payload: list[dict[str, Any]] = json.loads(text)
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - older layouts
        payload = _payload_from_module()
    index: dict[tuple[int, int, int], dict[tuple[str, str], IndexEntry]] = {}
    for item in payload:
        pv = item["python_version"]
        if pv.get("implementation") != "cpython" or pv.get("freethreaded"):
            continue
        files = index.setdefault((pv["major"], pv["minor"], pv["micro"]), {})
        for f in item["files"]:
            name = f.get("filename") or unquote(f["url"].rsplit("/", 1)[-1])
            if not f.get("install_only") or not name.endswith(".tar.gz"):
                continue
            key = (f["platform"], f["arch"])
            entry = IndexEntry(f["url"], name, f.get("sha256"))
            if key not in files or _rank(name) < _rank(files[key].filename):
                files[key] = entry
    return index


def _rank(filename: str) -> int:
    return 0 if "install_only_stripped" in filename else 1


def _payload_from_module() -> list[dict[str, Any]]:  # pragma: no cover - older pbs-installer
    from pbs_installer._versions import PYTHON_VERSIONS

    payload: list[dict[str, Any]] = []
    for ver, files in PYTHON_VERSIONS.items():
        entries = [
            {
                "platform": plat,
                "arch": arch,
                "install_only": inst,
                "url": url,
                "sha256": sha,
                "filename": unquote(url.rsplit("/", 1)[-1]),
            }
            for (plat, arch, inst), (url, sha) in files.items()
        ]
        payload.append(
            {
                "python_version": {
                    "implementation": ver.implementation,
                    "major": ver.major,
                    "minor": ver.minor,
                    "micro": ver.micro,
                    "freethreaded": ver.freethreaded,
                },
                "files": entries,
            }
        )
    return payload


def nearest_versions(
    wanted: tuple[int, int, int], available: Iterable[tuple[int, int, int]], count: int = 5
) -> list[str]:
    """The available versions closest to `wanted`, as "X.Y.Z" strings.

    The nearest micro versions of the same X.Y if it has any; else the newest micro of each of
    the nearest X.Y series.
    """
    versions = set(available)
    same = [v for v in versions if v[:2] == wanted[:2]]
    if same:
        best = sorted(same, key=lambda v: (abs(v[2] - wanted[2]), -v[2]))
    else:
        newest: dict[tuple[int, int], tuple[int, int, int]] = {}
        for v in versions:
            newest[v[:2]] = max(newest.get(v[:2], v), v)
        order = sorted(
            newest,
            key=lambda xy: (abs((xy[0] - wanted[0]) * 1000 + xy[1] - wanted[1]), -xy[0], -xy[1]),
        )
        best = [newest[xy] for xy in order]
    return [".".join(map(str, v)) for v in best[:count]]


def parse_version(version: str) -> tuple[int, int, int]:
    """`version` as (major, minor, micro); a UsageError unless it is X.Y.Z (for an X.Y, naming
    the newest micro version the index has)."""
    match = _VERSION.fullmatch(version.strip())
    if match:
        major, minor, micro = (int(g) for g in match.groups())
        return major, minor, micro
    partial = re.fullmatch(r"(\d+)\.(\d+)", version.strip(), re.ASCII)
    if not partial:
        raise UsageError(f"Python version {version!r} is not X.Y.Z (e.g. 3.12.10)")
    xy = (int(partial.group(1)), int(partial.group(2)), 999)
    newest = nearest_versions(xy, load(), count=1)
    raise UsageError(
        f"Python version {version!r} is not X.Y.Z: name the micro version, e.g. "
        f"{newest[0] if newest else version + '.0'}"
    )


def lookup(version: str, platform: Platform) -> IndexEntry:
    """The index's archive of CPython `version` (X.Y.Z) for `platform`, with its sha256.

    A version or platform the index lacks is a UsageError naming the nearest versions it has;
    an archive without a sha256, one saying to pin the archive instead.
    """
    wanted = parse_version(version)
    info = platform.info
    index = load()
    files = index.get(wanted)
    entry = files.get((info.os, info.arch)) if files else None
    where = f"pbs-installer {_installer_version()}"
    if entry is None:
        having = [v for v, fs in index.items() if (info.os, info.arch) in fs]
        nearest = ", ".join(nearest_versions(wanted, having)) or "none"
        lacks = "has no" if files is None else "has no install_only build of"
        raise UsageError(
            f"the python-build-standalone index of {where} {lacks} CPython {version} for "
            f"{platform.value}; nearest versions it has: {nearest} (upgrade pbs-installer for "
            f"newer releases, or pin an archive in [python.archives.{platform.value}])"
        )
    if not entry.sha256:
        raise UsageError(
            f"the index of {where} gives no sha256 for {entry.filename}; pin the archive with "
            f"its sha256 in [python.archives.{platform.value}]"
        )
    return entry
