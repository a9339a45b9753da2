"""`python -m runenv_catalogue venv DEST VARIANT -r FILE` on real runtimes, offline.

Two runtimes of the host, both real Python trees from the PBS stand-in, indexed through
`runenv.commands.catalogue.collect` into a `file://` catalogue:
- a wheelhouse runtime (the manifest the builder writes for that layout: `layout`, `bin_dir`,
  `wheelhouse`), its `packages/` holding wheels written here (a runenv-built one is used by
  tests/test_wheelhouse.py);
- an installed-tree runtime built by runenv from the loopback index (rtpure, rtdep).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.specifiers import Specifier
from packaging.version import Version as PackagingVersion
from runenv_catalogue import Catalogue, CatalogueError, RequirementsNotMet
from runenv_catalogue.__main__ import main as catalogue_main
from runenv_catalogue._markers import evaluate_marker
from runenv_catalogue._requirements import Installed, parse_requirement, unmet
from runenv_catalogue._venv import INCOMPLETE
from runenv_catalogue._versions import Version, specifier_contains

from runenv._cache import Cache
from runenv.commands.catalogue import catalogue_json, collect
from runenv.config.load import load_variant
from runenv.errors import BuildError
from runenv.pipeline.build import build_target
from runenv.pipeline.context import BuildOptions
from runenv.platforms import host_platform
from support.dists import write_wheel
from support.index import IndexServer
from support.pbs import PY_VERSION, PY_XY, standin
from support.project import make_project

HOST = host_platform()
WHEELS = f"{PY_VERSION}-venv-wheels"
TREE = f"{PY_VERSION}-venv-tree"
BIN = "Scripts" if HOST.info.is_windows else "bin"
pytestmark = pytest.mark.skipif(HOST.info.is_windows, reason="the stand-in tree is POSIX-shaped")


def _wheelhouse_manifest(archive: Path, sha256: str, wheels: list[Path]) -> dict[str, Any]:
    """The manifest of a wheelhouse runtime, with the fields the builder writes for it."""
    return {
        "schema_version": 1,
        "variant": WHEELS,
        "python_version": PY_VERSION,
        "platform": HOST.value,
        "archive": archive.name,
        "sha256": sha256,
        "size": archive.stat().st_size,
        "interpreter": "bin/python3",
        "site_packages": f"lib/python{PY_XY}/site-packages",
        # The runtime's own variables reach the steps: pip's bytecode lands under this one.
        "runtime_env": {"PYTHONPYCACHEPREFIX": str(archive.parent.parent / "pycache")},
        "packages": [
            {"name": w.name.split("-")[0], "version": w.name.split("-")[1]} for w in wheels
        ],
        "layout": "wheelhouse",
        "bin_dir": "bin",
        "wheelhouse": "packages",
    }


@pytest.fixture(scope="module")
def dist(
    tmp_path_factory: pytest.TempPathFactory, pbs: tuple[Path, str], pkg_server: IndexServer
) -> Path:
    """dist/ with both runtimes' archives and manifests."""
    work = tmp_path_factory.mktemp("venv-runtimes")
    out = work / "dist"
    tree = standin.host_tree(work / "wheelhouse-tree")
    wheels = [
        write_wheel(
            tree / "packages",
            "tinyblk",
            "1.0",
            {"tinyblk/__init__.py": b"from tinydep import VALUE\n"},
            metadata="Metadata-Version: 2.1\nName: tinyblk\nVersion: 1.0\n"
            "Requires-Dist: tinydep>=1\n",
        ),
        write_wheel(tree / "packages", "tinydep", "1.0", {"tinydep/__init__.py": b"VALUE = 7\n"}),
    ]
    archive = out / f"runenv-{WHEELS}-{HOST.value}.tar.gz"
    sha256 = standin.pack(tree, archive, arcroot=".")
    manifest = _wheelhouse_manifest(archive, sha256, wheels)
    (out / f"runenv-{WHEELS}-{HOST.value}.json").write_text(json.dumps(manifest, indent=2))

    project = work / "project"
    make_project(project, pbs, ["rtpure==1.0"], variant=TREE, platform=HOST.value, copy_files=False)
    options = BuildOptions(dist=out, pydist=work / "pydist", default_index=pkg_server.index_url)
    build_target(load_variant(project, TREE), HOST, options, Cache.default())
    return out


