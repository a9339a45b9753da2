"""Install wheels into a runtime tree laid out for a target platform, which may not be the host.

The work is pypa/installer's (`WheelFile` -> `installer.install` -> a
`SchemeDictionaryDestination` whose schemes are the target's layout under the runtime root),
so the tree is what a normal install gives: RECORD, INSTALLER, entry-point scripts, `.data`
directories. `RuntimeDestination` changes only what a relocatable, cross-platform runtime needs:

- **POSIX console scripts** start with the `/bin/sh` trampoline of uv's `--relocatable`
  (https://github.com/astral-sh/uv/blob/main/crates/uv-install-wheel/src/wheel.rs,
  `format_shebang`): `sh` runs the interpreter found next to the script's real path, and
  Python reads the same lines as a string, so no build path is baked in. `#!python` scripts
  from `.data/scripts` get the same first lines.
- **Windows console scripts** are `Scripts/<name>.exe`: the distlib launcher that installer
  bundles (what pip writes), followed by the shebang `#!<launcher_dir>\\..\\python.exe` and a
  zip holding `__main__.py`. distlib's launcher is built with `SUPPORT_RELATIVE_PATH`: a shebang
  starting with `<launcher_dir>\\` is resolved against the directory of the `.exe` itself
  (https://github.com/pypa/distlib/blob/master/PC/launcher.c, `RELATIVE_PREFIX`), so the tree
  can move. A bare relative name would be resolved by `CreateProcess` against the current
  directory and PATH instead, so it is not used. The zip gets a fixed timestamp (installer
  stamps the current time) so that archives stay reproducible. `#!python` scripts from
  `.data/scripts` become `.exe` launchers too (distlib's `ScriptMaker` does the same): no
  POSIX script lands in a Windows tree.
- **RECORD** paths are relative to site-packages on every host (installer writes absolute
  paths for other schemes when it runs on Windows).
- **No bytecode** is compiled: a cross target cannot run the host's `.pyc` files (magic
  number), and for the host the interpreter writes them on first import anyway; skipping them
  also keeps the archive smaller and free of build paths.
- **Verification in one pass**: every file's sha256 and size are computed while it is written
  and compared with the wheel's RECORD then, instead of reading and inflating the wheel twice
  (`validate_record(validate_contents=True)` doubles the install time).
- **Speed**: files are written with `os.open` and 1 MiB copies, directories made once, and
  wheels installed on parallel threads (inflate, sha256 and writes release the GIL). Wheels
  that would write the same path are installed one after the other, in the order given, so
  the result never depends on thread timing; the later wheel wins, as with pip.

A distribution already in the tree under the same name (pip in a PBS runtime) is removed first,
as pip would, so that site-packages never holds two versions of one package.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import shutil
import stat
import struct
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import (
    Scheme,
    construct_record_file,
    parse_entrypoints,
    parse_metadata_file,
)
from packaging.utils import canonicalize_name as canonical

from runenv.errors import BuildError
from runenv.platforms import Platform

if TYPE_CHECKING:
    from installer.scripts import LauncherKind
    from installer.sources import WheelContentElement

# installer skips the `__pycache__/*.pyc` files some wheels carry (numpy does) and warns each
# time; skipping is right (bytecode left over from the wheel's build) and the user cannot act.
warnings.filterwarnings(
    "ignore", r"Skip installing .*__pycache__", RuntimeWarning, r"runenv\.install"
)

INSTALLER_NAME = b"runenv\n"
_COPY_CHUNK = 1 << 20
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_EXTENSION_SUFFIXES = (".so", ".pyd")
_LAUNCHER_KIND: dict[str, LauncherKind] = {"x86_64": "win-amd64", "aarch64": "win-arm64"}


@dataclass(frozen=True)
class InstalledDist:
    """One installed distribution, as the manifest records it."""

    name: str
    version: str
    wheel: str  # the wheel's file name
    sha256: str  # of the wheel file
    top_level: tuple[str, ...]  # importable top-level modules and packages it installed


def install_wheels(
    root: Path, wheels: Sequence[Path], platform: Platform, python_version: str
) -> list[InstalledDist]:
    """Install `wheels` into the runtime tree `root` laid out for `platform`; report each.

    Fails with a `BuildError` naming the wheel if one is broken (a bad zip, a file whose hash
    or size differs from its RECORD, a file outside its scheme). The tree is then partly
    written: callers build in a staging directory and discard it on error.
    """
    root = root.resolve()
    layout = _Layout.make(root, platform, python_version)
    sources: list[_Wheel] = []
    try:
        for wheel in wheels:
            sources.append(_open(wheel))
        seen: dict[str, Path] = {}  # canonical name -> wheel
        for wheel, source in zip(wheels, sources, strict=True):
            name = str(canonical(source.distribution))
            if name in seen:
                raise BuildError(f"{wheel.name} and {seen[name].name} are the same package")
            seen[name] = wheel
        for name in seen:
            _remove_installed(layout.site_packages, name, root)
        results: dict[int, InstalledDist] = {}
        groups = _groups(sources, layout)
        with ThreadPoolExecutor(max_workers=_workers(len(groups))) as pool:
            futures = [pool.submit(_install_group, g, wheels, sources, layout) for g in groups]
            try:
                for future in futures:
                    results.update(future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the first failure ends the install
                raise
        return [results[i] for i in range(len(wheels))]
    finally:
        for source in sources:
            source.close()


def _workers(groups: int) -> int:
    # Inflate, hashing and writes release the GIL; one more thread than cores covers the time
    # each spends waiting in open/mkdir.
    return max(1, min(groups, (os.cpu_count() or 1) + 1))


# --- the layout of one target ----------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where each scheme lives under `root`, and how scripts find the interpreter."""

    root: Path
    schemes: dict[str, str]  # scheme -> absolute path
    site_packages: Path
    windows: bool
    launcher_kind: LauncherKind
    script_python: str  # the interpreter, relative to the scripts directory

    @classmethod
    def make(cls, root: Path, platform: Platform, python_version: str) -> _Layout:
        info = platform.info
        schemes = {k: os.path.normpath(root / v) for k, v in info.scheme(python_version).items()}
        rel = posixpath.relpath(str(info.interpreter(python_version)), str(info.scripts_dir()))
        kind: LauncherKind
        if info.is_windows:
            kind = _LAUNCHER_KIND[info.arch]
            # distlib's launcher resolves this prefix against its own directory (module doc).
            script_python = "<launcher_dir>\\" + rel.replace("/", "\\")
        else:
            kind = "posix"
            script_python = rel
        return cls(
            root,
            schemes,
            root / info.site_packages(python_version),
            info.is_windows,
            kind,
            script_python,
        )

    def trampoline(self) -> bytes:
        """uv's relocatable POSIX shebang: run the interpreter beside the script's real path."""
        quoted = self.script_python.replace("'", "'\\''")
        return (
            b"#!/bin/sh\n"
            b'\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")"/\''
            + quoted.encode()
            + b"' \"$0\" \"$@\"\n' '''\n"
        )


