"""Paths written in a checkout, a config or a manifest: checked as written, before use.

The one rule (`inside`): such a path is relative, has no `..` component, and is walked one
component at a time with `lstat` from the folder it is relative to (`runenv._shared.paths`,
the walk the catalogue package takes too); a component that is a symbolic link must lead
(wholly resolved) inside that folder, and the walk goes on from where it leads. What the
caller then reads or writes is the path the walk returns, never the text again.
"""

from __future__ import annotations

import re
from pathlib import Path

from runenv._shared.paths import LEADS_OUT, NOT_A_FOLDER, WalkRefused, walk

_DRIVE = re.compile(r"[A-Za-z]:", re.ASCII)


class PathRefused(ValueError):
    """A written path that names something outside its folder; `str()` says why."""


def parts_of(text: str) -> list[str]:
    """The components of a written relative path (`/` or `\\` separated, `.` dropped).

    PathRefused when it is empty, absolute, names a drive or has a `..` component.
    """
    normal = text.replace("\\", "/")
    if not normal or normal.startswith("/") or _DRIVE.match(normal):
        raise PathRefused(f"{text!r} is not a relative path")
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"{text!r} has a '..' component: name the file from its own folder")
    if not parts:
        raise PathRefused(f"{text!r} names no file")
    if any("\0" in p for p in parts):
        raise PathRefused(f"{text!r} holds a NUL character")
    return parts


def inside(base: Path, text: str) -> Path:
    """The real path `text` names under `base` (`runenv._shared.paths.walk`, the walk the
    catalogue's manifest paths take).

    A component that does not exist ends the walk: the rest is appended as written (it has no
    `..`), so the caller's own "does not exist" message names it. PathRefused when the text is
    not a plain relative path or a link component leads out of `base`.
    """
    parts = parts_of(text)
    try:
        current, walked = walk(base, parts)
    except WalkRefused as exc:
        if exc.reason == NOT_A_FOLDER:
            raise PathRefused(f"{text!r}: {exc.at.name} is not a folder") from None
        if exc.reason == LEADS_OUT:
            shown = "/".join(parts[: exc.index + 1])
            raise PathRefused(f"{text!r}: {shown} is a link that leads out of its folder") from None
        raise PathRefused(f"{text!r}: a loop of links") from None
    return current.joinpath(*parts[walked:])