@pytest.fixture(scope="module")
def catalogue(dist: Path) -> Catalogue:
    """The catalogue of dist/ as `runenv catalogue` writes it (file:// URLs)."""
    return Catalogue(json.loads(catalogue_json(collect(dist, str(dist)), "1")))


@pytest.fixture(scope="module")
def absent_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a wheel that no runtime's wheelhouse has."""
    folder = tmp_path_factory.mktemp("elsewhere")
    write_wheel(folder, "absent", "1.0", {"absent/__init__.py": b""})
    return folder


@pytest.fixture
def pip_config_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, absent_wheel: Path
) -> Path:
    """The machine's own pip configuration, pointing at `absent_wheel` (returned): a find-links
    in the environment and in a pip.conf, and the index allowed. The catalogue shuts it out."""
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {absent_wheel}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_FIND_LINKS", str(absent_wheel))
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    return absent_wheel


@pytest.fixture
def venv_cli(
    capsys: pytest.CaptureFixture[str],
) -> Callable[[Catalogue, Path, Path, str, Path], tuple[int, str, str]]:
    """`venv DEST VARIANT -r FILE --cache-dir CACHE` in process (its venv and pip run as real
    subprocesses): (exit code, stdout, stderr)."""

    def call(
        catalogue: Catalogue, cache: Path, dest: Path, variant: str, requirements: Path
    ) -> tuple[int, str, str]:
        args = ["venv", str(dest), variant, "-r", str(requirements), "--cache-dir", str(cache)]
        code = catalogue_main(args, catalogue=catalogue)
        got = capsys.readouterr()
        return code, got.out, got.err

    return call


VenvCli = Callable[[Catalogue, Path, Path, str, Path], tuple[int, str, str]]


