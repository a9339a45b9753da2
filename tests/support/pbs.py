"""A PBS-shaped CPython archive made from the running interpreter, for tests without GitHub.

The archive looks like a python-build-standalone `install_only` archive for the host:

    python/bin/python3.X            copy of the running interpreter's real executable
    python/bin/python3, python      symlinks to python3.X
    python/lib/python3.X/           the stdlib, without tests, idlelib, tkinter, turtledemo,
                                    __pycache__ and (by default) ensurepip; with lib-dynload
    python/lib/python3.X/site-packages/   empty
    python/lib/libpython3.X.so*     when the interpreter is built shared
    python/include/python3.X/       the C headers (native source builds need them)

The copied executable finds its prefix from where it sits, so an extracted tree runs from
anywhere on this machine and `sys.prefix` is the tree's root. It is built once per process
(`pbs_archive()`), reproducibly (sorted entries, fixed mtimes, no owners), and copied from there:

    path, sha256 = make_pbs_archive(tmp_path)                  # tmp_path/python.tar.gz
    path, sha256 = write_pbs_copy(mirror_root / PBS_TAG)       # cpython-3.11.7+20250101-...
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runenv.platforms import host_platform

PBS_TAG = "20250101"
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PY_XY = "{}.{}".format(*sys.version_info[:2])
HOST_TRIPLE = host_platform().info.pbs_triple
FIXED_MTIME = 1_700_000_000

_SKIP_DIRS = {
    "test",
    "tests",
    "idle_test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "__pycache__",
    "site-packages",
    "ensurepip",
}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".a", ".o")

_lock = threading.Lock()
_built: tuple[Path, str] | None = None


def pbs_filename(version: str = PY_VERSION, triple: str = HOST_TRIPLE, tag: str = PBS_TAG) -> str:
    """The name PBS gives this archive, e.g. `cpython-3.11.7+20250101-x86_64-...-gnu-...`."""
    return f"cpython-{version}+{tag}-{triple}-install_only_stripped.tar.gz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def build_pbs_tree(dest: Path, *, ensurepip: bool = False) -> Path:
    """Write the `python/` tree (see the module docstring) under `dest`; return `dest/python`."""
    root = dest / "python"
    bindir, libdir = root / "bin", root / "lib"
    bindir.mkdir(parents=True)
    exe = Path(os.path.realpath(sys.executable))
    shutil.copy2(exe, bindir / f"python{PY_XY}")
    for alias in ("python3", "python"):
        (bindir / alias).symlink_to(f"python{PY_XY}")

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = _SKIP_DIRS - ({"ensurepip"} if ensurepip else set())

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skip or n.endswith(_SKIP_SUFFIXES)}

    shutil.copytree(stdlib, libdir / f"python{PY_XY}", symlinks=True, ignore=ignore)
    (libdir / f"python{PY_XY}" / "site-packages").mkdir()

    shared_libdir = sysconfig.get_config_var("LIBDIR")
    if shared_libdir and sysconfig.get_config_var("Py_ENABLE_SHARED"):
        for lib in sorted(Path(shared_libdir).glob("libpython3*.so*")):
            target = libdir / lib.name
            if lib.is_symlink():
                target.symlink_to(os.readlink(lib))
            else:
                shutil.copy2(lib, target)

    include = Path(sysconfig.get_paths()["include"])
    if include.is_dir():
        shutil.copytree(include, root / "include" / include.name, symlinks=True)
    _strip_binaries(root)
    return root


def _strip_binaries(root: Path) -> None:
    """Strip debug info from ELF files, as PBS's `_stripped` archives are (best effort)."""
    strip = shutil.which("strip")
    if strip is None or sys.platform != "linux":
        return
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    if files:
        subprocess.run(
            [strip, "--strip-unneeded", *map(str, files)],
            check=False,
            capture_output=True,
            timeout=120,
        )


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def write_tar_gz(out: Path, root: Path, arcroot: str = "python") -> Path:
    """Pack the tree `root` as `arcroot/...` into a reproducible .tar.gz at `out`."""
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [root, *sorted(root.rglob("*"))]:
            name = arcroot if path == root else f"{arcroot}/{path.relative_to(root).as_posix()}"
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return out


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
            build_pbs_tree(workdir / "tree")
            out = write_tar_gz(workdir / pbs_filename(), workdir / "tree" / "python")
            shutil.rmtree(workdir / "tree")
            _built = (out, sha256_of(out))
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