# --- sources ---------------------------------------------------------------------------------


class _Wheel(WheelFile):
    """A `WheelFile` that tells the destination which RECORD row it is installing."""

    def __init__(self, f: zipfile.ZipFile, path: Path) -> None:
        super().__init__(f)
        self.zip = f
        self.path = path
        self.current: tuple[str, str, str] | None = None

    def get_contents(self) -> Iterator[WheelContentElement]:
        for element in super().get_contents():
            self.current = element[0]
            yield element
            self.current = None

    def close(self) -> None:
        self.zip.close()


def _open(wheel: Path) -> _Wheel:
    try:
        f = zipfile.ZipFile(wheel)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot install {wheel.name}: {exc}") from None
    for name in f.namelist():
        # installer refuses these too, but with a message that names neither (its
        # os.path.commonpath raises "Can't mix absolute and relative paths").
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            f.close()
            raise BuildError(
                f"cannot install {wheel.name}: entry {name!r} is an absolute path or leaves the "
                "install folder: the wheel is broken or hostile, do not use it"
            )
    return _Wheel(f, wheel)


def _dest_paths(source: _Wheel, layout: _Layout) -> set[str]:
    """Every path the wheel will write (case-folded for Windows), to find clashing wheels."""
    lib = layout.schemes["purelib"]
    data_dir = source.data_dir + "/"
    paths: set[str] = set()
    for name in source.zip.namelist():
        if name.endswith("/"):
            continue
        if name.startswith(data_dir):
            scheme, _, rest = name[len(data_dir) :].partition("/")
            base = layout.schemes.get(scheme, lib)
            if scheme == "scripts":
                rest = _script_stem(rest)
            paths.add(posixpath.join(base, rest))
        else:
            paths.add(posixpath.join(lib, name))
    try:
        text = source.read_dist_info("entry_points.txt")
    except (KeyError, ValueError):
        text = ""
    for script, *_ in parse_entrypoints(text) if text else ():
        paths.add(posixpath.join(layout.schemes["scripts"], _script_stem(script)))
    return {p.lower() for p in paths} if layout.windows else paths


