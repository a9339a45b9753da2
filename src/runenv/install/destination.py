"""Where and how wheel files are written: a target's layout and installer's destination for it.

`RuntimeDestination` is pypa/installer's `SchemeDictionaryDestination` with what a relocatable,
cross-platform runtime needs:

- **Scripts** (entry points, and `#!python` files from `.data/scripts`) are relocatable sh
  trampolines on POSIX and `.exe` launchers on Windows (`runenv.install.scripts`): no POSIX script
  lands in a Windows tree, as with distlib's `ScriptMaker`.
- **RECORD** paths are relative to site-packages on every host (installer writes absolute
  paths for other schemes when it runs on Windows).
- **No bytecode** is compiled here: the bytecode stage (`bytecode.py`) compiles the whole tree
  afterwards, with an interpreter of the target's X.Y, reproducibly.
- **Verification in one pass**: every file's sha256 and size are computed while it is written
  and compared with the wheel's RECORD then, instead of reading and inflating the wheel twice
  (`validate_record(validate_contents=True)` doubles the install time).
- **Speed**: files are written with `os.open` and 1 MiB copies, and directories made once.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Literal

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.records import RecordEntry
from installer.scripts import Script
from installer.utils import Scheme, construct_record_file

from runenv.install.layout import Layout
from runenv.install.scripts import (
    reproducible_launcher,
    script_stem,
    trampoline,
    windows_launcher,
)

if TYPE_CHECKING:
    from runenv.install.sources import WheelSource

_COPY_CHUNK = 1 << 20


class BrokenWheel(ValueError):
    """A file whose content does not match the wheel's RECORD, or that would land outside."""


