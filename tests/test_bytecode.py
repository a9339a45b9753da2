"""Bytecode: compiled at build time into real trees (the PBS-shaped stdlib ships none),
reproducibly, by a same-X.Y interpreter; the import check and a read-only runtime use it."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import py_compile
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from runenv.checks.imports import import_check
from runenv.config.load import load_variant
from runenv.config.plan import Plan, make_plan
from runenv.errors import BuildError, CheckError, FetchError
from runenv.platforms import Platform
from runenv.tree import bytecode, bytecode_compiler
from support.dists import write_wheel
from support.index import IndexServer, write_simple_pages
from support.pbs import PY_XY, standin
from support.project import (
    SITE,
    VARIANT,
    archive_of,
    build,
    catalogue_check,
    make_project,
    manifest_of,
    run_python,
    unpack,
)

TAG = sys.implementation.cache_tag
CHECKED_HASH = (3).to_bytes(4, "little")

# Which modules the interpreter compiles from source while importing: `source_to_code` is what
# `SourceLoader.get_code` calls when there is no valid .pyc, and only then.
PROBE = """
import importlib._bootstrap_external as be, sys
compiled = []
original = be.SourceLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
be.SourceLoader.source_to_code = spy
import json, email.parser, argparse, rtpure, rtnative, rtdep, rtcopied
print(json.dumps({"compiled": compiled, "dont_write": sys.flags.dont_write_bytecode}))
"""


def add_package(root: Path) -> None:
    """A package in site-packages: a module it imports, a syntax error, an executable script."""
    pkg = root / SITE / "bcpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import mod\nVALUE = mod.VALUE\n")
    (pkg / "mod.py").write_text("VALUE = {'a', 'b', 'c', 'd'}\n")
    (pkg / "bad.py").write_text("def broken(:\n")
    (pkg / "script.py").write_text("print('hi')\n")
    (pkg / "script.py").chmod(0o755)


def pycs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def compile_all(root: Path, workers: int) -> bytecode.BytecodeResult:
    files = bytecode_compiler.python_files(root, [PurePosixPath(SITE).parent])
    return bytecode.compile_tree(root, root / "bin" / "python3", PY_XY, files, workers=workers)


@pytest.fixture(scope="module")
def pbs_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = standin.host_tree(tmp_path_factory.mktemp("pbs") / "python")
    assert not any(root.rglob("*.pyc")), "the test's stdlib must lack bytecode"
    add_package(root)
    return root


@pytest.fixture(scope="module")
def compiled(pbs_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The PBS-shaped tree compiled with two workers (do not change it)."""
    root = tmp_path_factory.mktemp("compiled") / "rt"
    shutil.copytree(pbs_tree, root, symlinks=True)
    result = compile_all(root, workers=2)
    assert result.compiled and set(result.failed or {}) == {f"{SITE}/bcpkg/bad.py"}
    assert "SyntaxError" in (result.failed or {})[f"{SITE}/bcpkg/bad.py"]
    yield root


def test_every_py_gets_checked_hash_bytecode_named_relative_to_the_root(compiled: Path) -> None:
    sources = sorted(compiled.joinpath(SITE).parent.rglob("*.py"))
    assert len(sources) > 500  # the stdlib is in
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        if source.name == "bad.py":
            assert not cached.exists()
            continue
        head = cached.read_bytes()[:16]
        assert head[:8] == importlib.util.MAGIC_NUMBER + CHECKED_HASH, source
        assert head[8:] == importlib.util.source_hash(source.read_bytes()), source
    mod = compiled / SITE / "bcpkg" / "__pycache__" / f"mod.{TAG}.pyc"
    code = marshal.loads(mod.read_bytes()[16:])
    assert code.co_filename == f"{SITE}/bcpkg/mod.py"  # no build folder in the bytes
    script_pyc = compiled / SITE / "bcpkg" / "__pycache__" / f"script.{TAG}.pyc"
    assert not script_pyc.stat().st_mode & 0o111  # modes follow the source, never executable


