"""A real package index on disk for tests, served over loopback HTTP as a PEP 503 simple index.

`build_index(root)` writes, once per directory (a `.complete` marker guards reuse):

- rtpure 1.0: `py3-none-any` wheel; console script `rtpure-hello` printing the line
  `RTPURE_HELLO` (which contains that very word), a data file `share/rtpure/hello.txt`, a
  `rtpure/words.txt` large enough (`RTPURE_WORDS`) for the archive to carry its deflate stream;
  requires `rtdep>=1` and `rtwin>=1; sys_platform == "win32"`.
- rtdep 1.0: `py3-none-any` wheel (`rtdep.VALUE == "rtdep 1.0"`).
- rtdep 2.0: `py3-none-any` wheel with `Requires-Python: >=3.99`: never chosen, which proves
  `data-requires-python` is honoured.
- rtwin 1.0: `py3-none-any` wheel, pulled in only for Windows targets (the marker above).
- rtnative 1.0: five `cpXY-cpXY-<plat>` wheels (below) and an sdist building the same extension.
- rtsrconly 1.0: sdist only (setuptools, a C extension); `rtsrconly.hello()` returns
  `SRCONLY_HELLO`.
- setuptools, wheel, packaging: `py3-none-any` wheels repacked from this interpreter's installed
  copies (or its `ensurepip` bundle), so isolated source builds (`python -m build`, pip, uv)
  work against this index without PyPI; `Index.has_setuptools` says whether one was found.

`cpXY` is the running interpreter's version (the test runtime is a copy of it). The rtnative
wheels each hold `rtnative/__init__.py` (`from rtnative._native import answer`) and one
extension file:

- `manylinux_2_17_x86_64` (the host): a real C extension compiled here with gcc against this
  interpreter's headers; `rtnative.answer()` returns 42.
- `manylinux_2_17_aarch64`: `_native.cpython-XY-aarch64-linux-gnu.so`, a bare ELF64 header,
  little-endian, `e_machine = EM_AARCH64` (183), `ET_DYN`.
- `macosx_10_9_x86_64` / `macosx_11_0_arm64`: `_native.cpython-XY-darwin.so`, a bare Mach-O 64
  header (`MH_MAGIC_64`, `MH_BUNDLE`, cputype `CPU_TYPE_X86_64` / `CPU_TYPE_ARM64`).
- `win_amd64`: `_native.cpXY-win_amd64.pyd`, a DOS stub + `PE\\0\\0` + COFF header with
  `Machine = IMAGE_FILE_MACHINE_AMD64`, DLL characteristics, and an empty PE32+ optional header.

The placeholders are not loadable; they exist for audits that read binary headers
(`support.pbs` re-exports the writers of `scripts/standin_pbs.py`: `elf_header`,
`macho_header`, `macho_fat`, `pe_header` build more of them, e.g. to plant a wrong-architecture
file). The sdists' `pyproject.toml` carry static `[project]` metadata, so uv
resolves them without building anything.

`IndexServer(root)` (a `support.http.LoopbackServer`) serves it: `.index_url` is
`http://127.0.0.1:PORT/simple`, `hits(filename)` counts requests for a file, `tamper(filename,
data)` serves other bytes for it; every fault of `LoopbackServer` works too.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import traceback
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from .dists import write_sdist, write_wheel
from .http import LoopbackServer, _Handler, wrong_bytes
from .pbs import (
    CPU_TYPE_ARM64,
    CPU_TYPE_X86_64,
    EM_AARCH64,
    IMAGE_FILE_MACHINE_AMD64,
    elf_header,
    macho_header,
    pe_header,
)

INDEX_VERSION = "3"  # bump when the contents change, so stale session dirs are rebuilt
PY = f"{sys.version_info.major}{sys.version_info.minor}"
CP = f"cp{PY}"
RTPURE_HELLO = "RTPURE_HELLO: hello from rtpure-hello"
RTPURE_WORDS = b"".join(b"%d %x words\n" % (i, i * 7919) for i in range(12000))  # ~200 KB
SRCONLY_HELLO = "rtsrconly built from source"

# Platform key -> (wheel platform tag, extension file name) for rtnative.
RTNATIVE_PLATFORMS: dict[str, tuple[str, str]] = {
    "linux-x64": ("manylinux_2_17_x86_64", str(sysconfig.get_config_var("EXT_SUFFIX"))),
    "linux-aarch64": ("manylinux_2_17_aarch64", f".cpython-{PY}-aarch64-linux-gnu.so"),
    "macosx-x64": ("macosx_10_9_x86_64", f".cpython-{PY}-darwin.so"),
    "macosx-aarch64": ("macosx_11_0_arm64", f".cpython-{PY}-darwin.so"),
    "windows-x64": ("win_amd64", f".{CP}-win_amd64.pyd"),
}


# --------------------------------------------------------------------------- sources

NATIVE_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "The answer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
"""

