"""install_wheels: real wheels into a real (venv) runtime that is then moved, and a Windows tree."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from runenv.errors import BuildError
from runenv.install.modules import importable, top_level
from runenv.install.wheels import InstalledDist, install_wheels
from runenv.platforms import Platform, host_platform
from support.dists import record_hash, write_wheel

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


HELLO_INIT = b'GREETING = "hello from runenv"\n\ndef main():\n    print(GREETING)\n    return 0\n'


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """`hello` (package, module, console + gui script, .data scripts and data) and `plain`."""
    where = tmp_path_factory.mktemp("wheels")
    hello = write_wheel(
        where,
        "hello",
        "1.0",
        {
            "hello/__init__.py": HELLO_INIT,
            "hello/sub/__init__.py": b"",
            "hello_mod.py": b"VALUE = 42\n",
            "hello-1.0.data/scripts/hello-data": (
                b"#!python\nimport hello\nprint('data script says', hello.GREETING)\n"
            ),
            "hello-1.0.data/data/share/hello/readme.txt": b"shared data\n",
        },
        entry_points=(
            "[console_scripts]\nhello = hello:main\n\n[gui_scripts]\nhello-gui = hello:main\n"
        ),
    )
    plain = write_wheel(where, "plain", "2.0", {"plain.py": b"NAME = 'plain'\n"})
    return [hello, plain]


def _records(site: Path) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        with record.open(newline="") as f:
            out[record.parent.name] = [(path, digest, size) for path, digest, size in csv.reader(f)]
    return out


def _check_records(site: Path) -> None:
    """Every RECORD row is relative and hashes what is on disk."""
    for rows in _records(site).values():
        for path, digest, size in rows:
            assert not os.path.isabs(path) and "\\" not in path, path
            if digest:
                data = (site / path).read_bytes()
                assert (record_hash(data), str(len(data))) == (digest, size), path


@pytest.mark.skipif(host_platform().info.is_windows, reason="POSIX runtime")
def test_posix_install_relocates(tmp_path: Path, wheels: list[Path]) -> None:
    build = tmp_path / "build" / "runtime"
    subprocess.run(
        [sys.executable, "-m", "venv", "--copies", "--without-pip", str(build)], check=True
    )
    site = build / "lib" / f"python{PY}" / "site-packages"
    assert (build / "bin" / "python3").exists() and site.is_dir()

    installed = install_wheels(build, wheels, host_platform(), PY)

    sha = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    top = ("hello", "hello_mod")
    assert installed[0] == InstalledDist("hello", "1.0", wheels[0].name, sha, top)
    assert installed[1].name == "plain" and installed[1].top_level == ("plain",)
    assert (site / "hello-1.0.dist-info" / "INSTALLER").read_text() == "runenv\n"
    rows = _records(site)["hello-1.0.dist-info"]
    paths = {r[0] for r in rows}
    assert {"../../../bin/hello", "../../../bin/hello-gui", "../../../bin/hello-data"} <= paths
    assert "../../../share/hello/readme.txt" in paths
    _check_records(site)
    assert not list(build.rglob("*.pyc")), "nothing is compiled"
    for row in (r for rs in _records(site).values() for r in rs):
        data = (site / row[0]).read_bytes()
        assert str(build).encode() not in data, f"{row[0]} names the build directory"
    for script in ("hello", "hello-gui", "hello-data"):
        head = (build / "bin" / script).read_bytes().split(b"\n")[:3]
        assert head[0] == b"#!/bin/sh", script
        assert b"realpath" in head[1] and b"'python3'" in head[1], script
        assert os.access(build / "bin" / script, os.X_OK)
    assert (build / "share" / "hello" / "readme.txt").read_text() == "shared data\n"

    # Move the whole runtime elsewhere: scripts and imports still work.
    moved = tmp_path / "elsewhere" / "moved-runtime"
    moved.parent.mkdir()
    build.rename(moved)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    out = subprocess.run(
        [str(moved / "bin" / "hello")], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout == "hello from runenv\n"
    out = subprocess.run(
        [str(moved / "bin" / "hello-data")], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout == "data script says hello from runenv\n"
    out = subprocess.run(
        [
            str(moved / "bin" / "python3"),
            "-c",
            "import hello, hello_mod, plain; print(hello.__file__); print(plain.NAME)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    first, second = out.stdout.splitlines()
    assert Path(first).is_relative_to(moved) and second == "plain"


def test_windows_tree_has_relocatable_exe_launchers(tmp_path: Path, wheels: list[Path]) -> None:
    tree = tmp_path / "win"
    tree.mkdir()
    installed = install_wheels(tree, wheels, Platform.WINDOWS_X64, "3.12")

    assert [d.name for d in installed] == ["hello", "plain"]
    site = tree / "Lib" / "site-packages"
    assert (site / "hello" / "__init__.py").read_bytes() == HELLO_INIT
    assert (site / "plain.py").exists()
    assert (tree / "share" / "hello" / "readme.txt").exists()
    scripts = tree / "Scripts"
    assert sorted(p.name for p in scripts.iterdir()) == [
        "hello-data.exe",
        "hello-gui.exe",
        "hello.exe",
    ], "only .exe launchers: no POSIX script in a Windows tree"
    for name, python in [
        ("hello", b"python.exe"),
        ("hello-gui", b"pythonw.exe"),
        ("hello-data", b"python.exe"),
    ]:
        data = (scripts / f"{name}.exe").read_bytes()
        assert data[:2] == b"MZ", name
        shebang = b"#!<launcher_dir>\\..\\" + python + b"\n"
        assert shebang in data, name
        with zipfile.ZipFile(scripts / f"{name}.exe") as zf:
            main = zf.read("__main__.py")
            assert zf.getinfo("__main__.py").date_time == (1980, 1, 1, 0, 0, 0)
        assert (b"from hello import main" if name != "hello-data" else b"import hello") in main
        assert not main.startswith(b"#!")
    paths = {r[0] for r in _records(site)["hello-1.0.dist-info"]}
    assert {"../../Scripts/hello.exe", "../../Scripts/hello-data.exe"} <= paths
    _check_records(site)

    # The same install elsewhere gives the same bytes (the launchers' zips carry no clock).
    again = tmp_path / "win2"
    again.mkdir()
    install_wheels(again, wheels, Platform.WINDOWS_X64, "3.12")
    for exe in scripts.iterdir():
        assert exe.read_bytes() == (again / "Scripts" / exe.name).read_bytes()


def test_cross_posix_target_layout(tmp_path: Path, wheels: list[Path]) -> None:
    tree = tmp_path / "mac"
    tree.mkdir()
    install_wheels(tree, wheels, Platform.MACOSX_AARCH64, "3.12.10")
    assert (tree / "lib" / "python3.12" / "site-packages" / "hello" / "__init__.py").exists()
    assert (tree / "bin" / "hello").read_bytes().startswith(b"#!/bin/sh\n'''exec' ")


def test_broken_wheels_are_named(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    bad_hash = write_wheel(
        tmp_path,
        "badhash",
        "1.0",
        {"badhash.py": b"x = 1\n"},
        record_override={"badhash.py": record_hash(b"something else")},
    )
    with pytest.raises(BuildError, match=r"badhash-1\.0-py3-none-any\.whl.*badhash\.py"):
        install_wheels(tree, [bad_hash], Platform.LINUX_X64, "3.12")
    unrecorded = write_wheel(
        tmp_path, "sneaky", "1.0", {"sneaky.py": b""}, unrecorded={"sneaky_extra.py": b""}
    )
    with pytest.raises(BuildError, match=r"sneaky-1\.0-py3-none-any\.whl.*not mentioned in RECORD"):
        install_wheels(tree, [unrecorded], Platform.LINUX_X64, "3.12")
    garbage = tmp_path / "garbage-1.0-py3-none-any.whl"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(BuildError, match=r"garbage-1\.0-py3-none-any\.whl"):
        install_wheels(tree, [garbage], Platform.LINUX_X64, "3.12")
    escape = write_wheel(tmp_path, "escape", "1.0", {"../../evil.py": b""})
    with pytest.raises(BuildError, match=r"escape-1\.0-py3-none-any\.whl"):
        install_wheels(tree, [escape], Platform.LINUX_X64, "3.12")
    assert not (tmp_path / "evil.py").exists()


def test_clashing_wheels_install_in_order(tmp_path: Path) -> None:
    """Two wheels writing one path: the later one wins, every time (no thread race)."""
    first = write_wheel(tmp_path, "first", "1.0", {"ns/shared.txt": b"first\n", "a.py": b""})
    second = write_wheel(tmp_path, "second", "1.0", {"ns/shared.txt": b"second\n", "b.py": b""})
    others = [write_wheel(tmp_path, f"other{i}", "1.0", {f"o{i}.py": b""}) for i in range(4)]
    for attempt in range(3):
        tree = tmp_path / f"tree{attempt}"
        tree.mkdir()
        install_wheels(tree, [*others, first, second], Platform.LINUX_X64, "3.12")
        shared = tree / "lib" / "python3.12" / "site-packages" / "ns" / "shared.txt"
        assert shared.read_text() == "second\n"


def test_reinstall_replaces_the_old_distribution(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    old = write_wheel(tmp_path / "", "plain", "1.0", {"plain.py": b"V = 1\n", "plain_old.py": b""})
    install_wheels(tree, [old], Platform.LINUX_X64, "3.12")
    (tmp_path / "new").mkdir()
    new = write_wheel(tmp_path / "new", "plain", "2.0", {"plain.py": b"V = 2\n"})
    install_wheels(tree, [new], Platform.LINUX_X64, "3.12")
    site = tree / "lib" / "python3.12" / "site-packages"
    assert sorted(p.name for p in site.iterdir()) == ["plain-2.0.dist-info", "plain.py"]
    assert (site / "plain.py").read_text() == "V = 2\n"


def test_same_package_twice_is_an_error(tmp_path: Path) -> None:
    a = write_wheel(tmp_path, "dup", "1.0", {"dup.py": b""})
    (tmp_path / "b").mkdir()
    b = write_wheel(tmp_path / "b", "dup", "2.0", {"dup.py": b""})
    with pytest.raises(BuildError, match="same package"):
        install_wheels(tmp_path, [a, b], Platform.LINUX_X64, "3.12")


def test_top_level_names() -> None:
    paths = [
        "numpy/__init__.py",
        "numpy/core/_multiarray.cpython-312-x86_64-linux-gnu.so",
        "numpy.libs/libopenblas64_p-r0.so",
        "numpy-2.2.6.dist-info/RECORD",
        "six.py",
        "_cffi_backend.cpython-312-x86_64-linux-gnu.so",
        "win_ext.cp312-win_amd64.pyd",
        "distutils-precedence.pth",
        "__pycache__/six.cpython-312.pyc",
        "google/protobuf/__init__.py",
        "google/protobuf/message.py",
        "nsonly/mod.py",
        "nsonly/data.json",
        "hello-1.0.data/scripts/x",
        "typing_extensions.pyi",
        "not-an-identifier.py",
        "vendorlibs/libfoo.so",  # a shared library in a namespace folder: not a module
        "plainext.so",  # an extension without an ABI tag: a module
    ]
    assert top_level(paths) == (
        "_cffi_backend",
        "google.protobuf",
        "nsonly.mod",
        "numpy",
        "plainext",
        "six",
        "win_ext",
    )


def test_importable_names_what_records_and_copied_files_declare(
    tmp_path: Path, wheels: list[Path]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    install_wheels(tree, wheels, Platform.LINUX_X64, "3.12")
    site = "lib/python3.12/site-packages"
    (tree / site / "norecord-1.0.dist-info").mkdir()  # no RECORD: it declares nothing
    (tree / site / "stray.py").write_text("")  # in no RECORD and not copied: not imported
    (tree / site / "rtcopied.py").write_text("")
    copied = [f"{site}/rtcopied.py", "bin/tool.py"]
    assert importable(tree, site, copied) == ["hello", "hello_mod", "plain", "rtcopied"]
