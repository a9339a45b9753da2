"""End-to-end builds on the loopback PBS archive and package index: the real artifact is
unpacked elsewhere and run; rebuilds are reproducible, no-ops, safe when killed or concurrent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from runenv.checks.imports import import_check
from runenv.cli import main
from runenv.errors import CheckError
from support.dists import write_wheel
from support.index import (
    CP,
    RTNATIVE_PLATFORMS,
    RTPURE_WORDS,
    IndexServer,
    compile_extension,
    write_simple_pages,
)
from support.pbs import elf_header
from support.project import (
    SITE,
    VARIANT,
    archive_of,
    build,
    cli_stderr,
    make_project,
    manifest_of,
    unpack,
)


def run_cli(root: Path, server: IndexServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runenv",
            "-q",
            "--project",
            str(root),
            "build",
            VARIANT,
            "--index-url",
            server.index_url,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def project(tmp_path: Path, pbs: tuple[Path, str]) -> Path:
    return make_project(tmp_path / "proj", pbs, ["rtpure==1.0", "rtnative==1.0"])


def test_build_unpack_elsewhere_and_run(
    project: Path, pkg_server: IndexServer, tmp_path: Path
) -> None:
    assert build(project, pkg_server) == 0
    archive = archive_of(project)
    manifest = manifest_of(project)
    assert manifest["sha256"] and manifest["size"] == archive.stat().st_size
    assert manifest["interpreter"] == "bin/python3" and manifest["site_packages"] == SITE
    names = {p["name"]: p for p in manifest["packages"]}  # type: ignore[union-attr]
    assert set(names) == {"rtpure", "rtdep", "rtnative"}
    assert names["rtnative"]["wheel"].endswith("manylinux_2_17_x86_64.whl")
    assert not any(p["from_source"] for p in names.values())
    assert {n: p["top_level"] for n, p in names.items()} == {
        "rtpure": ["rtpure"],
        "rtdep": ["rtdep"],
        "rtnative": ["rtnative"],
    }
    assert "bin/rt-tool" in manifest["copied_files"]  # type: ignore[operator]
    assert (project / "versions" / VARIANT / "pylock.linux-x64.toml").is_file()
    # Lock files stay out of folders users read or commit; outputs get the usual modes.
    assert not list((project / "dist").glob("*.lock"))
    assert not list((project / "versions").rglob("*.lock"))
    umask = os.umask(0)
    os.umask(umask)
    assert archive.stat().st_mode & 0o777 == 0o666 & ~umask
    assert (project / "pydist" / VARIANT / "linux-x64" / "bin" / "python3").exists()

    # The archive holds the tree at its root, with no owner names.
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
    assert "bin/python3" in {m.name for m in members}
    assert all(m.uname == "" and m.gname == "" and m.uid == 0 for m in members)

    runtime = unpack(archive, tmp_path / "elsewhere" / "rt")
    py = runtime / "bin" / "python3"
    out = subprocess.run(
        [
            py,
            "-c",
            "import sys, rtpure, rtnative, rtdep, rtcopied; "
            "print(sys.prefix, rtnative.answer(), rtdep.VALUE, rtcopied.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(runtime), "42", "rtdep", "1.0", "copied"]
    hello = subprocess.run([runtime / "bin" / "rtpure-hello"], capture_output=True, text=True)
    assert hello.returncode == 0 and "RTPURE_HELLO" in hello.stdout
    head = (runtime / "bin" / "rtpure-hello").read_text().splitlines()[0]
    assert str(project) not in head
    tool = subprocess.run([runtime / "bin" / "rt-tool"], capture_output=True, text=True)
    assert tool.stdout.startswith("RT_TOOL")


def test_rebuild_is_reproducible_and_noop_is_up_to_date(
    project: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(project, pkg_server) == 0
    first = manifest_of(project)["sha256"]
    with tarfile.open(archive_of(project)) as tf:  # bytecode included (a build path would show)
        assert sum(name.endswith(".pyc") for name in tf.getnames()) > 500
        words = tf.extractfile(f"{SITE}/rtpure/words.txt")
        assert words is not None and words.read() == RTPURE_WORDS
    # That large file is carried as the wheel's own deflate stream, not compressed again.
    wheel = pkg_server.root / "files" / "rtpure-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("rtpure/words.txt")
    blob, at = wheel.read_bytes(), info.header_offset
    start = at + 30 + int.from_bytes(blob[at + 26 : at + 28], "little")
    start += int.from_bytes(blob[at + 28 : at + 30], "little")  # local header's name, extra
    assert blob[start : start + info.compress_size] in archive_of(project).read_bytes()
    capsys.readouterr()
    assert build(project, pkg_server) == 0
    assert capsys.readouterr().out.startswith("up to date:")
    # From scratch, in throwaway caches: the same bytes.
    assert build(project, pkg_server, "--refresh") == 0
    assert capsys.readouterr().out.startswith("built:")
    assert manifest_of(project)["sha256"] == first
    # A changed copied file changes the build, and only that rebuilds.
    (project / "versions" / VARIANT / "files" / "site" / "rtcopied.py").write_text("VALUE = 2\n")
    assert build(project, pkg_server) == 0
    assert capsys.readouterr().out.startswith("built:")
    assert manifest_of(project)["sha256"] != first


def test_changed_dependencies_relock_and_locked_refuses(
    project: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(project, pkg_server) == 0
    config = project / "versions" / VARIANT / "config.toml"
    config.write_text(
        config.read_text().replace('"rtnative==1.0"', '"rtnative==1.0", "rtdep==1.0"')
    )
    assert build(project, pkg_server, "--locked") == 1
    err = capsys.readouterr().err
    assert "pylock.linux-x64.toml: its inputs changed and --locked forbids re-locking" in err
    assert build(project, pkg_server) == 0
    # The relock is announced, on stderr, unless -q; here -q hides it but the lock is new.
    lock_text = (project / "versions" / VARIANT / "pylock.linux-x64.toml").read_text()
    assert "rtdep" in lock_text
    assert build(project, pkg_server, "--locked") == 0


def test_failed_import_names_module_and_leaves_nothing(
    rtpure_project: Path, pkg_server: IndexServer
) -> None:
    root = rtpure_project
    (root / "versions" / VARIANT / "files" / "site" / "rtbroken.py").write_text(
        "raise ImportError('rtbroken needs a GPU')\n"
    )
    err = cli_stderr(root, pkg_server, "build", code=1)
    assert "rtbroken: ImportError: rtbroken needs a GPU" in err
    assert err.count("\n") <= 2
    assert not archive_of(root).exists()
    assert not (root / "pydist" / VARIANT / "linux-x64").exists()
    assert [p.name for p in (root / "pydist" / VARIANT).iterdir()] == []
    # Accepting the known failure, with a reason, lets the build pass.
    config = root / "versions" / VARIANT / "config.toml"
    config.write_text(
        config.read_text() + '\n[check]\nallowImportFailures = { rtbroken = "no GPU here" }\n'
    )
    assert build(root, pkg_server) == 0


_RTCEXT_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rtcext", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__rtcext(void) { return PyModule_Create(&module); }
"""