@dataclass
class RuntimeDestination(SchemeDictionaryDestination):
    """installer's destination for a relocatable runtime of any target (see the module doc)."""

    layout: Layout | None = None
    source: WheelSource | None = None
    written: list[tuple[Scheme, RecordEntry]] = field(default_factory=list)
    _made_dirs: set[str] = field(default_factory=set)

    @classmethod
    def for_layout(cls, layout: Layout, source: WheelSource) -> RuntimeDestination:
        return cls(
            scheme_dict=dict(layout.schemes),
            interpreter=layout.script_python,
            script_kind=layout.launcher_kind,
            hash_algorithm="sha256",
            bytecode_optimization_levels=(),
            overwrite_existing=True,
            layout=layout,
            source=source,
        )

    @property
    def _layout(self) -> Layout:
        assert self.layout is not None
        return self.layout

    # The file-level helpers below use `os` rather than `pathlib` on purpose: they run once per
    # installed file (tens of thousands), where pathlib's object creation is measurable, the
    # reason installer itself uses os.path here.

    def _target(self, scheme: str, path: str) -> str:
        base = self.scheme_dict[scheme]
        target = os.path.normpath(os.path.join(base, path))  # noqa: PTH118
        if not target.startswith(base.rstrip(os.sep) + os.sep):
            raise BrokenWheel(f"{path!r} would be written outside the {scheme} directory")
        return target

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        """Write `stream` to `path` in `scheme`, computing its RECORD hash as it goes."""
        return self._write(scheme, path, stream, is_executable, None)

    def _write(
        self,
        scheme: Scheme,
        path: str,
        stream: BinaryIO,
        is_executable: bool,
        expected: tuple[str, str, str] | None,
    ) -> RecordEntry:
        """Write and hash `stream`; if `expected` (a RECORD row) is given, check against it."""
        target = self._target(scheme, path)
        parent = os.path.dirname(target)  # noqa: PTH120
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)  # noqa: PTH103
            self._made_dirs.add(parent)
        hasher = hashlib.sha256()
        want = RecordEntry.from_elements(*expected) if expected and expected[1] else None
        # A RECORD may use another algorithm than sha256 (PEP 376 allows any of hashlib's).
        algorithm = want.hash_.name if want and want.hash_ else "sha256"
        other = hashlib.new(algorithm) if algorithm != "sha256" else None
        size = 0
        fd = _create(target, 0o777 if is_executable else 0o666)
        try:
            while chunk := stream.read(_COPY_CHUNK):
                hasher.update(chunk)
                if other:
                    other.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(chunk)
        finally:
            os.close(fd)
        digest = _hash(hasher)
        if want is not None:
            _check(want, _hash(other) if other else digest, size)
        return RecordEntry(path, digest, size)

    def write_file(
        self,
        scheme: Scheme,
        path: str | os.PathLike[str],
        stream: BinaryIO,
        is_executable: bool,
    ) -> RecordEntry:
        """Write one file of the wheel; rewrite `#!python` scripts for the target."""
        path_ = os.fspath(path)
        expected = self.source.current if self.source else None
        if scheme != "scripts":
            return self._write(scheme, path_, stream, is_executable, expected)
        # Scripts are small (or at worst one binary): read whole, check, then adapt.
        data = stream.read()
        self._check_bytes(expected, data)
        layout = self._layout
        if data.startswith(b"#!python"):
            gui = data.startswith(b"#!pythonw")
            _, _, body = data.partition(b"\n")
            if layout.windows:
                section: Literal["console", "gui"] = "gui" if gui else "console"
                exe = windows_launcher(body, section, layout.launcher_kind, layout.script_python)
                return self._write_bytes(scheme, script_stem(path_) + ".exe", exe, False)
            return self._write_bytes(scheme, path_, trampoline(layout.script_python) + body, True)
        # Anything else is copied as is (PEP 427: only `#!python` is rewritten).
        return self._write_bytes(scheme, path_, data, is_executable or not layout.windows)

    def write_script(
        self, name: str, module: str, attr: str, section: Literal["console", "gui"]
    ) -> RecordEntry:
        """Write the entry-point script `name`: a relocatable sh trampoline or an `.exe`."""
        layout = self._layout
        script = Script(name, module, attr, section)
        filename, data = script.generate(layout.script_python, layout.launcher_kind)
        if layout.windows:
            return self._write_bytes(
                Scheme("scripts"), filename, reproducible_launcher(data), False
            )
        _, _, code = data.partition(b"\n")  # installer's `#!python3` line
        body = trampoline(layout.script_python) + code
        return self._write_bytes(Scheme("scripts"), filename, body, True)

    @staticmethod
    def _check_bytes(expected: tuple[str, str, str] | None, data: bytes) -> None:
        if expected and expected[1]:
            want = RecordEntry.from_elements(*expected)
            if want.hash_ is not None:
                _check(want, _hash(hashlib.new(want.hash_.name, data)), len(data))

    def _write_bytes(self, scheme: Scheme, path: str, data: bytes, executable: bool) -> RecordEntry:
        return self.write_to_fs(scheme, path, io.BytesIO(data), executable)

    def finalize_installation(
        self,
        scheme: Scheme,
        record_file_path: str,
        records: Iterable[tuple[Scheme, RecordEntry]],
    ) -> None:
        """Write RECORD with every path relative to its directory, and compile nothing."""
        base = self.scheme_dict[scheme]

        def prefix(file_scheme: Scheme) -> str | None:
            if file_scheme == scheme:
                return None
            rel = os.path.relpath(self.scheme_dict[file_scheme], base)
            return rel.replace(os.sep, "/") + "/"

        self.written = list(records)
        with construct_record_file(self.written, prefix) as stream:
            self.write_to_fs(scheme, record_file_path, stream, is_executable=False)


def _create(path: str, mode: int) -> int:
    """Open a new file for writing, replacing (never writing through) an existing one.

    The mode goes through the umask at creation, as installer's `make_file_executable` does,
    without its process-wide `os.umask` dance that threads would race on.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise
        os.unlink(path)  # noqa: PTH108
        return os.open(path, flags, mode)


def _hash(hasher: hashlib._Hash) -> installer.records.Hash:
    value = base64.urlsafe_b64encode(hasher.digest()).decode("ascii").rstrip("=")
    return installer.records.Hash(hasher.name, value)


def _check(want: RecordEntry, got: installer.records.Hash, size: int) -> None:
    """Fail if a written file's hash or size is not what the wheel's RECORD says."""
    if want.size is not None and want.size != size:
        raise BrokenWheel(f"{want.path}: size {size} differs from RECORD's {want.size}")
    if want.hash_ is not None and (want.hash_.name, want.hash_.value) != (got.name, got.value):
        raise BrokenWheel(f"{want.path}: {got.name} hash differs from RECORD's")
