"""The copy-files stage: copy the variant's extra files (`copyFiles`) into the runtime tree."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from runenv.errors import BuildError
from runenv.plan import CopyStep


def copy_files(steps: Iterable[CopyStep], root: Path) -> list[str]:
    """Copy each step under `root`; return the runtime-relative paths of the files written.

    A folder source copies its contents into `dest`; a file source is written at `dest`, or
    inside it when `dest` is an existing folder. Modes (the exec bit) are kept; links are
    copied as the files they point to, so nothing in the tree points back at the variant folder.
    """
    written: list[str] = []
    root_resolved = root.resolve()
    for step in steps:
        dest = (root / step.dest).resolve()
        if not dest.is_relative_to(root_resolved):
            raise BuildError(f"copyFiles: {step.dest} leaves the runtime root")
        if step.source.is_dir():
            for src in sorted(step.source.rglob("*")):
                if src.is_dir():
                    continue
                target = dest / src.relative_to(step.source)
                written.append(_copy(src, target, root_resolved))
        else:
            target = dest / step.source.name if dest.is_dir() else dest
            written.append(_copy(step.source, target, root_resolved))
    return sorted(set(written))


def _copy(src: Path, target: Path, root: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.is_dir():
        raise BuildError(f"copyFiles: {target.relative_to(root)} exists and is not a file")
    shutil.copy2(src, target)
    return target.relative_to(root).as_posix()
