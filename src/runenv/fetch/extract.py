"""Safe extraction of PBS-style tar archives.

The archive is read once, as a stream (a gzip tar listed first and then extracted is inflated
twice). Every entry is checked, against those before it, before it is written, and the error names
the entry at fault: absolute paths, `..` components, device and other special files, entries that
would be written through a symlink, symlinks whose target leaves the tree and hard links to
anything but a regular file inside the tree are refused. Extraction goes into a staged directory
that takes the destination's place only when complete, so a refused or broken archive leaves
nothing behind. Exec bits and in-tree symlinks (`bin/python3 -> python3.12`) are kept. tarfile's
own `data` filter runs as a second line of defence where this Python has it.
"""

from __future__ import annotations

import bz2
import copy
import gzip
import io
import lzma
import os
import posixpath
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from runenv import _subprocess
from runenv._cache import staged_dir
from runenv.errors import RunenvError, SubprocessError, UnsafeArchiveError

PBS_TOP = "python"


def extract_tar(archive: Path, dest: Path, *, strip: str | None = PBS_TOP) -> Path:
    """Extract `archive` (.tar, .tar.gz, .tar.bz2, .tar.xz) into `dest` and return `dest`.

    With `strip`, every entry must sit under that top folder (PBS archives hold `python/`),
    which is removed from the extracted paths. `dest` is replaced as a whole, atomically.
    Raises UnsafeArchiveError naming the offending entry, RunenvError if unreadable.
    """
    try:
        with (
            _decompressed(archive) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
            staged_dir(dest) as tmp,
        ):
            tops: list[tarfile.TarInfo] = []
            members = iter_planned(_noting_top(tar, strip, tops), strip=strip, archive=archive.name)
            _extract(tar, members, tmp)
            check_links(tmp, archive=archive.name)
            tmp.chmod(_root_mode(tops))  # mkdtemp made it 0700
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):  # our checks should have caught it first
            raise UnsafeArchiveError(
                f"{archive.name}: refused entry {exc.tarinfo.name!r}: {exc}"
            ) from None
        raise RunenvError(f"{archive.name}: cannot extract: {exc}") from None
    return dest


# Run by `extract_tar_apart` in a Python process of its own: argv is archive, dest, strip.
_CHILD = """
import sys
from pathlib import Path
from runenv.fetch.extract import extract_tar
from runenv.errors import RunenvError, UnsafeArchiveError
archive, dest, strip = sys.argv[1:4]
try:
    extract_tar(Path(archive), Path(dest), strip=strip or None)
except RunenvError as exc:
    kind = "UNSAFE" if isinstance(exc, UnsafeArchiveError) else "ERROR"
    print("RUNENV-EXTRACT", kind, str(exc).replace("\\n", " "))
    sys.exit(3)
"""


def extract_tar_apart(
    archive: Path, dest: Path, *, strip: str | None = PBS_TOP, timeout: float | None = None
) -> Path:
    """`extract_tar` in a Python process of its own, with the same errors.

    tarfile's work per entry holds the GIL: beside a build's threads that make wheel images,
    a PBS archive that unpacks in 0.3 s alone took 2.5 s, and the bytecode compiles wait for
    that interpreter.
    """
    package_root = Path(__file__).resolve().parent.parent  # this very runenv, in the child
    path = os.pathsep.join(p for p in (str(package_root), os.environ.get("PYTHONPATH")) if p)
    try:
        _subprocess.run(
            [sys.executable, "-c", _CHILD, archive, dest, strip or ""],
            what=f"unpacking {archive.name}",
            env={"PYTHONPATH": path},
            timeout=timeout,
        )
    except SubprocessError as exc:
        marked = [ln for ln in exc.output_tail.splitlines() if ln.startswith("RUNENV-EXTRACT ")]
        if not marked:
            raise
        _, kind, message = marked[-1].split(" ", 2)
        raise (UnsafeArchiveError if kind == "UNSAFE" else RunenvError)(message) from None
    return dest