def test_same_tree_gives_the_same_bytes_whatever_the_workers(
    pbs_tree: Path, compiled: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere" / "rt"
    shutil.copytree(pbs_tree, other, symlinks=True)
    compile_all(other, workers=1)
    first, second = pycs(compiled), pycs(other)
    assert len(first) > 500 and first == second


def test_valid_bytecode_is_kept_stale_and_timestamp_bytecode_replaced(tmp_path: Path) -> None:
    root = tmp_path / "rt"
    for name in ("a", "b", "c"):
        path = root / "lib" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"NAME = {name!r}\n")
    files = ["lib/a.py", "lib/b.py", "lib/c.py"]
    exe = Path(sys.executable)
    first = bytecode.compile_tree(root, exe, PY_XY, files)
    assert (first.files, first.written) == (3, 3)
    before = snapshot(root)
    again = bytecode.compile_tree(root, exe, PY_XY, files)
    assert (again.files, again.written) == (3, 0) and snapshot(root) == before
    # An edited source, and a timestamp .pyc (what CPython's install writes): both redone.
    (root / "lib" / "a.py").write_text("NAME = 'edited'\n")
    b_pyc = importlib.util.cache_from_source(str(root / "lib" / "b.py"))
    py_compile.compile(str(root / "lib" / "b.py"), cfile=b_pyc)
    assert Path(b_pyc).read_bytes()[4:8] == bytes(4)  # timestamp mode
    third = bytecode.compile_tree(root, exe, PY_XY, files)
    assert (third.files, third.written) == (3, 2)
    for name in ("a", "b"):
        data = Path(importlib.util.cache_from_source(str(root / "lib" / f"{name}.py"))).read_bytes()
        assert data[4:8] == CHECKED_HASH
        assert data[8:16] == importlib.util.source_hash((root / "lib" / f"{name}.py").read_bytes())


@pytest.mark.parametrize("internals", [True, False], ids=["importlib-internals", "py_compile"])
def test_the_worker_writes_what_compile_makes_of_each_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, internals: bool
) -> None:
    """The worker's .pyc holds the code `compile()` makes of the source, under the file's
    runtime-relative name, whether it has importlib's internals (the usual way) or falls back
    to py_compile; a name with a newline or non-ASCII letters travels intact; a syntax error
    and a .pyc path that is a symlink are reported, and the link's target stays untouched."""
    if not internals:  # a Python without them: the from-import fails, py_compile is used
        prefix = "import sys\nsys.modules['_frozen_importlib_external'] = None\n"
        monkeypatch.setattr(bytecode, "_COMPILE_SCRIPT", prefix + bytecode._COMPILE_SCRIPT)
    sources = {
        "lib/plain.py": "X = {'a', 'b', 'c'}\ndef f():\n    return X\n",
        "lib/ünï cödé\nline.py": "Y = 'é' * 3\n",
        "lib/bad.py": "def broken(:\n",
        "lib/linked.py": "Z = 1\n",
    }
    root = tmp_path / "rt"
    for rel, text in sources.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    target = tmp_path / "elsewhere.pyc"
    target.write_bytes(b"not bytecode")
    linked = Path(importlib.util.cache_from_source(str(root / "lib" / "linked.py")))
    linked.parent.mkdir()
    linked.symlink_to(target)

    result = bytecode.compile_tree(root, Path(sys.executable), PY_XY, sorted(sources))
    assert result.written == 2 and set(result.failed or {}) == {"lib/bad.py", "lib/linked.py"}
    assert (result.failed or {})["lib/bad.py"].startswith("SyntaxError: ")
    assert (result.failed or {})["lib/linked.py"].startswith("FileExistsError: ")
    assert target.read_bytes() == b"not bytecode" and linked.is_symlink()
    for rel in ("lib/plain.py", "lib/ünï cödé\nline.py"):
        data = (root / rel).read_bytes()
        pyc = Path(importlib.util.cache_from_source(str(root / rel))).read_bytes()
        assert pyc[:16] == importlib.util.MAGIC_NUMBER + CHECKED_HASH + importlib.util.source_hash(
            data
        )
        assert marshal.loads(pyc[16:]) == compile(data, rel, "exec", dont_inherit=True)


