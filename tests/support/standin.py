"""Write python-build-standalone-shaped archives for all five platforms, for machines that
cannot reach GitHub (this project's CI and benchmark machines).

Run it with the interpreter the host runtime should be made of (standard library only):

    /path/to/python3.12 scripts/standin_pbs.py OUT --version 3.12.10 [--base-url URL]

(that script runs `main` here), or import it: `from support import standin` in the tests.

- the host platform's archive is a copy of that interpreter (executable, stdlib without tests,
  shared libpython, headers; ELF files stripped as PBS's `_stripped` archives are), which runs
  from wherever it is unpacked on this machine;
- the other four hold the interpreter as a bare binary header of the right format and
  architecture (ELF, Mach-O, PE) in that platform's layout: enough for a cross build, which
  never runs them, and for its audit, which reads them.

Archives land in `OUT/<tag>/<PBS file name>` (the mirror layout), and `OUT/pins.toml` holds a
`[python.archives.<platform>]` table for each, with `url` under `--base-url` (default: the
`file://` URL of OUT) and `sha256`, to append to a variant's config.

This module is also the test suite's only writer of PBS-shaped archives and binary headers
(`support.pbs` builds on it), so it stays one standard-library-only file that imports nothing
of the tests' package: `scripts/standin_pbs.py` runs it under an interpreter with no
site-packages at all.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import os
import platform
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PBS_TAG = "20250529"  # the release tag the archives are named after (any tag works for pins)
TRIPLES = {
    "linux-x64": "x86_64-unknown-linux-gnu",
    "linux-aarch64": "aarch64-unknown-linux-gnu",
    "macosx-x64": "x86_64-apple-darwin",
    "macosx-aarch64": "aarch64-apple-darwin",
    "windows-x64": "x86_64-pc-windows-msvc",
}
FIXED_MTIME = 1_700_000_000
SKIP_DIRS = {
    "test",
    "tests",
    "idle_test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "__pycache__",
    "site-packages",
}
SKIP_SUFFIXES = (".pyc", ".pyo", ".a", ".o")

# Which platform a machine is: the rule runenv and the catalogue package share, read from its
# one file in this checkout (standard library only, no imports of its own).
SHARED_PLATFORMS = (
    Path(__file__).resolve().parents[2] / "catalogue/src/runenv_catalogue/_shared/platforms.py"
)


def _load_shared_platforms() -> Any:
    spec = importlib.util.spec_from_file_location("runenv_shared_platforms", SHARED_PLATFORMS)
    assert spec is not None and spec.loader is not None, SHARED_PLATFORMS
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_platforms = _load_shared_platforms()


def host_key(sys_platform: str | None = None, machine: str | None = None) -> str | None:
    """The platform key of this machine (or of the given `sys.platform`/machine pair);
    None when it is not one of the five."""
    key: str | None = _platforms.platform_for(
        sys.platform if sys_platform is None else sys_platform,
        platform.machine() if machine is None else machine,
    )
    return key


def pbs_filename(version: str, triple: str, tag: str = PBS_TAG) -> str:
    """The name PBS gives an archive, e.g. `cpython-3.12.10+20250529-x86_64-...-gnu-...`."""
    return f"cpython-{version}+{tag}-{triple}-install_only_stripped.tar.gz"


# --------------------------------------------------------------------------- binary headers

EM_X86_64 = 62
EM_AARCH64 = 183
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C
IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_MACHINE_ARM64 = 0xAA64


def elf_header(machine: int = EM_AARCH64) -> bytes:
    """A 64-byte ELF64 little-endian `ET_DYN` header for `machine` (no sections)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return struct.pack("<16sHHIQQQIHHHHHH", ident, 3, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)


def macho_header(cputype: int = CPU_TYPE_ARM64) -> bytes:
    """A 32-byte Mach-O 64 `MH_BUNDLE` header for `cputype` (no load commands)."""
    subtype = 3 if cputype == CPU_TYPE_X86_64 else 0
    return struct.pack("<IiiIIIII", 0xFEEDFACF, cputype, subtype, 8, 0, 0, 0, 0)


def macho_fat(cputypes: Iterable[int]) -> bytes:
    """A universal (fat) Mach-O holding one `macho_header` slice per cputype."""
    types = list(cputypes)
    offset = (8 + 20 * len(types) + 15) // 16 * 16
    arches, slices = b"", b""
    for cputype in types:
        body = macho_header(cputype)
        subtype = 3 if cputype == CPU_TYPE_X86_64 else 0
        arches += struct.pack(">iiIII", cputype, subtype, offset + len(slices), len(body), 4)
        slices += body
    head = struct.pack(">II", 0xCAFEBABE, len(types)) + arches
    return head.ljust(offset, b"\0") + slices


def pe_header(machine: int = IMAGE_FILE_MACHINE_AMD64) -> bytes:
    """A DOS stub + PE signature + COFF header (DLL) + empty PE32+ optional header."""
    dos = b"MZ" + bytes(0x3A) + struct.pack("<I", 64)
    coff = struct.pack("<HHIIIHH", machine, 0, 0, 0, 0, 240, 0x2022)
    optional = struct.pack("<H", 0x20B).ljust(240, b"\0")
    return dos + b"PE\0\0" + coff + optional


