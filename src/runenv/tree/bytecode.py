"""Stage 6b: compile the runtime's bytecode at build time, so it starts fast even read-only.

Every `.py` of the standard library (site-packages included) and every copied `.py` gets a
`__pycache__/<name>.cpython-XY.pyc` (optimization level 0, what a plain `python` loads), unless
it already has a valid one of the same kind, as some PBS builds ship for the stdlib. Which
interpreter compiles, and which files it leaves as source (packages' test suites), is
`runenv.tree.bytecode_compiler`'s choice; this module compiles.

- **Invalidation mode: checked-hash** (PEP 552). The header holds a hash of the source, not its
  mtime, so the bytes do not depend on when the build ran, and the files stay valid whatever
  mtimes unpacking gives the sources (the archive stores one fixed mtime for every entry, which
  makes the mtime-stamped `.pyc` files a PBS stdlib may carry stale: they are recompiled). The
  interpreter checks the hash on import, so a source edited in place is never shadowed by old
  bytecode; `unchecked-hash` would skip that read and hash, which measured within noise of it
  on the reference workload (see the README's "Bytecode").
- **Reproducible**: files are compiled in batches that depend only on the list of files (see
  `batches`), with `PYTHONHASHSEED=0` (set and frozenset constants are marshalled in hash
  order), and the file name embedded in the code objects is the path relative to the runtime
  root (the import system replaces it with the real path on load), never the build folder.
  The batches matter: marshal marks objects by their reference count, so a `.pyc`'s bytes can
  depend on what the same process compiled before (seen on scikit-learn: three files differ
  when the batches change). A process per file would make each `.pyc` depend on its source
  alone, but measured 31 s of CPU against 18.7 s for the 4,016 files of the 3.12.10 workload.
- **Parallel**: the sorted files are cut into fixed batches, each compiled by one process of
  the compiling interpreter, one process per core at a time. A batch is bounded work, so
  `build.timeout` (which applies to each command) holds for a torch-sized tree too.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runenv._subprocess import run
from runenv.config.plan import Plan
from runenv.errors import BuildError
from runenv.tree.bytecode_compiler import INVALIDATION_MODE, Compiler, NoCompiler

# Files per worker process: at most BATCH_FILES, so that a batch takes seconds, far below
# build.timeout, even on a loaded machine; and a tree of more than MIN_BATCH_FILES files is cut
# into at least MIN_BATCHES batches, so that the last image of a build is not compiled by one
# process on one core while the others idle (seen: scikit-learn's 299 files, 1 s alone). Each
# process costs its start, some 20 ms. Fixed numbers, not the core count: the batches decide
# the bytes (see "Reproducible").
BATCH_FILES = 400
MIN_BATCHES = 4
MIN_BATCH_FILES = 50

# Run by the compiling interpreter (`-B -S -s`, any CPython 3.8+), on a job file of
# NUL-separated fields (root, X.Y, then the files, each `os.fsencode`d): checks its own X.Y
# first, so a wrong interpreter writes nothing; keeps a .pyc whose header already says this
# mode and this source's hash; prints its result as `ascii()` of a dict of literals.
# It imports nothing that is not already loaded at start: each batch is a fresh process, and
# `py_compile`, `importlib.util` and `json` cost 25 ms a start (more while the stdlib is still
# without bytecode), some 0.8 s of CPU over a build's ~26 batches. It does what py_compile does
# for a checked-hash .pyc with the same importlib internals py_compile calls, and falls back to
# py_compile itself on a Python without them.
_COMPILE_SCRIPT = """
import _imp, os, sys
with open(sys.argv[1], "rb") as f:
    fields = [os.fsdecode(x) for x in f.read().split(b"\\0")]
root, want, files = fields[0], fields[1], fields[2:]
got = "%d.%d" % sys.version_info[:2]
if got != want:
    print("RUNENV-BYTECODE " + ascii({"python": got}))
    sys.exit(0)
class Failed(Exception):
    pass