def test_an_interpreter_of_another_version_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "rt"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "a.py").write_text("A = 1\n")
    with pytest.raises(BuildError, match=rf"is Python {PY_XY}, not 3\.1: bytecode is specific"):
        bytecode.compile_tree(root, Path(sys.executable), "3.1.4", ["lib/a.py"])
    assert not (root / "lib" / "__pycache__").exists()


def test_import_check_reads_shipped_bytecode_writes_none_and_refuses_stale(
    compiled: Path, tmp_path: Path
) -> None:
    modules = ["bcpkg", "json", "email.parser", "argparse"]
    before = snapshot(compiled)
    result = import_check(
        compiled, compiled / "bin" / "python3", modules, {}, timeout=120, bytecode=True
    )
    assert result.imported == tuple(sorted(modules))
    assert snapshot(compiled) == before  # -B: not one file written or rewritten
    # A source changed after the stage: its module would be compiled on import. Refused.
    moved = tmp_path / "moved"
    shutil.copytree(compiled, moved, symlinks=True)
    (moved / SITE / "bcpkg" / "mod.py").write_text("VALUE = 'changed'\n")
    with pytest.raises(CheckError, match=r"1 module\(s\) .* no valid bytecode .*: bcpkg\.mod "):
        import_check(moved, moved / "bin" / "python3", modules, {}, timeout=120, bytecode=True)
    # Without the bytecode test (a build without bytecode) the same tree passes.
    import_check(moved, moved / "bin" / "python3", modules, {}, timeout=120)
    stale = f"{SITE}/bcpkg/__pycache__/mod.{TAG}.pyc"
    assert (moved / stale).read_bytes() == (compiled / stale).read_bytes()  # still not rewritten


def test_import_check_follows_a_module_respecced_without_cached(
    compiled: Path, tmp_path: Path
) -> None:
    # setuptools' distutils hack: `distutils` is setuptools._distutils, imported normally (from
    # its bytecode) and then given a spec with an origin but no `cached`, under both names.
    tree = tmp_path / "tree"
    shutil.copytree(compiled, tree, symlinks=True)
    alias = tree / SITE / "bcalias.py"
    alias.write_text(
        "import importlib.abc, importlib.util, sys\n"
        "import bcpkg\n"
        "class _Loader(importlib.abc.Loader):\n"
        "    def create_module(self, spec):\n"
        "        return bcpkg\n"
        "    def exec_module(self, module):\n"
        "        pass\n"
        "spec = importlib.util.spec_from_loader('bcother', _Loader(), origin=bcpkg.__file__)\n"
        "assert spec.cached is None\n"
        "sys.modules['bcother'] = importlib.util.module_from_spec(spec)\n"
    )
    py_compile.compile(
        str(alias), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH, doraise=True
    )
    modules = ["bcalias", "bcpkg"]
    result = import_check(tree, tree / "bin" / "python3", modules, {}, timeout=120, bytecode=True)
    assert result.imported == tuple(modules)
    # Its bytecode is still checked: stale, it is refused under both names.
    (tree / SITE / "bcpkg" / "__init__.py").write_text("from . import mod\nVALUE = 2\n")
    with pytest.raises(CheckError, match=r"no valid bytecode .*: bcother, bcpkg "):
        import_check(tree, tree / "bin" / "python3", modules, {}, timeout=120, bytecode=True)


def _plan(tmp_path: Path, pbs: tuple[Path, str]) -> Plan:
    root = make_project(tmp_path / "p", pbs, [])
    return make_plan(load_variant(root, VARIANT), Platform.LINUX_X64)


def _tree(tmp_path: Path, plan: Plan) -> Path:
    tree = tmp_path / "tree"
    (tree / plan.site_packages / "pkg").mkdir(parents=True)
    (tree / plan.site_packages / "pkg" / "__init__.py").write_text("X = 1\n")
    (tree / "bin").mkdir()
    (tree / "bin" / "tool.py").write_text("print(1)\n")  # a copied file outside the stdlib
    return tree


