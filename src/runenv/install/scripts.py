"""Scripts that survive a move: the POSIX sh trampoline and the Windows `.exe` launcher.

- **POSIX** scripts start with the `/bin/sh` trampoline of uv's `--relocatable`
  (https://github.com/astral-sh/uv/blob/main/crates/uv-install-wheel/src/wheel.rs,
  `format_shebang`): `sh` runs the interpreter found next to the script's real path, and
  Python reads the same lines as a string, so no build path is baked in.
- **Windows** scripts are `<name>.exe`: the distlib launcher that installer bundles (what pip
  writes), followed by the shebang `#!<launcher_dir>\\..\\python.exe` and a zip holding
  `__main__.py`. distlib's launcher is built with `SUPPORT_RELATIVE_PATH`: a shebang starting
  with `<launcher_dir>\\` is resolved against the directory of the `.exe` itself
  (https://github.com/pypa/distlib/blob/master/PC/launcher.c, `RELATIVE_PREFIX`), so the tree
  can move. A bare relative name would be resolved by `CreateProcess` against the current
  directory and PATH instead, so it is not used. The zip gets a fixed timestamp (installer
  stamps the current time) so that archives stay reproducible.
"""

from __future__ import annotations

import io
import posixpath
import struct
import threading
import zipfile
from typing import TYPE_CHECKING, Literal

from installer.scripts import Script

from runenv.errors import BuildError

if TYPE_CHECKING:
    from installer.scripts import LauncherKind

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def script_python(relative: str, windows: bool) -> str:
    """How a script names its interpreter, given the interpreter's path from the scripts dir."""
    # distlib's launcher resolves this prefix against its own directory (module doc).
    return "<launcher_dir>\\" + relative.replace("/", "\\") if windows else relative


def trampoline(python: str) -> bytes:
    """uv's relocatable POSIX shebang: run the interpreter beside the script's real path."""
    quoted = python.replace("'", "'\\''")
    return (
        b"#!/bin/sh\n"
        b'\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")"/\''
        + quoted.encode()
        + b"' \"$0\" \"$@\"\n' '''\n"
    )


def script_stem(name: str) -> str:
    """A script's name without the extension a launcher replaces (`.exe`, `.py`, `.pyw`)."""
    stem, ext = posixpath.splitext(name)
    return stem if ext.lower() in (".exe", ".py", ".pyw") else name


def windows_launcher(
    code: bytes, section: Literal["console", "gui"], kind: LauncherKind, python: str
) -> bytes:
    """The `.exe` that runs `code` (a `__main__.py`) with `python`, the same bytes every time."""
    return _launcher_prefix(section, kind, python) + _main_zip(code)


def reproducible_launcher(data: bytes) -> bytes:
    """installer's launcher `data` with its zip rewritten without the clock."""
    split = len(data) - _zip_length(data)
    code = zipfile.ZipFile(io.BytesIO(data[split:])).read("__main__.py")
    return data[:split] + _main_zip(code)


def _zip_length(data: bytes) -> int:
    """Length of the zip that ends `data` (installer appends one written from offset 0)."""
    end = data.rfind(b"PK\x05\x06")
    if end < 0:
        raise BuildError("launcher without its zip")
    cd_size, cd_offset = struct.unpack_from("<II", data, end + 12)
    return int(cd_offset + cd_size + (len(data) - end))


def _main_zip(code: bytes) -> bytes:
    """A zip holding `__main__.py`, byte-identical for identical code (fixed date and mode)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("__main__.py", date_time=_ZIP_EPOCH)
        info.create_system = 3
        info.external_attr = 0o644 << 16
        zf.writestr(info, code)
    return buf.getvalue()


_PREFIXES: dict[tuple[str, str, str], bytes] = {}
_PREFIX_LOCK = threading.Lock()


def _launcher_prefix(section: Literal["console", "gui"], kind: LauncherKind, python: str) -> bytes:
    """The launcher `.exe` and shebang line that installer puts before a script's zip."""
    key = (section, kind, python)
    with _PREFIX_LOCK:
        if key not in _PREFIXES:
            _, data = Script("x", "x", "x", section).generate(python, kind)
            _PREFIXES[key] = data[: len(data) - _zip_length(data)]
        return _PREFIXES[key]
