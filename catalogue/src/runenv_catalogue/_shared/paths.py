"""A relative path walked under its folder: the one walk runenv's written paths (configs,
checkouts) and the catalogue's manifest paths take before anything is read through them.

One component at a time with `lstat`, from the folder resolved; a component that is a
symbolic link must lead, wholly resolved, inside that folder, and the walk goes on from where
it leads. What the caller then uses is the path the walk returns, never the text again:
checking `resolve()` and then using the written path (which the OS walks differently once a
link is followed by `..`) is how a copy reached outside a project.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from .inputs import Refused

NOT_A_FOLDER = "not a folder"
BROKEN = "a broken link or a loop of links"
LEADS_OUT = "a link that leads out of its folder"


class WalkRefused(Refused):
    """The walk cannot go on at component `index` (`reason`, one of the constants above);
    `at` is the folder it had reached. The caller words the message."""

    def __init__(self, reason: str, index: int, at: Path) -> None:
        super().__init__(reason)
        self.reason, self.index, self.at = reason, index, at


def walk(root: Path, parts: Sequence[str], *, strict: bool = False) -> tuple[Path, int]:
    """The real path `parts` (plain components, no `..`) name under `root`, and how many of
    them were walked: fewer than all when one does not exist, where the walk stops.

    `strict`: a link that leads nowhere is refused (else it is followed to where it would
    lead, inside `root`, and the walk stops there). WalkRefused for a component under a
    non-folder, a broken link or a loop (`strict`), a link leading out of `root`; OSError as
    `lstat` raises it otherwise.
    """
    base = root.resolve()
    current = base
    for i, part in enumerate(parts):
        step = current / part
        try:
            mode = step.lstat().st_mode
        except FileNotFoundError:
            return current, i
        except NotADirectoryError:
            raise WalkRefused(NOT_A_FOLDER, i, current) from None
        if stat.S_ISLNK(mode):
            try:
                step = step.resolve(strict=strict)
            except (OSError, RuntimeError):  # a loop of links: RuntimeError before 3.13
                raise WalkRefused(BROKEN, i, current) from None
            if not step.is_relative_to(base):
                raise WalkRefused(LEADS_OUT, i, current)
        current = step
    return current, len(parts)
