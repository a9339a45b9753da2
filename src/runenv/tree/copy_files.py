"""The copy-files stage: copy the variant's extra files (`copyFiles`) into the runtime tree.

Nothing outside the variant folder reaches the tree. The sources are resolved and kept inside
the variant folder by the config (`config._resolve_copies`); inside a copied folder, a symbolic
link is copied *as a link* when its target, followed to the end, stays inside that copied folder
(so in the tree it points at the copy: `libfoo.so -> libfoo.so.1`, `bin/tool -> ../libexec/tool`
keep working and are not duplicated), and is refused, with a line naming it, when it is absolute,
dangling or leads anywhere else: following it would put outside bytes in the archive, and
copying it would leave a link pointing out of the runtime. Anything that is neither a file, a
folder nor such a link (a FIFO, a socket, a device) is refused too.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from runenv.config.plan import CopyStep
from runenv.errors import BuildError


def copy_files(steps: Iterable[CopyStep], root: Path) -> list[str]:
    """Copy each step under `root`; return the runtime-relative paths of the entries written.

    A folder source copies its contents into `dest`; a file source is written at `dest`, or
    inside it when `dest` is an existing folder. Modes (the exec bit) are kept.
    """
    written: list[str] = []
    root_resolved = root.resolve()
    for step in steps:
        dest = (root / step.dest).resolve()
        if not dest.is_relative_to(root_resolved):
            raise BuildError(f"copyFiles: {step.dest} leaves the runtime root")
        if step.source.is_dir():
            for src in _walk(step.source):
                target = dest / src.relative_to(step.source)
                if src.is_symlink():
                    written.append(_link(src, step.source, target, root_resolved))
                elif not src.is_dir():
                    written.append(_copy(src, target, root_resolved))
        else:
            target = dest / step.source.name if dest.is_dir() else dest
            written.append(_copy(step.source, target, root_resolved))
    return sorted(set(written))


def _walk(folder: Path) -> list[Path]:
    """Every entry below `folder`, sorted, without descending into linked folders."""
    found: list[Path] = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        base = Path(here)
        found.extend(base / name for name in (*dirs, *files))
    return sorted(found)


def _link(src: Path, folder: Path, target: Path, root: Path) -> str:
    """Recreate the link `src` at `target`, if it stays inside the copied `folder`."""
    text = str(src.readlink())
    # Inside twice over: the text, read from the link's folder, never climbs above the copied
    # folder (so the copy points at the copy), and the whole chain really ends inside it.
    here = src.parent.relative_to(folder).as_posix()
    lexical = os.path.normpath(f"{here}/{text}").replace(os.sep, "/")
    resolved = Path(os.path.realpath(src))  # not Path.resolve: it raises on a link loop
    inside = (
        not Path(text).is_absolute()
        and lexical != ".."
        and not lexical.startswith("../")
        and resolved.exists()
        and resolved.is_relative_to(folder.resolve())
    )
    if not inside:
        raise BuildError(
            f"copyFiles: {src} is a link to {text!r}, outside the copied folder {folder}: "
            "replace it with the file itself, or with a relative link inside that folder"
        )
    _prepare(target, root)
    target.symlink_to(text)
    return target.relative_to(root).as_posix()


def _copy(src: Path, target: Path, root: Path) -> str:
    mode = src.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise BuildError(f"copyFiles: {src} is not a regular file, folder or link: remove it")
    _prepare(target, root)
    shutil.copy2(src, target, follow_symlinks=False)
    return target.relative_to(root).as_posix()


def _prepare(target: Path, root: Path) -> None:
    """Make `target`'s folder (inside the tree: never through a link leading out) and check
    nothing but a regular file would be replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root):
        raise BuildError(f"copyFiles: {target.parent} leads out of the runtime root")
    if target.is_symlink() or target.is_dir():
        raise BuildError(f"copyFiles: {target.relative_to(root)} exists and is not a file")
    target.unlink(missing_ok=True)