def _script_stem(name: str) -> str:
    stem, ext = posixpath.splitext(name)
    return stem if ext.lower() in (".exe", ".py", ".pyw") else name


def _groups(sources: Sequence[_Wheel], layout: _Layout) -> list[list[int]]:
    """Wheel indexes in groups that share no path, each group in the given order."""
    parent = list(range(len(sources)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, source in enumerate(sources):
        try:
            paths = _dest_paths(source, layout)
        except (InstallerError, ValueError, KeyError, AssertionError) as exc:
            raise BuildError(f"cannot install {source.path.name}: {exc}") from None
        for path in paths:
            j = owner.setdefault(path, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(sources)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


# --- the destination -------------------------------------------------------------------------


@dataclass
class RuntimeDestination(SchemeDictionaryDestination):
    """installer's destination for a relocatable runtime of any target (see the module doc)."""

    layout: _Layout | None = None
    source: _Wheel | None = None
    written: list[tuple[Scheme, RecordEntry]] = field(default_factory=list)
    _made_dirs: set[str] = field(default_factory=set)

    @classmethod
    def for_layout(cls, layout: _Layout, source: _Wheel) -> RuntimeDestination:
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
    def _layout(self) -> _Layout:
        assert self.layout is not None
        return self.layout

    # The file-level helpers below use `os` rather than `pathlib` on purpose: they run once per
    # installed file (tens of thousands), where pathlib's object creation is measurable, the
    # reason installer itself uses os.path here.

    def _target(self, scheme: str, path: str) -> str:
        base = self.scheme_dict[scheme]
        target = os.path.normpath(os.path.join(base, path))  # noqa: PTH118
        if not target.startswith(base.rstrip(os.sep) + os.sep):
            raise _BrokenWheel(f"{path!r} would be written outside the {scheme} directory")
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
        if data.startswith(b"#!python"):
            gui = data.startswith(b"#!pythonw")
            _, _, body = data.partition(b"\n")
            if self._layout.windows:
                section: Literal["console", "gui"] = "gui" if gui else "console"
                prefix = _launcher_prefix(section, self._layout)
                exe = _script_stem(path_) + ".exe"
                return self._write_bytes(scheme, exe, prefix + _main_zip(body), False)
            return self._write_bytes(scheme, path_, self._layout.trampoline() + body, True)
        # Anything else is copied as is (PEP 427: only `#!python` is rewritten).
        return self._write_bytes(scheme, path_, data, is_executable or not self._layout.windows)

    def write_script(
        self, name: str, module: str, attr: str, section: Literal["console", "gui"]
    ) -> RecordEntry:
        """Write the entry-point script `name`: a relocatable sh trampoline or an `.exe`."""
        layout = self._layout
        script = Script(name, module, attr, section)
        filename, data = script.generate(layout.script_python, layout.launcher_kind)
        if layout.windows:
            split = len(data) - _zip_length(data)
            code = zipfile.ZipFile(io.BytesIO(data[split:])).read("__main__.py")
            data = data[:split] + _main_zip(code)
            return self._write_bytes(Scheme("scripts"), filename, data, False)
        _, _, code = data.partition(b"\n")  # installer's `#!python3` line
        return self._write_bytes(Scheme("scripts"), filename, layout.trampoline() + code, True)

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


class _BrokenWheel(ValueError):
    """A file whose content does not match the wheel's RECORD."""


def _check(want: RecordEntry, got: installer.records.Hash, size: int) -> None:
    """Fail if a written file's hash or size is not what the wheel's RECORD says."""
    if want.size is not None and want.size != size:
        raise _BrokenWheel(f"{want.path}: size {size} differs from RECORD's {want.size}")
    if want.hash_ is not None and (want.hash_.name, want.hash_.value) != (got.name, got.value):
        raise _BrokenWheel(f"{want.path}: {got.name} hash differs from RECORD's")


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


def _launcher_prefix(section: Literal["console", "gui"], layout: _Layout) -> bytes:
    """The launcher `.exe` and shebang line that installer puts before a script's zip."""
    key = (section, layout.launcher_kind, layout.script_python)
    with _PREFIX_LOCK:
        if key not in _PREFIXES:
            _, data = Script("x", "x", "x", section).generate(
                layout.script_python, layout.launcher_kind
            )
            _PREFIXES[key] = data[: len(data) - _zip_length(data)]
        return _PREFIXES[key]


# --- one wheel -------------------------------------------------------------------------------


def _install_group(
    group: list[int], wheels: Sequence[Path], sources: Sequence[_Wheel], layout: _Layout
) -> dict[int, InstalledDist]:
    return {i: _install_one(wheels[i], sources[i], layout) for i in group}


def _install_one(wheel: Path, source: _Wheel, layout: _Layout) -> InstalledDist:
    destination = RuntimeDestination.for_layout(layout, source)
    try:
        # Names only: the contents are checked while they are written.
        source.validate_record(validate_contents=False)
        metadata = parse_metadata_file(source.read_dist_info("METADATA"))
        installer.install(source, destination, {"INSTALLER": INSTALLER_NAME})
    except (
        InstallerError,
        InvalidRecordEntry,
        ValueError,
        KeyError,
        AssertionError,
        EOFError,
        OSError,
        NotImplementedError,  # a zip compression method Python cannot read
        zipfile.BadZipFile,
        zlib.error,  # a corrupt deflate stream
    ) as exc:
        raise BuildError(f"cannot install {wheel.name}: {_reason(exc)}") from None
    lib = {"purelib", "platlib"}
    lib_paths = [r.path for s, r in destination.written if s in lib]
    return InstalledDist(
        name=str(metadata["Name"] or source.distribution),
        version=str(metadata["Version"] or source.version),
        wheel=wheel.name,
        sha256=_file_sha256(wheel),
        top_level=top_level(lib_paths),
    )


def _reason(exc: BaseException) -> str:
    issues = getattr(exc, "issues", None)
    if issues:
        return "; ".join(str(i) for i in issues)
    return str(exc) or type(exc).__name__


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def top_level(paths: Sequence[str]) -> tuple[str, ...]:
    """Importable top-level names among `paths` (relative to site-packages, `/`-separated).

    A package is a directory with an `__init__` module; a module is a `.py` file or an
    extension (`.so`, `.pyd`). Inside a namespace directory (no `__init__`), the first
    packages or modules found are named with dots (`google.protobuf`). `.dist-info`, `.data`,
    `__pycache__`, `.pth` files and directories that are not identifiers (`numpy.libs`) are
    skipped.
    """
    packages = {p.rpartition("/")[0] for p in paths if _module(p.rpartition("/")[2]) == "__init__"}
    names: set[str] = set()
    for path in paths:
        parts = path.split("/")
        if parts[0].endswith((".dist-info", ".data")):
            continue
        for depth in range(1, len(parts)):
            if not parts[depth - 1].isidentifier():
                break
            if "/".join(parts[:depth]) in packages:
                names.add(".".join(parts[:depth]))
                break
        else:
            module = _module(parts[-1])
            if module and module != "__init__":
                names.add(".".join([*parts[:-1], module]))
    return tuple(sorted(names))


def _module(filename: str) -> str | None:
    """The module a file defines (`six.py`, `_foo.cpython-312-x86_64-linux-gnu.so`), if any."""
    if filename.endswith(".py"):
        stem = filename[:-3]
    elif filename.endswith(_EXTENSION_SUFFIXES):
        stem = filename.split(".", 1)[0]
    else:
        return None
    return stem if stem.isidentifier() else None


# --- distributions already in the tree -------------------------------------------------------


def _remove_installed(site_packages: Path, name: str, root: Path) -> None:
    """Uninstall the distribution `name` if the tree already has it: its files, its dist-info."""
    if not site_packages.is_dir():
        return
    for info in site_packages.glob("*.dist-info"):
        if canonical(info.name[: -len(".dist-info")].rsplit("-", 1)[0]) != name:
            continue
        record = info / "RECORD"
        rows = parse_record_file(record.read_text("utf-8").splitlines()) if record.exists() else []
        dirs: set[Path] = set()
        for path, *_ in rows:
            target = Path(os.path.normpath(site_packages / path))
            if not target.is_relative_to(root) or target.is_relative_to(info):
                continue
            if target.is_file() or target.is_symlink():
                target.unlink()
                dirs.add(target.parent)
                cache = target.parent / "__pycache__"
                if target.suffix == ".py" and cache.is_dir():
                    for pyc in cache.glob(target.stem + ".*.pyc"):
                        pyc.unlink()
        shutil.rmtree(info)
        for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
            _prune(directory, site_packages)


def _prune(directory: Path, stop: Path) -> None:
    """Remove `directory` and its parents while they are empty (or hold only `__pycache__`)."""
    while directory != stop and directory.is_relative_to(stop):
        try:
            children = list(directory.iterdir())
        except FileNotFoundError:
            directory = directory.parent
            continue
        if any(c.name != "__pycache__" or not stat.S_ISDIR(c.lstat().st_mode) for c in children):
            return
        if children:
            shutil.rmtree(children[0])
        directory.rmdir()
        directory = directory.parent