def _decompressed(archive: Path) -> io.BufferedIOBase:
    """`archive` opened for reading, decompressed by its magic bytes.

    These readers, unlike tarfile's stream mode ("r|gz"), read every member of a multi-member
    gzip (runenv's own archives are such, `runenv.artifact.pack`) or bzip2/xz file.
    """
    with archive.open("rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(archive, "rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(archive, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(archive, "rb")
    return archive.open("rb")


def _noting_top(
    members: Iterable[tarfile.TarInfo], strip: str | None, tops: list[tarfile.TarInfo]
) -> Iterator[tarfile.TarInfo]:
    """`members` as they come; the top folder's entries are also put in `tops`."""
    for member in members:
        if strip is not None and member.isdir() and member.name.strip("/") in (strip, f"./{strip}"):
            tops.append(member)
        yield member


def _root_mode(tops: list[tarfile.TarInfo]) -> int:
    """The tree root's mode: the top folder's, readable and searchable by its owner."""
    return (tops[0].mode & 0o755) | 0o700 if tops else 0o755


def _extract(tar: tarfile.TarFile, members: Iterable[tarfile.TarInfo], dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # pragma: no cover - Python < 3.11.4
        tar.extractall(dest, members=members)


def _clean_name(name: str, archive: str) -> PurePosixPath:
    """The entry's path with `.` parts dropped; refuses absolute paths and `..`."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: absolute or non-POSIX path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: refused entry {name!r}: '..' leaves the tree")
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _inside(path: str) -> bool:
    """Whether a normalised relative POSIX path stays inside the tree."""
    return path == "." or not (path == ".." or path.startswith("../") or path.startswith("/"))


def iter_planned(
    members: Iterable[tarfile.TarInfo], *, strip: str | None = PBS_TOP, archive: str = "archive"
) -> Iterator[tarfile.TarInfo]:
    """Check each entry against those before it and yield it renamed for extraction (top
    folder stripped), so a stream is checked as it is read.

    Raises UnsafeArchiveError naming the first entry that could write or point outside.
    """
    kinds: dict[PurePosixPath, str] = {}
    modes: dict[PurePosixPath, int] = {}
    for member in members:
        rel = _clean_name(member.name, archive)
        if strip is not None:
            if not rel.parts or rel.parts[0] != strip:
                raise UnsafeArchiveError(
                    f"{archive}: refused entry {member.name!r}: not under the top folder {strip}/"
                )
            rel = PurePosixPath(*rel.parts[1:])
        if not rel.parts:  # the top folder itself
            if not member.isdir():
                raise UnsafeArchiveError(f"{archive}: refused entry {member.name!r}: not a folder")
            continue
        for parent in list(rel.parents)[:-1]:
            if kinds.get(parent) == "symlink":
                raise UnsafeArchiveError(
                    f"{archive}: refused entry {member.name!r}: it would be written through "
                    f"the symlink {parent}"
                )
        if kinds.get(rel) == "symlink":
            raise UnsafeArchiveError(
                f"{archive}: refused entry {member.name!r}: it would replace the symlink {rel}"
            )
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
            resolved = posixpath.normpath(posixpath.join(str(rel.parent), target))
            if not _inside(resolved):
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {member.name!r} -> {target!r}: leaves the tree"
                )
            kind = "symlink"
        elif member.islnk():
            try:
                link = _clean_name(member.linkname, archive)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "leaves the tree"
                ) from None
            if strip is not None:
                if not link.parts or link.parts[0] != strip:
                    raise UnsafeArchiveError(
                        f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                        "leaves the tree"
                    )
                link = PurePosixPath(*link.parts[1:])
            if kinds.get(link) != "file":
                raise UnsafeArchiveError(
                    f"{archive}: refused hard link {member.name!r} -> {member.linkname!r}: "
                    "not a regular file extracted before it"
                )
            member = copy.copy(member)
            member.linkname = str(link)
            member.mode = modes[link]  # tarfile chmods the shared inode: keep the file's mode
            kind = "file"
        elif member.isreg():
            kind = "file"
        elif member.isdir():
            kind = "dir"
        else:
            raise UnsafeArchiveError(
                f"{archive}: refused entry {member.name!r}: device, fifo or other special file"
            )
        member = copy.copy(member)  # the archive's own index keeps the original names
        member.name = str(rel)
        kinds[rel] = kind
        modes[rel] = member.mode
        yield member


def check_links(root: Path, *, archive: str = "archive") -> None:
    """Refuse a tree with a symlink that, followed through the others, resolves outside `root`."""
    real_root = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            resolved = Path(os.path.realpath(path))
            if resolved != real_root and real_root not in resolved.parents:
                entry = path.relative_to(root).as_posix()
                raise UnsafeArchiveError(
                    f"{archive}: refused symlink {entry!r} -> {str(path.readlink())!r}: "
                    "resolves outside the tree"
                )
