"""Safe extraction of PBS-style tar archives.

The archive is read once, as a stream (a gzip tar listed first and then extracted is inflated
twice). Every entry is checked, against those before it, before it is written, and the error names
the entry at fault, by the rules the catalogue package unpacks with (`runenv._shared.tar_rules`):
absolute paths, `..` components, device and other special files, entries that would be written
through a symlink, symlinks whose target leaves the tree and hard links to anything but a
regular file inside the tree are refused; every symlink made is resolved at the end.
Extraction goes into a staged directory that takes the destination's place only when complete,
so a refused or broken archive leaves nothing behind. Exec bits and in-tree symlinks
(`bin/python3 -> python3.12`) are kept. tarfile's own `data` filter runs as a second line of
defence where this Python has it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from runenv import _subprocess
from runenv._cache import staged_dir
from runenv._shared import errors
from runenv._shared.tar_rules import Planner, check_symlinks
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
            planner = Planner(archive.name, strip=strip)
            _extract(tar, planner.planned(_noting_top(tar, strip, tops)), tmp)
            check_symlinks(tmp, sorted(planner.symlinks), archive.name)
            tmp.chmod(_root_mode(tops))  # mkdtemp made it 0700
    except errors.UnsafeArchiveError as exc:  # the shared rules raise the catalogue's
        raise UnsafeArchiveError(str(exc)) from None
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
