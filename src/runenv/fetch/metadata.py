"""A distribution's Requires-Dist, read offline from a wheel's METADATA or an sdist's PKG-INFO."""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.parser import BytesParser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version


def wheel_requires(path: Path | None) -> list[Requirement] | None:
    """A wheel's Requires-Dist, from its METADATA; None when it cannot be read."""
    if path is None:
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                return None
            return _parse_requires(zf.read(names[0]), static_only=False)
    except (OSError, zipfile.BadZipFile):
        return None


def sdist_requires(path: Path | None) -> list[Requirement] | None:
    """An sdist's Requires-Dist, only when its PKG-INFO vouches for it (Metadata-Version 2.2+,
    not Dynamic); else None."""
    if path is None or not path.name.endswith(".tar.gz"):
        return None
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                if member.isfile() and re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                    fh = tf.extractfile(member)
                    return _parse_requires(fh.read(), static_only=True) if fh else None
    except (OSError, tarfile.TarError):
        return None
    return None


def _parse_requires(metadata: bytes, *, static_only: bool) -> list[Requirement] | None:
    msg = BytesParser().parsebytes(metadata, headersonly=True)
    if static_only:
        try:
            version = Version(str(msg.get("Metadata-Version", "1.0")))
        except InvalidVersion:
            return None
        dynamic = {str(d).strip().lower() for d in msg.get_all("Dynamic") or ()}
        if version < Version("2.2") or "requires-dist" in dynamic:
            return None
    try:
        return [Requirement(str(r)) for r in msg.get_all("Requires-Dist") or ()]
    except InvalidRequirement:
        return None  # metadata pip could not use either: not an answer
