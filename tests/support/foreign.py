"""PBS-shaped archives for platforms other than the host, for cross-build tests.

They hold what a cross build touches: the interpreter as a bare binary header of the right
format and architecture (see `support.index`), the stdlib landmark and an empty site-packages,
in the platform's layout. They cannot run; a cross build never runs them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from runenv.platforms import Platform
from support.index import (
    CPU_TYPE_ARM64,
    CPU_TYPE_X86_64,
    EM_AARCH64,
    EM_X86_64,
    elf_header,
    macho_header,
    pe_header,
)
from support.pbs import sha256_of, write_tar_gz

PY_XY = "{}.{}".format(*sys.version_info[:2])


def _interpreter(platform: Platform) -> bytes:
    return {
        Platform.LINUX_X64: elf_header(EM_X86_64),
        Platform.LINUX_AARCH64: elf_header(EM_AARCH64),
        Platform.MACOSX_X64: macho_header(CPU_TYPE_X86_64),
        Platform.MACOSX_AARCH64: macho_header(CPU_TYPE_ARM64),
    }.get(platform, b"")


def foreign_pbs_archive(platform: Platform, dest_dir: Path) -> tuple[Path, str]:
    """Write `dest_dir/python-<platform>.tar.gz` for `platform`; return (path, sha256)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "python"
        if platform.info.is_windows:
            (root / "Lib" / "site-packages").mkdir(parents=True)
            (root / "Lib" / "os.py").write_text("")
            (root / "python.exe").write_bytes(pe_header())
        else:
            lib = root / "lib" / f"python{PY_XY}"
            (lib / "site-packages").mkdir(parents=True)
            (lib / "os.py").write_text("")
            (root / "bin").mkdir()
            exe = root / "bin" / f"python{PY_XY}"
            exe.write_bytes(_interpreter(platform))
            exe.chmod(0o755)
            (root / "bin" / "python3").symlink_to(exe.name)
        dest_dir.mkdir(parents=True, exist_ok=True)
        out = write_tar_gz(dest_dir / f"python-{platform.value}.tar.gz", root)
    return out, sha256_of(out)