def test_cross_build_compiler_host_runtime_then_runenvs_own_then_skipped(
    tmp_path: Path, pbs: tuple[Path, str]
) -> None:
    plan = _plan(tmp_path, pbs)
    tree = _tree(tmp_path, plan)
    pyc = tree / plan.site_packages / "pkg" / "__pycache__" / f"__init__.{TAG}.pyc"

    def no_host() -> Path:
        raise FetchError("cpython-9.9.9.tar.gz: not in the cache and --offline")

    def compile_with(
        plan: Plan, host_python: Callable[[], Path], copied: list[str]
    ) -> bytecode.BytecodeResult:
        compiler = bytecode_compiler.choose_compiler(
            plan, tree, native=False, host_python=host_python
        )
        return bytecode.compile_runtime(plan, tree, copied, compiler, timeout=120.0)

    host = compile_with(plan, lambda: Path(sys.executable), ["bin/tool.py"])
    assert host.compiled and "runtime for this host" in host.compiler and host.files == 2
    assert pyc.is_file() and (tree / "bin" / "__pycache__" / f"tool.{TAG}.pyc").is_file()

    shutil.rmtree(pyc.parent)
    own = compile_with(plan, no_host, [])
    assert own.compiled and own.compiler.startswith("runenv's own Python") and pyc.is_file()

    shutil.rmtree(pyc.parent)
    other = replace(plan, python_version="3.99.0")
    none = compile_with(other, no_host, [])
    assert not none.compiled and not pyc.parent.exists()
    assert none.to_json() == {
        "compiled": False,
        "reason": "cross build with no Python 3.99 to compile with: the host's runtime of 3.99.0 "
        "is unavailable (cpython-9.9.9.tar.gz: not in the cache and --offline) and runenv runs "
        f"on {PY_XY}",
    }
    off = compile_with(replace(plan, compile_bytecode=False), no_host, [])
    assert off.to_json() == {"compiled": False, "reason": "[build] compileBytecode = false"}
    assert not pyc.parent.exists()


