"""The rules every tar entry must pass before it is written: the catalogue's unpack and
runenv's extraction (PBS archives, its own archives) check entries with this one `Planner`.

Refused, naming the first entry at fault: absolute paths, drives, backslashes and `..`;
devices, fifos and other special files; an entry written through or over a symlink; a symlink
whose target is absolute or leaves the tree; a hard link to anything but a regular file
extracted before it. After the tree is written, `check_symlinks` resolves every symlink made,
through the others: none may lead outside. Paths are plain strings (`a/b/c`): this runs once
per entry on the thread that writes the tree.
"""

# ruff: noqa: PTH115, PTH118

from __future__ import annotations

import copy
import os
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UnsafeArchiveError


def clean_name(name: str, archive: str) -> str:
    """The entry's path with `.` parts dropped ("" for the root); refuses absolute paths and
    `..`."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: absolute or non-POSIX path")
    if "//" not in name and "/." not in name and name[:1] != "." and name[-1:] != "/":
        return name  # no empty, `.` or `..` part: clean as it is (most entries)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: '..' leaves the tree")
    return "/".join(parts)


def inside(path: str) -> bool:
    """Whether a normalised relative POSIX path stays inside the tree."""
    return path == "." or not (path == ".." or path.startswith("../") or path.startswith("/"))


class Planner:
    """Checks entries one by one, in archive order, against what came before them.

    With `strip`, every entry must sit under that top folder (PBS archives hold `python/`),
    which is cut from the names (and from hard links' targets).
    """

    def __init__(self, archive: str, *, strip: str | None = None) -> None:
        self.archive = archive
        self.strip = strip
        self.kinds: dict[str, str] = {}
        self.symlinks: set[str] = set()  # the entries that are symlinks now
        # Folders whose path holds none of `symlinks` (emptied when a symlink is added):
        # an entry in one is not looked at part by part.
        self.clear: set[str] = set()

    def _stripped(self, rel: str, top: str, member: tarfile.TarInfo, what: str) -> str:
        """`rel` without the top folder `top`; refused when it is not under it."""
        if rel == top:
            return ""
        if rel.startswith(top + "/"):
            return rel[len(top) + 1 :]
        if what == "entry":
            raise UnsafeArchiveError(
                f"{self.archive}: refused entry {member.name!r}: not under the top folder {top}/"
            )
        raise UnsafeArchiveError(
            f"{self.archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
            "leaves the tree"
        )

    def check(self, member: tarfile.TarInfo) -> tuple[str, str] | None:
        """The entry's clean name and, for a hard link, its target's; None for the tree's
        root itself."""
        archive, kinds = self.archive, self.kinds
        rel = clean_name(member.name, archive)
        if self.strip is not None:
            rel = self._stripped(rel, self.strip, member, "entry")
        if not rel:  # the tree's root itself
            if not member.isdir():
                raise UnsafeArchiveError(f"{archive}: refused entry {member.name!r}: not a folder")
            return None
        if self.symlinks:
            parent = rel.rpartition("/")[0]
            if parent and parent not in self.clear:
                cut = rel.find("/")
                while cut != -1:
                    if rel[:cut] in self.symlinks:
                        raise UnsafeArchiveError(
                            f"{archive}: refused entry {member.name!r}: it would be written "
                            f"through the symlink {rel[:cut]}"
                        )
                    cut = rel.find("/", cut + 1)
                self.clear.add(parent)
            if rel in self.symlinks:
                raise UnsafeArchiveError(
                    f"{archive}: refused entry {member.name!r}: it would replace the symlink {rel}"
                )
        link = ""
        if member.issym():
            target = member.linkname
            if (
                not target
                or target.startswith("/")
                or "\\" in target
                or (len(target) > 1 and target[1] == ":")
            ):
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {member.name!r} -> {target!r}: absolute target"
                )
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
            if not inside(resolved):
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {member.name!r} -> {target!r}: leaves the tree"
                )
            kind = "symlink"
            self.symlinks.add(rel)
            self.clear.clear()  # a folder's path may hold it now
        elif member.islnk():
            try:
                link = clean_name(member.linkname, archive)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "leaves the tree"
                ) from None
            if self.strip is not None:
                link = self._stripped(link, self.strip, member, "hard link")
            if kinds.get(link) != "file":
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "not a regular file extracted before it"
                )
            kind = "file"
        elif member.isreg():
            kind = "file"
        elif member.isdir():
            kind = "dir"
        else:
            raise UnsafeArchiveError(
                f"{archive}: refused entry {member.name!r}: device, fifo or other special file"
            )
        if kind != "symlink":
            self.symlinks.discard(rel)
        kinds[rel] = kind
        return rel, link

    def planned(self, members: Iterable[tarfile.TarInfo]) -> Iterator[tarfile.TarInfo]:
        """Each entry checked (`check`), as it comes, and yielded as a copy with its clean
        name (a hard link with its target's clean name and mode: they share an inode, which
        tarfile chmods); the tree's root is left out."""
        modes: dict[str, int] = {}
        for member in members:
            checked = self.check(member)
            if checked is None:
                continue
            rel, link = checked
            member = copy.copy(member)  # the archive's own index keeps the original names
            member.name = rel
            if link:
                member.linkname, member.mode = link, modes[link]
            modes[rel] = member.mode
            yield member


def plan_members(members: list[tarfile.TarInfo], archive: str) -> list[tarfile.TarInfo]:
    """Every entry checked and renamed (`Planner.planned`), in order."""
    return list(Planner(archive).planned(members))


def check_symlinks(root: Path, links: Iterable[str], archive: str) -> None:
    """Refuse a tree in which one of `links` (made by the unpack), followed through the
    others, resolves outside `root`."""
    real_root = os.path.realpath(root)
    for rel in links:
        path = os.path.join(root, rel)
        resolved = os.path.realpath(path)
        if resolved != real_root and not resolved.startswith(real_root + os.sep):
            raise UnsafeArchiveError(
                f"{archive}: refused symlink {rel!r} -> {os.readlink(path)!r}: "
                "resolves outside the tree"
            )