try:
    from _frozen_importlib_external import (
        MAGIC_NUMBER, _RAW_MAGIC_NUMBER, _calc_mode, _code_to_hash_pyc, _write_atomic,
        cache_from_source)
    def source_hash(data):
        return _imp.source_hash(_RAW_MAGIC_NUMBER, data)
    def compile_one(source, cfile, rel, data):
        if os.path.islink(cfile) or (os.path.exists(cfile) and not os.path.isfile(cfile)):
            raise Failed("FileExistsError: %s is not a regular file" % cfile)
        try:
            code = compile(data, rel, "exec", dont_inherit=True)
        except Exception as exc:
            raise Failed("%s: %s" % (type(exc).__name__, exc))
        os.makedirs(os.path.dirname(cfile), exist_ok=True)
        _write_atomic(cfile, _code_to_hash_pyc(code, source_hash(data), True), _calc_mode(source))
except ImportError:
    import importlib.util, py_compile
    MAGIC_NUMBER, source_hash = importlib.util.MAGIC_NUMBER, importlib.util.source_hash
    cache_from_source = importlib.util.cache_from_source
    def compile_one(source, cfile, rel, data):
        try:
            py_compile.compile(source, cfile=cfile, dfile=rel, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except py_compile.PyCompileError as exc:
            raise Failed("%s: %s" % (exc.exc_type_name, exc.exc_value))
flags = (3).to_bytes(4, "little")
written, kept, failed = 0, 0, {}
for rel in files:
    source = os.path.join(root, rel)
    cfile = cache_from_source(source)
    try:
        with open(source, "rb") as f:
            data = f.read()
        try:
            with open(cfile, "rb") as f:
                head = f.read(16)
        except OSError:
            head = b""
        if head == MAGIC_NUMBER + flags + source_hash(data):
            kept += 1
            continue
        compile_one(source, cfile, rel, data)
        written += 1
    except Failed as exc:
        failed[rel] = str(exc).splitlines()[0][:200]
    except (OSError, ValueError) as exc:
        failed[rel] = ("%s: %s" % (type(exc).__name__, exc)).splitlines()[0][:200]
print("RUNENV-BYTECODE " + ascii(
    {"python": got, "written": written, "kept": kept, "failed": failed}))
"""


@dataclass(frozen=True)
class BytecodeResult:
    """What the stage did, as the manifest records it."""

    compiled: bool
    compiler: str = ""
    files: int = 0  # .py files that have bytecode now (written or kept)
    written: int = 0
    failed: dict[str, str] | None = None  # runtime-relative path -> why it did not compile
    reason: str = ""  # why nothing was compiled
    test_suites: bool = False  # packages' test suites compiled too
    source_only: int = 0  # .py files of test suites left as source

    def to_json(self) -> dict[str, Any]:
        if not self.compiled:
            return {"compiled": False, "reason": self.reason}
        return {
            "compiled": True,
            "invalidation_mode": INVALIDATION_MODE,
            "optimization_levels": [0],
            "compiler": self.compiler,
            "files": self.files,
            "test_suites": "compiled" if self.test_suites else "source",
            "source_only": self.source_only,
            "uncompilable": dict(sorted((self.failed or {}).items())),
        }


def skipped(reason: str) -> BytecodeResult:
    """The result of a build that ships no bytecode, and why."""
    return BytecodeResult(compiled=False, reason=reason)


def batches(files: Sequence[str]) -> list[list[str]]:
    """`files` sorted and cut into equal lists (see BATCH_FILES): the same files always give
    the same batches, so each is compiled in the same order, by a fresh process, every build."""
    ordered = sorted(files)
    size = min(BATCH_FILES, max(MIN_BATCH_FILES, -(-len(ordered) // MIN_BATCHES)))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def default_workers() -> int:
    """The cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def compile_tree(
    root: Path,
    interpreter: Path,
    python_version: str,
    files: Sequence[str],
    *,
    compiler: str = "",
    workers: int | None = None,
    timeout: float = 300.0,
    log_file: Path | None = None,
) -> BytecodeResult:
    """Compile `files` (paths relative to `root`) with `interpreter`, which must be Python
    `python_version`'s X.Y, as checked-hash `.pyc` files beside them; in parallel.

    A file that does not compile (a syntax error: test data, Python 2 leftovers) is left
    without bytecode and listed in the result, as pip does; anything else is a `BuildError`.
    """
    xy = ".".join(python_version.split(".")[:2])
    # Absolute: the workers run in a temp folder.
    root, interpreter = root.absolute(), interpreter.absolute()
    parts = batches(files)
    # A clean environment: no PYTHON* variable changes the cache tag, paths or hashing.
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    with tempfile.TemporaryDirectory(prefix="runenv-bytecode-") as tmp:

        def one(index: int) -> dict[str, Any]:
            job = Path(tmp) / f"job{index}"
            job.write_bytes(b"\0".join(map(os.fsencode, [str(root), xy, *parts[index]])))
            out = run(
                # -B: the worker's own imports write nothing (its .pyc files it writes itself),
                # so an import cannot race a worker's .pyc, and a shared compiler stays untouched.
                [interpreter, "-B", "-S", "-s", "-c", _COMPILE_SCRIPT, job],
                what=f"compiling bytecode with {interpreter}",
                cwd=Path(tmp),  # sys.path[0]: nothing of the tree shadows the stdlib
                env=env,
                timeout=timeout,
                log_file=log_file,
            )
            result = _worker_result(out, interpreter)
            if result["python"] != xy:
                raise BuildError(
                    f"compiling bytecode: {interpreter} is Python {result['python']}, "
                    f"not {xy}: bytecode is specific to a Python X.Y"
                )
            return result

        with ThreadPoolExecutor(max(1, min(len(parts), workers or default_workers()))) as pool:
            results = list(pool.map(one, range(len(parts))))
    failed: dict[str, str] = {}
    for r in results:
        failed.update(r["failed"])
    written = sum(r["written"] for r in results)
    kept = sum(r["kept"] for r in results)
    return BytecodeResult(
        compiled=True,
        compiler=compiler or str(interpreter),
        files=written + kept,
        written=written,
        failed=failed,
    )


def _worker_result(out: str, interpreter: Path) -> dict[str, Any]:
    """The result a compile worker printed in `out` (a dict of literals on a line of its
    own), or a BuildError that shows the worker's output."""
    prefix = "RUNENV-BYTECODE "
    line = next((ln for ln in out.splitlines() if ln.startswith(prefix)), None)
    try:
        result = None if line is None else ast.literal_eval(line.removeprefix(prefix))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        result = None
    if not isinstance(result, dict) or not isinstance(result.get("python"), str):
        raise BuildError(f"compiling bytecode with {interpreter}: no result:\n{out[-2000:]}")
    return result


def compile_runtime(
    plan: Plan,
    tree: Path,
    copied: Iterable[str],
    compiler: Compiler | NoCompiler,
    *,
    timeout: float,
    log_file: Path | None = None,
) -> BytecodeResult:
    """The stage as a build runs it: compile the stdlib, site-packages and copied `.py` files
    with `compiler` (`bytecode_compiler.choose_compiler`), or say in the result why there is
    no bytecode.

    The standard library and the packages come from images (`runenv.install.images`) compiled when
    they were made; only the `.py` files with no `.pyc` yet, and the copied ones (a copied file
    may replace a module an image compiled), go to the compiler, which keeps a `.pyc` whose
    header already matches its source.
    """
    if isinstance(compiler, NoCompiler):
        return skipped(compiler.reason)
    files, source = compiler.sources(plan, tree, copied)
    tag = "cpython-" + "".join(plan.python_version.split(".")[:2])
    again = set(copied)
    todo = [f for f in files if f in again or not (tree / _pyc_path(f, tag)).is_file()]
    result = compile_tree(
        tree, compiler.interpreter, plan.python_version, todo, compiler=compiler.description,
        timeout=timeout, log_file=log_file,
    )  # fmt: skip
    return dataclasses.replace(
        result,
        files=result.files + len(files) - len(todo),
        test_suites=compiler.test_suites,
        source_only=len(source),
    )


def _pyc_path(source: str, tag: str) -> str:
    """Where the interpreter `tag` (`cpython-312`) looks for the bytecode of `source`."""
    folder, _, name = source.rpartition("/")
    stem = name[: -len(".py")]
    return f"{folder}/__pycache__/{stem}.{tag}.pyc" if folder else f"__pycache__/{stem}.{tag}.pyc"


def compile_image(
    plan: Plan, tree: Path, compiler: Compiler, *, timeout: float, log_file: Path | None = None
) -> None:
    """Compile the `.py` files an image (`runenv.install.images`) holds under the stdlib folder
    (`Compiler.sources`), in batches of that image's own files, so its bytecode is the same
    whichever build makes it."""
    files, _ = compiler.sources(plan, tree)
    if files:
        compile_tree(
            tree, compiler.interpreter, plan.python_version, files, timeout=timeout,
            log_file=log_file,
        )  # fmt: skip