def _probe(runtime: Path) -> dict[str, object]:
    """Run PROBE in `runtime` made read-only, with bytecode writing off (as on a shared mount)."""
    for path in [runtime, *runtime.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [runtime / "bin" / "python3", "-c", PROBE], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_built_runtime_imports_from_shipped_bytecode_read_only(
    tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer
) -> None:
    root = make_project(tmp_path / "p", pbs, ["rtpure==1.0", "rtnative==1.0"])
    assert build(root, pkg_server) == 0
    manifest = manifest_of(root)
    info = manifest["bytecode"]
    assert isinstance(info, dict) and info["compiled"] is True
    assert info["invalidation_mode"] == "checked-hash" and info["optimization_levels"] == [0]
    assert info["compiler"] == f"the runtime's own Python {PY_XY}" and info["files"] > 500
    with tarfile.open(archive_of(root)) as tf:
        names = set(tf.getnames())
    assert f"{SITE}/rtpure/__pycache__/__init__.{TAG}.pyc" in names
    assert f"{SITE}/__pycache__/rtcopied.{TAG}.pyc" in names  # copied files too
    assert f"lib/python{PY_XY}/json/__pycache__/__init__.{TAG}.pyc" in names  # the stdlib too

    runtime = unpack(archive_of(root), tmp_path / "ro" / "rt")
    try:
        before = snapshot(runtime)
        probe = _probe(runtime)
        assert probe == {"compiled": [], "dont_write": 1}
        assert snapshot(runtime) == before
    finally:
        _writable(runtime)

    # Turned off: no bytecode in the archive, the manifest says so, and imports compile.
    config = root / "versions" / VARIANT / "config.toml"
    config.write_text(config.read_text() + "\n[build]\ncompileBytecode = false\n")
    assert build(root, pkg_server) == 0
    assert manifest_of(root)["bytecode"] == {
        "compiled": False,
        "reason": "[build] compileBytecode = false",
    }
    with tarfile.open(archive_of(root)) as tf:
        assert not [n for n in tf.getnames() if n.startswith(SITE) and n.endswith(".pyc")]
    bare = unpack(archive_of(root), tmp_path / "ro2" / "rt")
    try:
        compiled_on_import = _probe(bare)["compiled"]
        assert isinstance(compiled_on_import, list)
        assert any(p.endswith("rtpure/__init__.py") for p in compiled_on_import)
        assert any(p.endswith("json/__init__.py") for p in compiled_on_import)
    finally:
        _writable(bare)


def test_cross_builds_of_one_run_share_one_unpacked_host_runtime(pbs: tuple[Path, str]) -> None:
    first = bytecode_compiler.shared_runtime(*pbs)
    # Unpacked once, whatever the number of builds.
    assert bytecode_compiler.shared_runtime(*pbs) == first
    out = subprocess.run(
        [first / "bin" / "python3", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(sys.version_info[:2])


@pytest.mark.parametrize(
    ("path", "suite"),
    [
        (f"{SITE}/pkg/tests/test_a.py", True),
        (f"{SITE}/pkg/tests/__init__.py", True),
        (f"{SITE}/pkg/sub/test/deep/x.py", True),
        (f"lib/python{PY_XY}/tkinter/test/x.py", True),  # the stdlib's packages too
        (f"{SITE}/pkg/tests.py", True),  # a module named so (the reference skips `*.tests`)
        (f"{SITE}/pkg/_tests/x.py", True),
        (f"{SITE}/pkg/testing/x.py", False),  # numpy.testing: imported by libraries
        (f"{SITE}/tests/__init__.py", True),  # a top-level suite shipped by mistake (olga)
        (f"{SITE}/tests.py", True),
        (f"lib/python{PY_XY}/test/test_os.py", True),  # the stdlib's regression tests too
        (f"{SITE}/pkg/test_utils.py", False),
        (f"{SITE}/pkg/mytests/x.py", False),
        ("bin/tests/x.py", False),  # outside the library folders
    ],
)
def test_a_test_suite_is_a_module_or_package_named_so_at_any_depth(path: str, suite: bool) -> None:
    site = PurePosixPath(SITE)
    assert bytecode_compiler.is_test_suite(path, site.parent, site) is suite


_SUITE_FILES = {
    # rtsuite imports a module of its own test suite when imported: the check must accept it
    "rtsuite/__init__.py": b"from rtsuite.tests import fixtures\nVALUE = fixtures.VALUE\n",
    "rtsuite/tests/__init__.py": b"",
    "rtsuite/tests/fixtures.py": b"VALUE = 'fixture'\n",
    "rtsuite/sub/__init__.py": b"",
    "rtsuite/sub/test/__init__.py": b"",
    "rtsuite/testing.py": b"VALUE = 'testing'\n",
    "tests/__init__.py": b"VALUE = 'top-level tests'\n",
}
_SOURCE_ONLY = {
    "rtsuite/tests/__init__.py",
    "rtsuite/tests/fixtures.py",
    "rtsuite/sub/test/__init__.py",
    "tests/__init__.py",  # a top-level suite too (`modules.is_test_suite`), nor import-checked
}


def _pyc_of(name: str) -> str:
    folder, _, file = name.rpartition("/")
    return f"{SITE}/{folder}/__pycache__/{file[:-3]}.{TAG}.pyc"


def test_test_suites_ship_as_source_unless_asked_and_the_check_accepts_them(
    tmp_path: Path, pbs: tuple[Path, str]
) -> None:
    index = tmp_path / "index"
    write_wheel(index / "files", "rtsuite", "1.0", _SUITE_FILES)
    write_simple_pages(index)
    root = make_project(tmp_path / "p", pbs, ["rtsuite==1.0"])
    config = root / "versions" / VARIANT / "config.toml"
    with IndexServer(index) as server:
        assert build(root, server) == 0  # the check imports rtsuite, so rtsuite.tests
        info = manifest_of(root)["bytecode"]
        assert isinstance(info, dict)
        assert info["test_suites"] == "source" and info["source_only"] >= len(_SOURCE_ONLY)
        check = manifest_of(root)["check"]
        assert isinstance(check, dict)
        assert check["skipped"] == [{"module": "tests", "reason": "test suite"}]
        with tarfile.open(archive_of(root)) as tf:
            names = set(tf.getnames())
        for name in _SUITE_FILES:
            assert f"{SITE}/{name}" in names
            assert (_pyc_of(name) in names) is (name not in _SOURCE_ONLY), name
        runtime = unpack(archive_of(root), tmp_path / "rt")
        assert run_python(runtime, "import rtsuite; print(rtsuite.VALUE)") == "fixture"
        # A verify job's check reads the choice from the manifest: accepted as built, refused
        # where the manifest says the suites were compiled.
        manifest = root / "dist" / f"runenv-{VARIANT}-linux-x64.json"
        verified = catalogue_check(manifest)
        assert verified.returncode == 0, verified.stderr
        saved = manifest.read_text()
        manifest.write_text(saved.replace('"test_suites": "source"', '"test_suites": "compiled"'))
        refused = catalogue_check(manifest)
        assert refused.returncode == 1 and "rtsuite.tests" in refused.stderr, refused.stderr
        manifest.write_text(saved)

        # Asked for: every file compiled, the manifest says so, and the images are new ones
        # (their key has the choice), not the source-only ones of the build above.
        config.write_text(config.read_text() + "\n[build]\ncompileTestBytecode = true\n")
        assert build(root, server) == 0
        info = manifest_of(root)["bytecode"]
        assert isinstance(info, dict)
        assert info["test_suites"] == "compiled" and info["source_only"] == 0
        with tarfile.open(archive_of(root)) as tf:
            names = set(tf.getnames())
        assert all(_pyc_of(name) in names for name in _SUITE_FILES)

        # And back: the images compiled with their test suites do not serve this build.
        config.write_text(config.read_text().replace("compileTestBytecode = true", ""))
        assert build(root, server) == 0
        with tarfile.open(archive_of(root)) as tf:
            names = set(tf.getnames())
        assert not [n for n in _SOURCE_ONLY if _pyc_of(n) in names]


def test_the_check_refuses_a_test_suite_without_bytecode_when_suites_were_compiled(
    tmp_path: Path, compiled: Path
) -> None:
    root = tmp_path / "rt"
    shutil.copytree(compiled, root, symlinks=True)
    suite = root / SITE / "bcpkg" / "tests"
    suite.mkdir()
    (suite / "__init__.py").write_text("VALUE = 1\n")
    # The check imports no test suite itself: a module that does brings it in.
    (root / SITE / "bcpkg" / "uses_suite.py").write_text("from bcpkg.tests import VALUE\n")
    # Compiled like the rest (checked-hash), then its bytecode removed: compiled on import.
    assert compile_all(root, workers=1).compiled
    pyc = Path(importlib.util.cache_from_source(str(suite / "__init__.py")))
    assert pyc.is_file()
    pyc.unlink()
    python = root / "bin" / "python3"
    kwargs = {"timeout": 60.0, "bytecode": True}
    import_check(root, python, ["bcpkg.uses_suite"], {}, test_suites=False, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(CheckError, match=r"compiled on import: .*bcpkg\.tests"):
        import_check(root, python, ["bcpkg.uses_suite"], {}, test_suites=True, **kwargs)  # type: ignore[arg-type]


def test_the_image_key_names_the_test_suite_choice(tmp_path: Path, pbs: tuple[Path, str]) -> None:
    """Images made before the choice existed were keyed `checked-hash:X.Y.Z` and hold their test
    suites' bytecode: neither choice may take them."""
    plan = _plan(tmp_path, pbs)
    tags = {
        tests: bytecode_compiler.choose_compiler(
            replace(plan, compile_test_bytecode=tests), tmp_path, native=True, host_python=Path
        )
        for tests in (False, True)
    }
    assert all(isinstance(c, bytecode_compiler.Compiler) for c in tags.values())
    old = f"checked-hash:{plan.python_version}"
    made = {c.tag for c in tags.values() if isinstance(c, bytecode_compiler.Compiler)}
    assert len({old, *made}) == 3