SRCONLY_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *hello(PyObject *self, PyObject *args) {
    return PyUnicode_FromString("%s");
}

static PyMethodDef methods[] = {
    {"hello", hello, METH_NOARGS, "Say hello."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_impl", NULL, -1, methods};

PyMODINIT_FUNC PyInit__impl(void) { return PyModule_Create(&module); }
""".replace("%s", SRCONLY_HELLO)


def _metadata(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    summary: str = "",
) -> str:
    lines = ["Metadata-Version: 2.2", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n"


def _pyproject(name: str, version: str, requires: Iterable[str] = ()) -> str:
    deps = ", ".join(f'"{r}"' for r in requires)
    return (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
        'requires-python = ">=3.8"\n\n'
        f'[tool.setuptools]\npackages = ["{name}"]\n'
    )


# --------------------------------------------------------------------------- archive writers


def compile_extension(source: str, module: str, out: Path) -> Path:
    """Compile a one-file C extension for the running interpreter with gcc."""
    include = sysconfig.get_path("include")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{module}.c"
        src.write_text(source)
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O1", f"-I{include}", str(src), "-o", str(out)],
            check=True,
            capture_output=True,
        )
    return out


# --------------------------------------------------------------------------- the packages


def _build_packages(files: Path, work: Path) -> None:
    deps = ["rtdep>=1", 'rtwin>=1; sys_platform == "win32"']
    write_wheel(
        files,
        "rtpure",
        "1.0",
        {
            "rtpure/__init__.py": b'VALUE = "rtpure 1.0"\n',
            "rtpure/cli.py": (f"def main() -> None:\n    print({RTPURE_HELLO!r})\n").encode(),
            "rtpure-1.0.data/data/share/rtpure/hello.txt": b"hello data\n",
            "rtpure/words.txt": RTPURE_WORDS,
        },
        metadata=_metadata(
            "rtpure",
            "1.0",
            requires=deps,
            requires_python=">=3.8",
            summary="pure package with a console script",
        ),
        entry_points="[console_scripts]\nrtpure-hello = rtpure.cli:main\n",
    )
    write_wheel(
        files,
        "rtdep",
        "1.0",
        {"rtdep/__init__.py": b'VALUE = "rtdep 1.0"\n'},
        metadata=_metadata("rtdep", "1.0", requires_python=">=3.8"),
    )
    write_wheel(
        files,
        "rtdep",
        "2.0",
        {"rtdep/__init__.py": b'VALUE = "rtdep 2.0"\n'},
        metadata=_metadata("rtdep", "2.0", requires_python=">=3.99"),
    )
    write_wheel(
        files,
        "rtwin",
        "1.0",
        {"rtwin/__init__.py": b'VALUE = "rtwin 1.0"\n'},
        metadata=_metadata("rtwin", "1.0"),
    )

    native_init = b"from rtnative._native import answer\n\n__all__ = ['answer']\n"
    native_meta = _metadata("rtnative", "1.0", requires_python=">=3.8")
    host_so = compile_extension(NATIVE_C, "_native", work / "rtnative_native.so")
    placeholders = {
        "linux-aarch64": elf_header(EM_AARCH64),
        "macosx-x64": macho_header(CPU_TYPE_X86_64),
        "macosx-aarch64": macho_header(CPU_TYPE_ARM64),
        "windows-x64": pe_header(IMAGE_FILE_MACHINE_AMD64),
    }
    for key, (plat, suffix) in RTNATIVE_PLATFORMS.items():
        binary = host_so.read_bytes() if key == "linux-x64" else placeholders[key]
        write_wheel(
            files,
            "rtnative",
            "1.0",
            {"rtnative/__init__.py": native_init, f"rtnative/_native{suffix}": binary},
            tag=f"{CP}-{CP}-{plat}",
            metadata=native_meta,
            purelib=False,
        )
    setup_native = (
        "from setuptools import Extension, setup\n\n"
        'setup(ext_modules=[Extension("rtnative._native", ["rtnative/_native.c"])])\n'
    )
    write_sdist(
        files,
        "rtnative",
        "1.0",
        {
            "PKG-INFO": native_meta.encode(),
            "pyproject.toml": _pyproject("rtnative", "1.0").encode(),
            "setup.py": setup_native.encode(),
            "rtnative/__init__.py": native_init,
            "rtnative/_native.c": NATIVE_C.encode(),
        },
    )

    setup_src = (
        "from setuptools import Extension, setup\n\n"
        'setup(ext_modules=[Extension("rtsrconly._impl", ["rtsrconly/_impl.c"])])\n'
    )
    write_sdist(
        files,
        "rtsrconly",
        "1.0",
        {
            "PKG-INFO": _metadata("rtsrconly", "1.0", requires_python=">=3.8").encode(),
            "pyproject.toml": _pyproject("rtsrconly", "1.0").encode(),
            "setup.py": setup_src.encode(),
            "rtsrconly/__init__.py": b"from rtsrconly._impl import hello\n\n__all__ = ['hello']\n",
            "rtsrconly/_impl.c": SRCONLY_C.encode(),
        },
    )


def repack_installed(name: str, out_dir: Path) -> Path | None:
    """Rebuild a `py3-none-any` wheel from an installed pure distribution; None if impossible.

    Used to serve setuptools (and wheel) offline: only the files inside site-packages are
    kept (scripts are regenerated from entry points by installers); caches and installer
    records are dropped.
    """
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    wheel_meta = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel_meta or dist.files is None:
        return None
    canon = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    info = f"{canon}-{dist.version}.dist-info"
    members: dict[str, bytes] = {}
    skip = {
        "RECORD",
        "INSTALLER",
        "REQUESTED",
        "direct_url.json",
        "METADATA",
        "WHEEL",
        "entry_points.txt",
    }
    for f in dist.files:
        rel = str(f).replace("\\", "/")
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        parts = rel.split("/")
        if parts[0].endswith(".dist-info"):
            if parts[-1] in skip:
                continue
            rel = "/".join([info, *parts[1:]])
        path = Path(str(f.locate()))
        if not path.is_file():
            return None
        members[rel] = path.read_bytes()
    return write_wheel(
        out_dir,
        canon,
        dist.version,
        members,
        metadata=dist.read_text("METADATA") or "",
        entry_points=dist.read_text("entry_points.txt"),
    )


def _bundled_wheel(name: str, out_dir: Path) -> Path | None:
    bundled = Path(sysconfig.get_path("stdlib")) / "ensurepip" / "_bundled"
    for whl in sorted(bundled.glob(f"{name}-*.whl")):
        return Path(shutil.copy2(whl, out_dir / whl.name))
    return None


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class Index:
    """A built index: `files/` holds the distributions, `simple/` the PEP 503 pages."""

    root: Path

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def has_setuptools(self) -> bool:
        return any(self.files.glob("setuptools-*.whl"))

    def path(self, filename: str) -> Path:
        return self.files / filename

    def sha256(self, filename: str) -> str:
        return hashlib.sha256(self.path(filename).read_bytes()).hexdigest()


def _complete(root: Path) -> bool:
    marker = root / ".complete"
    return marker.is_file() and marker.read_text() == f"{INDEX_VERSION} {CP}"


def build_index(root: Path) -> Index:
    """Build the test index under `root` (reused when already complete); return it.

    Built in a staging directory beside `root` and renamed into place, so concurrent or
    interrupted builders never leave a half index that a later run would trust.
    """
    if _complete(root):
        return Index(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        files = stage / "files"
        files.mkdir()
        _build_packages(files, stage / "work")
        # Build backends and their requirements, for isolated source builds without PyPI.
        for name in ("setuptools", "wheel", "packaging"):
            repack_installed(name, files) or _bundled_wheel(name, files)
        shutil.rmtree(stage / "work", ignore_errors=True)
        write_simple_pages(stage)
        (stage / ".complete").write_text(f"{INDEX_VERSION} {CP}")
        if _complete(root):  # another builder won meanwhile
            return Index(root)
        if root.exists():
            shutil.rmtree(root)
        try:
            stage.replace(root)
        except OSError:
            if not _complete(root):
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Index(root)


def _file_project(filename: str) -> str:
    if filename.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(filename)[0])
    return canonicalize_name(parse_sdist_filename(filename)[0])


def _requires_python(path: Path) -> str | None:
    text: str | None = None
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            text = zf.read(name).decode()
    else:
        with tarfile.open(path) as tf:
            member = next((m for m in tf.getmembers() if m.name.endswith("/PKG-INFO")), None)
            fh = tf.extractfile(member) if member else None
            text = fh.read().decode() if fh else None
    if text is None:
        return None
    msg: Message = Parser().parsestr(text, headersonly=True)
    return msg.get("Requires-Python")


def write_simple_pages(root: Path) -> None:
    """(Re)write `simple/` for every file in `root/files` (sha256 fragments, requires-python)."""
    simple = root / "simple"
    shutil.rmtree(simple, ignore_errors=True)
    projects: dict[str, list[Path]] = {}
    for path in sorted((root / "files").iterdir()):
        if path.name.endswith((".whl", ".tar.gz")):
            projects.setdefault(_file_project(path.name), []).append(path)
    links = []
    for project, paths in sorted(projects.items()):
        rows = []
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rp = _requires_python(path)
            attr = f' data-requires-python="{html.escape(rp)}"' if rp else ""
            rows.append(f'<a href="../../files/{path.name}#sha256={digest}"{attr}>{path.name}</a>')
        page = simple / project / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(_page(project, rows))
        links.append(f'<a href="{project}/">{project}</a>')
    (simple / "index.html").write_text(_page("simple index", links))


def _page(title: str, rows: list[str]) -> str:
    body = "<br/>\n".join(rows)
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        f"<title>{title}</title></head><body>\n{body}\n</body></html>\n"
    )


# --------------------------------------------------------------------------- the server


class _IndexHandler(_Handler):
    """The loopback handler, answering directory pages (`/simple/x/`) as HTML for installers."""

    def send_header(self, keyword: str, value: str) -> None:
        if (
            keyword.lower() == "content-type"
            and value == "application/octet-stream"
            and urlsplit(self.path).path.endswith("/")
        ):
            value = "text/html; charset=utf-8"
        super().send_header(keyword, value)


def _quiet_errors(request: object, client_address: object) -> None:
    """Installers drop keep-alive connections at will: not worth a traceback on stderr."""
    exc = sys.exc_info()[1]
    if not isinstance(exc, ConnectionError):
        traceback.print_exc()


class IndexServer(LoopbackServer):
    """A `LoopbackServer` serving a built index; `index_url` is the PEP 503 root for uv/pip."""

    def __init__(self, root: Path, *, lifetime: float = 3600.0) -> None:
        super().__init__(root, lifetime=lifetime)
        self._httpd.RequestHandlerClass = _IndexHandler
        self._httpd.handle_error = _quiet_errors  # type: ignore[method-assign]

    @property
    def index_url(self) -> str:
        """The simple index URL, for `--default-index` / `--index-url`."""
        return self.url + "/simple"

    def file_url(self, filename: str) -> str:
        return self.url_for(f"files/{filename}")

    def hits(self, filename: str) -> int:
        """How many requests the distribution `filename` received."""
        return self.requests_for(f"files/{filename}")

    def tamper(self, filename: str, data: bytes | None = b"tampered") -> None:
        """Serve `data` instead of the real file from now on (None restores it)."""
        self.always(f"files/{filename}", None if data is None else wrong_bytes(data))

    def __enter__(self) -> IndexServer:
        self.start()
        return self


def serve(root: Path) -> Iterator[IndexServer]:
    """Generator form for pytest fixtures: `yield from serve(index.root)`."""
    with IndexServer(root) as server:
        yield server