def requirements(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_in(venv: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv / BIN / "python", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )


# --- the catalogue carries the layout --------------------------------------------------------


def test_catalogue_entries_carry_layout_bin_dir_and_wheelhouse(catalogue: Catalogue) -> None:
    wheels = catalogue.entry(WHEELS)
    assert (wheels.layout, str(wheels.bin_dir), str(wheels.wheelhouse)) == (
        "wheelhouse",
        "bin",
        "packages",
    )
    tree = catalogue.entry(TREE)  # a manifest without the keys: an installed tree
    assert (tree.layout, tree.bin_dir, tree.wheelhouse) == ("installed", None, None)


# A wheelhouse runtime's layout fields set to what neither side may accept (None: the key left
# out): what runenv's `catalogue` command says of the manifest, and the catalogue package of the
# catalogue's entry.
BAD_LAYOUTS = {
    "flat": (
        {"layout": "flat"},
        "layout: 'flat' is not one of installed, wheelhouse",
        "layout 'flat' is not one of installed, wheelhouse",
    ),
    "bin-dir-up": (
        {"bin_dir": "../bin"},
        "bin_dir: '../bin' is not a relative path inside the runtime",
        "bin_dir: '../bin' has a '..' component",
    ),
    "bin-dir-up-inside": (
        {"bin_dir": "a/../../b"},
        "bin_dir: 'a/../../b' is not a relative path inside the runtime",
        "bin_dir: 'a/../../b' has a '..' component",
    ),
    "bin-dir-absolute": (
        {"bin_dir": "/usr/bin"},
        "bin_dir: '/usr/bin' is not a relative path",
        "bin_dir: '/usr/bin' is not a relative path",
    ),
    "wheelhouse-windows-absolute": (
        {"wheelhouse": "C:\\wheels"},
        "wheelhouse: 'C:\\\\wheels' is not a relative path",
        "wheelhouse: 'C:\\\\wheels' is not a relative path",
    ),
    "wheelhouse-absolute": (
        {"wheelhouse": "/srv/wheels"},
        "wheelhouse: '/srv/wheels' is not a relative path",
        "wheelhouse: '/srv/wheels' is not a relative path",
    ),
    "wheelhouse-missing": (
        {"wheelhouse": None},
        "wheelhouse: missing or not a str",
        "a wheelhouse runtime needs wheelhouse",
    ),
}


def changed(entry: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`entry` with `change` applied, a None value leaving its key out."""
    return {k: v for k, v in {**entry, **change}.items() if v is not None}


@pytest.mark.parametrize(
    ("change", "runenv_says", "_"), BAD_LAYOUTS.values(), ids=BAD_LAYOUTS.keys()
)
def test_bad_layout_fields_are_refused_by_runenv_catalogue(
    dist: Path, tmp_path: Path, change: dict[str, Any], runenv_says: str, _: str
) -> None:
    for path in dist.glob(f"runenv-{WHEELS}-*"):
        shutil.copy2(path, tmp_path / path.name)
    manifest_path = tmp_path / f"runenv-{WHEELS}-{HOST.value}.json"
    manifest_path.write_text(json.dumps(changed(json.loads(manifest_path.read_text()), change)))
    with pytest.raises(BuildError) as info:
        collect(tmp_path, "https://h/r")
    assert str(manifest_path) in str(info.value) and runenv_says in str(info.value)


@pytest.mark.parametrize(
    ("change", "_", "catalogue_says"), BAD_LAYOUTS.values(), ids=BAD_LAYOUTS.keys()
)
def test_bad_layout_fields_are_refused_by_the_catalogue_package(
    catalogue: Catalogue, dist: Path, change: dict[str, Any], _: str, catalogue_says: str
) -> None:
    data = json.loads(catalogue_json(collect(dist, str(dist)), "1"))
    entries = data["variants"][WHEELS]
    entries[HOST.value] = changed(entries[HOST.value], change)
    with pytest.raises(CatalogueError, match=re.escape(catalogue_says)):
        Catalogue(data)


# --- a wheelhouse runtime: the reference consumer's two steps ---------------------------------


@pytest.mark.usefixtures("pip_config_elsewhere")  # it must not matter
def test_wheelhouse_venv_installs_the_block_offline(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli
) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "block" / "venv"
    req = requirements(tmp_path, "tinyblk==1.0  # pulls tinydep from the wheelhouse too\n")
    code, out, err = venv_cli(catalogue, cache, dest, WHEELS, req)
    assert code == 0, err
    assert out.strip() == str(dest / BIN / "python") and err == ""
    assert not (dest / INCOMPLETE).exists()
    site = dest / "lib" / f"python{PY_XY}" / "site-packages"
    assert {"tinyblk", "tinydep", "pip"} <= {p.name for p in site.iterdir()}
    # pip compiled with the runtime's variables set: its bytecode is under their prefix
    prefix = Path(catalogue.entry(WHEELS).env["PYTHONPYCACHEPREFIX"])
    assert list(prefix.joinpath(*site.parts[1:], "tinyblk").glob("__init__.*.pyc"))
    assert not (site / "tinyblk" / "__pycache__").exists()
    shown = run_in(dest, "import sys, tinyblk; print(sys.prefix); print(tinyblk.VALUE)")
    assert shown.stdout.splitlines() == [str(dest), "7"], shown.stderr
    root = catalogue.entry(WHEELS).root(cache)
    assert list((root / "lib" / f"python{PY_XY}" / "site-packages").iterdir()) == []
    assert "include-system-site-packages = false" in (dest / "pyvenv.cfg").read_text()
    # The API does the same, and a block installs only what it names.
    other = catalogue.venv(
        WHEELS, tmp_path / "v2", requirements(tmp_path, "tinydep"), cache_dir=cache
    )
    assert other == tmp_path / "v2" / BIN / "python"
    assert run_in(tmp_path / "v2", "import tinyblk").returncode == 1
    assert run_in(tmp_path / "v2", "import tinydep").returncode == 0


def test_a_requirement_missing_from_the_wheelhouse_fails_with_pips_line(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli, pip_config_elsewhere: Path
) -> None:
    absent_wheel = pip_config_elsewhere  # what would make it pass if the configuration leaked
    cache, dest = tmp_path / "cache", tmp_path / "blocks" / "b1" / "venv"
    req = requirements(tmp_path, "tinyblk==1.0\nabsent==1.0\n")
    code, out, err = venv_cli(catalogue, cache, dest, WHEELS, req)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "ERROR: No matching distribution found for absent==1.0" in err
    assert f"nothing was left at {dest}" in err
    assert not (tmp_path / "blocks").exists()  # nor the parents it made

    # The same pip, with the machine's configuration left in, would have found it: the check
    # above is what shuts it out.
    good = tmp_path / "good"
    catalogue.venv(WHEELS, good, requirements(tmp_path, "tinyblk", "ok.txt"), cache_dir=cache)
    wheelhouse = catalogue.entry(WHEELS).root(cache) / "packages"
    leaked = subprocess.run(
        [
            good / BIN / "python",
            "-m",
            "pip",
            "install",
            "-r",
            req,
            "--no-index",
            "--find-links",
            f"{wheelhouse}/",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PIP_FIND_LINKS": str(absent_wheel)},
    )
    assert leaked.returncode == 0, leaked.stderr


def test_an_empty_dest_is_used_and_left_empty_on_failure(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli
) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    code, _, err = venv_cli(
        catalogue, tmp_path / "cache", dest, WHEELS, requirements(tmp_path, "nope\n")
    )
    assert code == 1 and "No matching distribution found for nope" in err
    assert dest.is_dir() and list(dest.iterdir()) == []


def test_dest_not_empty_is_refused_before_anything_is_installed(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli
) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "used"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    req = requirements(tmp_path, "tinyblk\n")
    code, out, err = venv_cli(catalogue, cache, dest, WHEELS, req)
    assert (code, out) == (2, "")
    assert err.strip().endswith(f"{dest} exists and is not empty: name a new or empty folder")
    assert len(err.strip().splitlines()) == 1
    assert [p.name for p in dest.iterdir()] == ["keep.txt"] and not cache.exists()
    (dest / "keep.txt").unlink()
    (dest / INCOMPLETE).write_text("")  # a run that was killed
    code, _, err = venv_cli(catalogue, cache, dest, WHEELS, req)
    assert code == 2 and "did not finish (killed?): remove it and run again" in err
    code, _, err = venv_cli(catalogue, cache, tmp_path / "v", WHEELS, tmp_path / "none.txt")
    assert code == 2 and "none.txt: no such requirements file" in err and not cache.exists()


# --- an installed-tree runtime: the venv sees its packages ------------------------------------


def test_installed_tree_venv_sees_the_runtimes_packages(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli
) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "venv"
    req = requirements(
        tmp_path,
        "RTPure == 1.0 \\\n  --hash=sha256:0000\n"
        "rtdep>=1,<2\n"
        "rtwin>=1; sys_platform == 'win32'  # only on Windows, which this is not\n",
    )
    code, out, err = venv_cli(catalogue, cache, dest, TREE, req)
    assert code == 0, err
    assert out.strip() == str(dest / BIN / "python")
    shown = run_in(dest, "import sys, rtpure, rtdep; print(sys.prefix); print(rtdep.VALUE)")
    assert shown.stdout.splitlines() == [str(dest), "rtdep 1.0"], shown.stderr
    assert "include-system-site-packages = true" in (dest / "pyvenv.cfg").read_text()
    assert list((dest / "lib" / f"python{PY_XY}" / "site-packages").iterdir()) == []
    assert not (dest / INCOMPLETE).exists()


def test_installed_tree_refuses_what_it_cannot_satisfy_and_names_it(
    catalogue: Catalogue, tmp_path: Path, venv_cli: VenvCli
) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "venv"
    req = requirements(tmp_path, "rtpure==1.0\nrtdep>=2\nnothere\n")
    code, out, err = venv_cli(catalogue, cache, dest, TREE, req)
    assert (code, out) == (1, "")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "rtdep>=2: the runtime has rtdep 1.0" in err
    assert "nothere: nothere is not in the runtime" in err and "rtpure" not in err
    assert f"nothing was made at {dest}" in err and not dest.exists()
    with pytest.raises(RequirementsNotMet, match="rtdep>=2"):
        catalogue.venv(TREE, dest, req, cache_dir=cache)

    for line, shown in [
        ("-e ./src", "-e: options, includes and -e lines cannot be checked"),
        ("--index-url https://example.invalid/simple", "--index-url: options"),
        ("-r other.txt", "-r: options"),
        ("rtpure @ https://example.invalid/rtpure-1.0-py3-none-any.whl", "a URL requirement"),
        ("./rtpure-1.0-py3-none-any.whl", "not a requirement"),
        ("rtpure >= one", "bad version specifier"),
    ]:
        bad = requirements(tmp_path, f"rtdep\n{line}\n", "bad.txt")
        code, _, err = venv_cli(catalogue, cache, dest, TREE, bad)
        assert code == 2, (line, err)
        assert f"{bad}:2:" in err and shown in err and len(err.strip().splitlines()) == 1
        assert not dest.exists()


# --- the stdlib requirements checker against packaging ----------------------------------------

VERSIONS = [
    "1.0", "1.0.0", "1.0a1", "1.0rc2", "1.0.post1", "1.0.post2", "1.0.dev0", "1.0a1.dev2",
    "1.0rc2.post1", "1.0+local.7", "1.0+abc", "1.0.post1+x", "1.0a1+x", "1!0.5", "2.0", "1.1",
    "1.1.5", "0.9", "1.0.1", "2.0.0b1", "1.2.3.4", "1.0.post1.dev3", "1.0-1", "1.0_rc_3", "v1.2",
]  # fmt: skip
SPECIFIERS = [
    "==1.0", "==1.0.*", "==1.*", "!=1.0", "!=1.0.*", "<=1.0", ">=1.0", "<1.0", ">1.0", "~=1.0",
    "~=1.0.0", "~=1.1", "<2.0", ">1.0a1", "<1.0rc1", "===1.0", "==1.0+local.7", ">=1!0",
    "<1.0.post1", ">1.0.post0", "~=1!0.4", "==0.9.0", "~=1.0rc1", "<1.0.post1", ">1.0.post1",
    ">1.0rc1", "<1.0rc2", ">=1.0.dev0", "<1.0.1.dev0",
]  # fmt: skip
MARKER_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "5.15.0-91-generic",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.7",
    "python_version": "3.11",
    "sys_platform": "linux",
}
MARKERS = [
    'sys_platform == "win32"',
    'python_version >= "3.8" and sys_platform != "win32"',
    '(os_name == "nt" or python_version < "3.12") and platform_machine in "x86_64 aarch64"',
    '"linux" in sys_platform',
    'platform_machine not in "arm64 aarch64"',
    'extra == "Socks"',
    'extra == "socks" or python_full_version < "3.9"',
    'platform_release >= "5"',
    "implementation_name == 'cpython'",
    'python_version ~= "3.10"',
    'python_full_version == "3.11.*"',
    'python_version > "3.11" or platform_system == "Linux" and python_version <= "3.7"',
]


def test_versions_and_specifiers_agree_with_packaging() -> None:
    for v, s in itertools.product(VERSIONS, SPECIFIERS):
        spec = Specifier(s)
        expected = spec.contains(PackagingVersion(v), prereleases=True)
        assert specifier_contains(spec.operator, spec.version, Version.parse(v)) == expected, (
            v,
            s,
        )
    for a, b in itertools.product(VERSIONS, VERSIONS):
        ours, theirs = (
            (Version.parse(a), Version.parse(b)),
            (PackagingVersion(a), PackagingVersion(b)),
        )
        assert (ours[0] < ours[1], ours[0] == ours[1]) == (
            theirs[0] < theirs[1],
            theirs[0] == theirs[1],
        ), (a, b)
        assert str(ours[0]) == str(theirs[0])


def test_markers_agree_with_packaging() -> None:
    for marker, extra in itertools.product(MARKERS, ("", "socks")):
        expected = Marker(marker).evaluate({**MARKER_ENV, "extra": extra})
        assert evaluate_marker(marker, MARKER_ENV, extra) == expected, (marker, extra)


def test_unmet_follows_dependencies_and_requested_extras() -> None:
    needs = ("lib>=1", 'fast>=2; extra == "speed"', "winonly; sys_platform == 'win32'")
    installed = {
        "app": Installed("App", "1.0", needs, ("speed",)),
        "lib": Installed("lib", "1.5"),
        "fast": Installed("fast", "1.0"),
    }  # fmt: skip
    assert unmet([parse_requirement("app")], installed, MARKER_ENV) == []
    assert unmet([parse_requirement("app[nosuch]")], installed, MARKER_ENV) == []  # as pip
    assert unmet([parse_requirement("app[speed]")], installed, MARKER_ENV) == [
        'fast>=2; extra == "speed": the runtime has fast 1.0 (needed by App 1.0)'
    ]
    del installed["lib"]
    assert unmet([parse_requirement("App>=1")], installed, MARKER_ENV) == [
        "lib>=1: lib is not in the runtime (needed by App 1.0)"
    ]