# The interpreter header a foreign platform's stand-in carries.
INTERPRETERS = {
    "linux-x64": lambda: elf_header(EM_X86_64),
    "linux-aarch64": lambda: elf_header(EM_AARCH64),
    "macosx-x64": lambda: macho_header(CPU_TYPE_X86_64),
    "macosx-aarch64": lambda: macho_header(CPU_TYPE_ARM64),
    "windows-x64": lambda: pe_header(IMAGE_FILE_MACHINE_AMD64),
}


# --------------------------------------------------------------------------- trees


def host_tree(root: Path) -> Path:
    """A copy of the running interpreter laid out like PBS's `python/`, at `root`.

    The copied executable finds its prefix from where it sits, so the tree runs from anywhere
    on this machine.
    """
    xy = "{}.{}".format(*sys.version_info[:2])
    bindir, libdir = root / "bin", root / "lib"
    bindir.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sys.executable), bindir / f"python{xy}")
    for alias in ("python3", "python"):
        (bindir / alias).symlink_to(f"python{xy}")
    shutil.copytree(
        sysconfig.get_paths()["stdlib"],
        libdir / f"python{xy}",
        symlinks=True,
        ignore=lambda _d, names: {n for n in names if n in SKIP_DIRS or n.endswith(SKIP_SUFFIXES)},
    )
    (libdir / f"python{xy}" / "site-packages").mkdir()
    shared = sysconfig.get_config_var("LIBDIR")
    if shared and sysconfig.get_config_var("Py_ENABLE_SHARED"):
        for lib in sorted(Path(shared).glob("libpython3*.so*")):
            if lib.is_symlink():
                (libdir / lib.name).symlink_to(lib.readlink())
            else:
                shutil.copy2(lib, libdir / lib.name)
    include = Path(sysconfig.get_paths()["include"])
    if include.is_dir():
        shutil.copytree(include, root / "include" / include.name, symlinks=True)
    strip_binaries(root)
    return root


def strip_binaries(root: Path) -> None:
    """Strip debug info from the ELF files under `root`, as PBS's `_stripped` archives are
    (best effort: only on Linux, where `strip` is on PATH)."""
    strip = shutil.which("strip")
    if strip is None or sys.platform != "linux":
        return
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()]
    elves = [p for p in files if p.read_bytes()[:4] == b"\x7fELF"]
    if elves:
        subprocess.run(
            [strip, "--strip-unneeded", *map(str, elves)],
            check=False,
            capture_output=True,
            timeout=120,
        )


def foreign_tree(root: Path, key: str) -> Path:
    """Layout and interpreter header of platform `key` at `root`; nothing that runs."""
    xy = "{}.{}".format(*sys.version_info[:2])
    if key.startswith("windows-"):
        (root / "Lib" / "site-packages").mkdir(parents=True)
        (root / "Lib" / "os.py").write_text("")
        (root / "DLLs").mkdir()
        # PBS's root: the executables and the DLLs they load, beside Lib\ and DLLs\.
        nodot = xy.replace(".", "")
        for name in ("python.exe", "pythonw.exe", "python3.dll", f"python{nodot}.dll",
                     "vcruntime140.dll", "vcruntime140_1.dll"):  # fmt: skip
            (root / name).write_bytes(INTERPRETERS[key]())
        (root / "DLLs" / "_ctypes.pyd").write_bytes(INTERPRETERS[key]())
        return root
    lib = root / "lib" / f"python{xy}"
    (lib / "site-packages").mkdir(parents=True)
    (lib / "os.py").write_text("")
    (root / "bin").mkdir()
    exe = root / "bin" / f"python{xy}"
    exe.write_bytes(INTERPRETERS[key]())
    exe.chmod(0o755)
    (root / "bin" / "python3").symlink_to(exe.name)
    return root


# --------------------------------------------------------------------------- packing


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pack(root: Path, out: Path, arcroot: str = "python") -> str:
    """A reproducible tar.gz of `root` as `arcroot/...` at `out` (sorted entries, fixed
    mtimes, no owners); return its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [root, *sorted(root.rglob("*"))]:
            name = arcroot if path == root else f"{arcroot}/{path.relative_to(root).as_posix()}"
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return sha256_of(out)


def write_archive(key: str, out: Path, *, host: bool) -> str:
    """Write platform `key`'s archive to `out`: the running interpreter when `host`, else
    the header-only stand-in. Return its sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "python"
        if host:
            host_tree(root)
        else:
            foreign_tree(root, key)
        return pack(root, out)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: `OUT --version X [--tag T] [--base-url URL]`."""
    parser = argparse.ArgumentParser(
        prog="standin_pbs.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="{}.{}.{}".format(*sys.version_info[:3]))
    parser.add_argument("--tag", default=PBS_TAG)
    parser.add_argument("--base-url", help="where OUT will be served (default: file://OUT)")
    args = parser.parse_args(argv)
    host = host_key()
    if host is None:
        parser.error(
            f"this machine ({sys.platform}, {platform.machine()}) is not one of the five "
            "platforms: run it on one of them"
        )
    out: Path = args.out.resolve()
    base = (args.base_url or out.as_uri()).rstrip("/")
    pins = []
    for key, triple in TRIPLES.items():
        name = pbs_filename(args.version, triple, args.tag)
        sha = write_archive(key, out / args.tag / name, host=key == host)
        pins.append(
            f'[python.archives.{key}]\nurl = "{base}/{args.tag}/{name}"\nsha256 = "{sha}"\n'
        )
        print(f"{key}: {out / args.tag / name}")
    (out / "pins.toml").write_text("\n".join(pins))
    print(f"pins: {out / 'pins.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
