"""The interpreter that compiles a build's bytecode, and the files it compiles.

- **Same X.Y, any platform**: bytecode depends only on the Python version, not the OS or CPU.
  A native build compiles with the runtime's own interpreter; a cross build with the host's
  runtime of the same version (`shared_runtime`), or else runenv's own interpreter if it is
  the same X.Y; with neither the stage is skipped with a warning in the manifest (the runtime
  works, only starts slower).
- **Test suites ship as source** (`is_test_suite`, the import check's rule: a module or package
  named `test`, `tests` or `_tests`, top-level or below a package, e.g. `pandas/tests/`),
  unless `[build] compileTestBytecode = true`. pip compiles them too, but a
  runtime never imports them to start, and on the reference workload they are 2,035 of 3,428
  files of site-packages and two thirds of the compile time (9.5 of 14 s of CPU); the import
  check does not import them (and tolerates them compiling on import when a module does).

A `Compiler`'s `tag` (invalidation mode, exact Python version, test suites) keys the images
compiled with it; `runenv.tree.bytecode` compiles with it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from runenv.config.plan import Plan
from runenv.errors import RunenvError
from runenv.fetch import python
from runenv.install.modules import is_test_suite as is_test_suite_module

INVALIDATION_MODE = "checked-hash"
"""The PEP 552 invalidation mode of every `.pyc` runenv writes (why: `runenv.tree.bytecode`)."""

# Bump when `is_test_suite` changes which files are left as source: it keys the images.
# 2: top-level `test`/`tests` packages, `_tests` and modules named so (`modules.is_test_suite`).
TEST_SUITE_RULE = 2


def is_test_suite(path: str, lib: PurePosixPath, site_packages: PurePosixPath) -> bool:
    """Whether the runtime-relative `path` is a module of a test suite, by the import check's
    rule (`modules.is_test_suite`) on its module name under `site_packages` or `lib` (the
    stdlib folder): `pandas/tests/frame/x.py`, `tests/x.py`, `pkg/_tests/x.py`, `pkg/tests.py`."""
    parts = path.split("/")  # not PurePosixPath: called for every .py of a tree
    for top in (site_packages.parts, lib.parts):
        if tuple(parts[: len(top)]) == top:
            module = parts[len(top) :]
            module[-1] = module[-1].removesuffix(".py")
            return is_test_suite_module(".".join(module))
    return False


def python_files(root: Path, dirs: Iterable[PurePosixPath], extra: Iterable[str] = ()) -> list[str]:
    """Runtime-relative paths of every `.py` under `dirs` and of the `.py` among `extra`, sorted.

    `__pycache__` folders are skipped, symlinked folders are not followed (PBS has none; a link
    could lead in a circle).
    """
    found: set[str] = set()
    for top in dirs:
        for folder, subdirs, names in os.walk(root / top):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            rel = Path(folder).relative_to(root).as_posix()
            found.update(f"{rel}/{n}" for n in names if n.endswith(".py"))
    found.update(p for p in extra if p.endswith(".py") and (root / p).is_file())
    return sorted(found)


_shared_lock = threading.Lock()
_shared: dict[str, Path] = {}


def shared_runtime(archive: Path, sha256: str) -> Path:
    """The verified Python `archive` unpacked once per process, in a temp folder removed at
    exit: the cross builds of one run (`--platform all`) share the host's compiler. Workers run
    it with `-B`, so it is never written to."""
    with _shared_lock:  # a second build waits for the first's unpack rather than redoing it
        tree = _shared.get(sha256)
        if tree is None or not tree.is_dir():
            folder = Path(tempfile.mkdtemp(prefix="runenv-host-python-"))
            atexit.register(shutil.rmtree, folder, True)
            tree = _shared[sha256] = python.unpack(archive, folder / "python")
        return tree


def runenv_interpreter(python_version: str) -> Path | None:
    """runenv's own interpreter, when it is the same X.Y as `python_version` (a fallback)."""
    xy = tuple(int(p) for p in python_version.split(".")[:2])
    return Path(sys.executable) if sys.version_info[:2] == xy and sys.executable else None


@dataclass(frozen=True)
class Compiler:
    """The interpreter that compiles a build's bytecode, what decides the bytes it writes, and
    which files it compiles."""

    interpreter: Path
    description: str
    tag: str  # invalidation mode + exact Python version (+ test suites): an image cache key
    test_suites: bool = False  # compile packages' test suites too (`is_test_suite`)

    def sources(
        self, plan: Plan, root: Path, extra: Iterable[str] = ()
    ) -> tuple[list[str], list[str]]:
        """The `.py` files of `root` (an image or a tree) this compiler compiles, and those it
        leaves as source (packages' test suites, unless `test_suites`)."""
        lib = plan.site_packages.parent
        every = python_files(root, [lib], extra)
        if self.test_suites:
            return every, []
        copied = set(extra)  # always compiled: the variant put them there
        compiled, source = [], []
        for path in every:
            if path not in copied and is_test_suite(path, lib, plan.site_packages):
                source.append(path)
            else:
                compiled.append(path)
        return compiled, source


@dataclass(frozen=True)
class NoCompiler:
    """No interpreter compiles this build's bytecode, and why (the build ships none, and its
    bytecode result says so)."""

    reason: str


def choose_compiler(
    plan: Plan, tree: Path, *, native: bool, host_python: Callable[[], Path]
) -> Compiler | NoCompiler:
    """A same-X.Y interpreter for `plan`'s bytecode, or the reason there is none.

    Native: the runtime's own. Cross: `host_python()`, the host's runtime of the plan's
    version; a `RunenvError` from it falls back to runenv's own interpreter when that is the
    same X.Y.
    """
    if not plan.compile_bytecode:
        return NoCompiler("[build] compileBytecode = false")
    xy = ".".join(plan.python_version.split(".")[:2])
    tests = plan.compile_test_bytecode
    # In the images' key: an image compiled with its test suites never serves a build that
    # leaves them as source, nor the other way round, nor do images made before the choice
    # existed (keyed "checked-hash:X.Y.Z", test suites compiled).
    suffix = ":test-suites=" + ("compiled" if tests else f"source-{TEST_SUITE_RULE}")
    exact = f"{INVALIDATION_MODE}:{plan.python_version}{suffix}"
    if native:
        return Compiler(tree / plan.interpreter, f"the runtime's own Python {xy}", exact, tests)
    try:
        return Compiler(
            host_python(),
            f"the {plan.python_version} runtime for this host (same X.Y)",
            exact,
            tests,
        )
    except RunenvError as exc:
        own = runenv_interpreter(plan.python_version)
        if own is None:
            return NoCompiler(
                f"cross build with no Python {xy} to compile with: the host's runtime of "
                f"{plan.python_version} is unavailable ({exc}) and runenv runs on "
                f"{sys.version_info[0]}.{sys.version_info[1]}"
            )
        version = sys.version.split()[0]
        tag = f"{INVALIDATION_MODE}:{version}{suffix}"
        return Compiler(own, f"runenv's own Python {version}", tag, tests)
