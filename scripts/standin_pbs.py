"""Write python-build-standalone-shaped archives for all five platforms, for machines that
cannot reach GitHub (this project's CI and benchmark machines).

Run it with the interpreter the host runtime should be made of (standard library only):

    /path/to/python3.12 scripts/standin_pbs.py OUT --version 3.12.10 [--base-url URL]

- the host platform's archive is a copy of that interpreter (executable, stdlib without tests,
  shared libpython, headers), which runs from wherever it is unpacked on this machine;
- the other four hold the interpreter as a bare binary header of the right format and
  architecture (ELF, Mach-O, PE) in that platform's layout: enough for a cross build, which
  never runs them, and for its audit, which reads them.

Archives land in `OUT/<tag>/<PBS file name>` (the mirror layout), and `OUT/pins.toml` holds a
`[python.archives.<platform>]` table for each, with `url` under `--base-url` (default: the
`file://` URL of OUT) and `sha256`, to append to a variant's config.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import platform
import shutil
import struct
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

TRIPLES = {
    "linux-x64": "x86_64-unknown-linux-gnu",
    "linux-aarch64": "aarch64-unknown-linux-gnu",
    "macosx-x64": "x86_64-apple-darwin",
    "macosx-aarch64": "aarch64-apple-darwin",
    "windows-x64": "x86_64-pc-windows-msvc",
}
FIXED_MTIME = 1_700_000_000
SKIP = {
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


def host_key() -> str:
    os_name = {"linux": "linux", "darwin": "macosx", "win32": "windows"}[sys.platform]
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}[
        platform.machine().lower()
    ]
    return f"{os_name}-{arch}"


def elf(machine: int) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 3, machine, 1) + bytes(40)


def macho(cpu: int) -> bytes:
    return struct.pack("<IiiIIII", 0xFEEDFACF, cpu, 3, 2, 0, 0, 0) + bytes(4)


def pe() -> bytes:
    dos = b"MZ" + bytes(58) + struct.pack("<I", 64)
    return dos + b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 0xF0, 0x2022)


STUBS = {
    "linux-x64": lambda: elf(62),
    "linux-aarch64": lambda: elf(183),
    "macosx-x64": lambda: macho(0x01000007),
    "macosx-aarch64": lambda: macho(0x0100000C),
}


def host_tree(root: Path, xy: str) -> None:
    """A copy of the running interpreter laid out like PBS's `python/`."""
    bindir, libdir = root / "bin", root / "lib"
    bindir.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sys.executable), bindir / f"python{xy}")
    for alias in ("python3", "python"):
        (bindir / alias).symlink_to(f"python{xy}")
    shutil.copytree(
        sysconfig.get_paths()["stdlib"],
        libdir / f"python{xy}",
        symlinks=True,
        ignore=lambda _d, names: {n for n in names if n in SKIP or n.endswith(".pyc")},
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


def foreign_tree(root: Path, key: str, xy: str) -> None:
    """Layout and interpreter header of a foreign platform; nothing that runs."""
    if key == "windows-x64":
        (root / "Lib" / "site-packages").mkdir(parents=True)
        (root / "Lib" / "os.py").write_text("")
        (root / "python.exe").write_bytes(pe())
        return
    lib = root / "lib" / f"python{xy}"
    (lib / "site-packages").mkdir(parents=True)
    (lib / "os.py").write_text("")
    (root / "bin").mkdir()
    exe = root / "bin" / f"python{xy}"
    exe.write_bytes(STUBS[key]())
    exe.chmod(0o755)
    (root / "bin" / "python3").symlink_to(exe.name)


def pack(root: Path, out: Path) -> str:
    """A reproducible tar.gz of `root` as `python/...`; return its sha256."""
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [root, *sorted(root.rglob("*"))]:
            name = "python" if path == root else f"python/{path.relative_to(root).as_posix()}"
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="{}.{}.{}".format(*sys.version_info[:3]))
    parser.add_argument("--tag", default="20250529")
    parser.add_argument("--base-url", help="where OUT will be served (default: file://OUT)")
    args = parser.parse_args()
    xy = "{}.{}".format(*sys.version_info[:2])
    out: Path = args.out.resolve()
    base = (args.base_url or out.as_uri()).rstrip("/")
    (out / args.tag).mkdir(parents=True, exist_ok=True)
    pins = []
    host = host_key()
    for key, triple in TRIPLES.items():
        name = f"cpython-{args.version}+{args.tag}-{triple}-install_only_stripped.tar.gz"
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "python"
            host_tree(root, xy) if key == host else foreign_tree(root, key, xy)
            sha = pack(root, out / args.tag / name)
        pins.append(
            f'[python.archives.{key}]\nurl = "{base}/{args.tag}/{name}"\nsha256 = "{sha}"\n'
        )
        print(f"{key}: {out / args.tag / name}")
    (out / "pins.toml").write_text("\n".join(pins))
    print(f"pins: {out / 'pins.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