def test_import_check_sees_namespace_packages_and_underscore_modules(
    tmp_path: Path, pbs: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A wheel with a namespace package (`rtns/`, no `__init__`) and a `_`-prefixed C extension:
    the manifest records both, and once they are broken in the built tree the check names both."""
    index = tmp_path / "index"
    ext = compile_extension(_RTCEXT_C, "_rtcext", tmp_path / "work" / "_rtcext.so")
    write_wheel(
        index / "files",
        "rtnsext",
        "1.0",
        {
            "rtns/core/__init__.py": b'VALUE = "core"\n',
            "rtns/core/data.json": b"{}\n",
            "rtns/plain.py": b'VALUE = "plain"\n',
            f"_rtcext{sysconfig.get_config_var('EXT_SUFFIX')}": ext.read_bytes(),
        },
        tag=f"{CP}-{CP}-{RTNATIVE_PLATFORMS['linux-x64'][0]}",
        purelib=False,
    )
    write_simple_pages(index)
    root = make_project(tmp_path / "p", pbs, ["rtnsext==1.0"])
    with IndexServer(index) as server:
        assert build(root, server) == 0
    (package,) = manifest_of(root)["packages"]  # type: ignore[misc]
    assert package["top_level"] == ["_rtcext", "rtns.core", "rtns.plain"]

    site = root / "pydist" / VARIANT / "linux-x64" / SITE
    (extension,) = site.glob("_rtcext.*")
    extension.unlink()  # the check hard-links the tree: replace the file, never write through
    extension.write_bytes(b"not a shared object\n" * 8)
    (site / "rtns" / "core" / "__init__.py").unlink()
    (site / "rtns" / "core" / "__init__.py").write_text("raise ImportError('rtns.core broke')\n")
    capsys.readouterr()
    # `runenv check` refuses the edited tree before running anything from it...
    assert main(["--project", str(root), "check", VARIANT]) == 1
    err = capsys.readouterr().err
    assert f"{extension.name} changed" in err and "rtns/core/__init__.py changed" in err
    # ...and the import check it would run names both broken modules, or accepts them.
    tree = root / "pydist" / VARIANT / "linux-x64"
    modules = ["_rtcext", "rtns.core", "rtns.plain"]
    with pytest.raises(CheckError) as caught:
        import_check(tree, tree / "bin" / "python3", modules, {}, timeout=300)
    assert "import check failed for 2 module(s): _rtcext: ImportError" in str(caught.value)
    assert "rtns.core: ImportError: rtns.core broke" in str(caught.value)
    allowed = {"_rtcext": "corrupt", "rtns.core": "broken"}
    assert import_check(tree, tree / "bin" / "python3", modules, allowed, timeout=300).imported


def test_killed_builds_are_followed_by_a_correct_build(
    project: Path, pkg_server: IndexServer
) -> None:
    assert build(project, pkg_server) == 0
    reference = manifest_of(project)["sha256"]
    dist, pydist = project / "dist", project / "pydist"
    for delay in (0.3, 1.0, 2.0, 3.5):
        for path in dist.glob("runenv-*"):
            path.unlink()
        proc = run_cli(project, pkg_server, "--refresh")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever is left: a manifest only ever describes the archive beside it.
        manifest = dist / f"runenv-{VARIANT}-linux-x64.json"
        if manifest.exists():
            assert manifest_of(project)["size"] == archive_of(project).stat().st_size
        assert build(project, pkg_server) == 0
        assert manifest_of(project)["sha256"] == reference
        leftovers = [p.name for p in (pydist / VARIANT).iterdir() if p.name != "linux-x64"]
        assert leftovers == [] or all(p.startswith(".tmp-") for p in leftovers)


def test_two_concurrent_builds_both_succeed(project: Path, pkg_server: IndexServer) -> None:
    procs = [run_cli(project, pkg_server) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    states = sorted(out.split(":")[0] for out, _ in outs)
    assert states in (["built", "up to date"], ["built", "built"])
    assert manifest_of(project)["size"] == archive_of(project).stat().st_size


def test_check_command_reruns_checks(
    project: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(project), "check", VARIANT]) == 2
    assert "is not built" in capsys.readouterr().err
    assert build(project, pkg_server) == 0
    assert main(["--project", str(project), "check", VARIANT]) == 0
    # A planted wrong-architecture binary fails the re-check, naming the file.
    tree = project / "pydist" / VARIANT / "linux-x64"
    planted = tree / SITE / "rtnative" / "_planted.so"
    planted.write_bytes(elf_header())
    capsys.readouterr()
    assert main(["--project", str(project), "check", VARIANT]) == 1
    assert f"{SITE}/rtnative/_planted.so added" in capsys.readouterr().err


def test_enable_logging_writes_log_beside_archive(
    project: Path, pkg_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache of its own: an identical build of another test would be reused, not checked.
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "own-cache"))
    assert build(project, pkg_server) == 0
    log = project / "dist" / f"runenv-{VARIANT}-linux-x64.log"
    text = log.read_text()
    assert "uv" in text and "pip compile" in text and "RUNENV-CHECK" in text
    # Outputs removed, the same inputs: the kept archive is reused, and the log says so.
    shutil.rmtree(project / "dist")
    shutil.rmtree(project / "pydist")
    assert build(project, pkg_server) == 0
    text = log.read_text()
    assert "runenv: reused" in text and "RUNENV-CHECK" not in text


def test_clean_removes_outputs(project: Path, pkg_server: IndexServer) -> None:
    assert build(project, pkg_server) == 0
    assert main(["-q", "--project", str(project), "clean", VARIANT]) == 0
    assert not archive_of(project).exists()
    assert not (project / "pydist" / VARIANT).exists()


@pytest.mark.network
def test_numpy_pandas_from_real_pypi(tmp_path: Path, pbs: tuple[Path, str]) -> None:
    root = make_project(tmp_path / "p", pbs, ["numpy==2.2.6", "pandas==2.2.3"])
    env = {**os.environ, "RUNENV_INDEX_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "runenv", "-q", "--project", str(root), "build", VARIANT],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    runtime = unpack(archive_of(root), tmp_path / "moved")
    out = subprocess.run(
        [
            runtime / "bin" / "python3",
            "-c",
            "import numpy, pandas; print(numpy.__version__, pandas.__version__, "
            "pandas.DataFrame({'a': numpy.arange(3)}).a.sum())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["2.2.6", "2.2.3", "3"]


def test_offline_build_uses_caches_only(
    project: Path,
    pkg_server: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "cold"))
    # Nothing cached yet: --offline says what is missing instead of downloading.
    assert build(project, pkg_server) == 0  # writes the lock and fills the caches
    assert main(["-q", "--project", str(project), "clean", VARIANT]) == 0
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "empty"))
    capsys.readouterr()
    assert build(project, pkg_server, "--offline") == 1
    err = capsys.readouterr().err
    assert "--offline" in err and err.count("\n") <= 3
    assert not archive_of(project).exists()
    # With the caches full, an offline build needs no server at all.
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "cold"))
    gets = len(pkg_server.request_log())
    assert build(project, pkg_server, "--offline") == 0
    assert len(pkg_server.request_log()) == gets


def test_fetch_python_cli_prints_where_it_unpacked(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "pythons"
    code = main(
        [
            "--project",
            str(project),
            "fetch-python",
            VARIANT,
            "--platform",
            "host",
            "--dest",
            str(dest),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"linux-x64: {dest / 'linux-x64'}"
    moved = tmp_path / "moved-python"
    (dest / "linux-x64").rename(moved)
    prefix = subprocess.run(
        [moved / "bin" / "python3", "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert prefix == str(moved)
    # A version the index lacks names the nearest ones it has.
    assert main(["--project", str(project), "fetch-python", "3.12.99", "--dest", str(dest)]) == 2
    assert "nearest versions it has: 3.12." in capsys.readouterr().err
