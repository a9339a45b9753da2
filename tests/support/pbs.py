"""PBS-shaped CPython archives for tests without GitHub, written by `support.standin`.

That module (which `scripts/standin_pbs.py`, the command the README documents for machines
without GitHub, runs) is the only writer of PBS-shaped archives and of the bare binary headers
the audits read; it is standard-library only so that any interpreter can run it.

The host archive is a copy of the running interpreter (see the script's `host_tree`); it runs
from wherever it is unpacked on this machine. It is built once per process (`pbs_archive()`)
and copied from there:

    path, sha256 = make_pbs_archive(tmp_path)                  # tmp_path/python.tar.gz
    path, sha256 = write_pbs_copy(mirror_root / PBS_TAG)       # cpython-3.11.7+20250529-...
    path, sha256 = foreign_pbs_archive(Platform.WINDOWS_X64, tmp_path)   # header-only stand-in

`write_tar` writes hand-made (also hostile) tars for extraction tests.
"""

from __future__ import annotations

import atexit
import io
import shutil
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runenv.platforms import Platform, host_platform

from . import standin

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "standin_pbs.py"  # runs `standin`

PBS_TAG: str = standin.PBS_TAG
FIXED_MTIME: int = standin.FIXED_MTIME
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PY_XY = "{}.{}".format(*sys.version_info[:2])
HOST = host_platform()
HOST_TRIPLE = HOST.info.pbs_triple

sha256_of = standin.sha256_of
# Binary headers of the right format and architecture (not loadable; audits read them).
EM_X86_64: int = standin.EM_X86_64
EM_AARCH64: int = standin.EM_AARCH64
CPU_TYPE_X86_64: int = standin.CPU_TYPE_X86_64
CPU_TYPE_ARM64: int = standin.CPU_TYPE_ARM64
IMAGE_FILE_MACHINE_AMD64: int = standin.IMAGE_FILE_MACHINE_AMD64
IMAGE_FILE_MACHINE_ARM64: int = standin.IMAGE_FILE_MACHINE_ARM64
elf_header = standin.elf_header
macho_header = standin.macho_header
macho_fat = standin.macho_fat
pe_header = standin.pe_header

_lock = threading.Lock()
_built: tuple[Path, str] | None = None


def pbs_filename(version: str = PY_VERSION, triple: str = HOST_TRIPLE, tag: str = PBS_TAG) -> str:
    """The name PBS gives this archive, e.g. `cpython-3.11.7+20250529-x86_64-...-gnu-...`."""
    name: str = standin.pbs_filename(version, triple, tag)
    return name


def pbs_archive() -> tuple[Path, str]:
    """The archive built from the running interpreter (once per process) and its sha256.

    It lives in a private temp dir removed at exit: copy it (`make_pbs_archive`,
    `write_pbs_copy`) rather than changing it.
    """
    global _built
    with _lock:
        if _built is None or not _built[0].is_file():
            workdir = Path(tempfile.mkdtemp(prefix="runenv-test-pbs-"))
            atexit.register(shutil.rmtree, workdir, True)
            out = workdir / pbs_filename()
            _built = (out, standin.write_archive(HOST.value, out, host=True))
        return _built


def make_pbs_archive(dest_dir: Path, name: str = "python.tar.gz") -> tuple[Path, str]:
    """Copy the PBS-shaped archive to `dest_dir/name`; return (path, sha256)."""
    src, sha = pbs_archive()
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / name
    shutil.copyfile(src, out)
    return out, sha


def write_pbs_copy(
    dest_dir: Path, *, version: str = PY_VERSION, triple: str = HOST_TRIPLE, tag: str = PBS_TAG
) -> tuple[Path, str]:
    """Copy the archive into `dest_dir` under its PBS file name; return (path, sha256).

    A mirror holds `<mirror>/<tag>/<filename>`, so `write_pbs_copy(mirror / PBS_TAG)` fills one.
    """
    return make_pbs_archive(dest_dir, pbs_filename(version, triple, tag))


def foreign_pbs_archive(platform: Platform, dest_dir: Path) -> tuple[Path, str]:
    """Write `dest_dir/python-<platform>.tar.gz`, the header-only stand-in of `platform`
    (a cross build never runs it; its audit reads the interpreter's header)."""
    out = dest_dir / f"python-{platform.value}.tar.gz"
    return out, standin.write_archive(platform.value, out, host=False)


@dataclass(frozen=True)
class Entry:
    """One member of a hand-made tar (see `write_tar`)."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    return Entry(name, data, tarfile.REGTYPE, mode=mode)


def folder(name: str) -> Entry:
    return Entry(name, type=tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, type=tarfile.LNKTYPE, linkname=target)


def device(name: str) -> Entry:
    return Entry(name, type=tarfile.CHRTYPE, mode=0o600)


def fifo(name: str) -> Entry:
    return Entry(name, type=tarfile.FIFOTYPE, mode=0o600)


def write_tar(out: Path, entries: Iterable[Entry]) -> tuple[Path, str]:
    """Write a .tar.gz holding exactly `entries` (names taken verbatim, even hostile ones)."""
    with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode
            info.linkname = entry.linkname
            info.mtime = FIXED_MTIME
            if entry.type == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return out, sha256_of(out)
