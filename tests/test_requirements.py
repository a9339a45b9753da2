"""`runenv requirements`: real locks made by uv against a loopback index of wheels built here,
then a block's requirements file checked against each platform's wheelhouse, offline.

The variant locks `rqgpu` (skipped on macOS and Windows, like the reference's Linux-only
`cudf-cu12`), which alone pulls in `rqarrow` (its `pyarrow`); `rqbase` with an extra `fast`
and a Windows-only dependency; and `rqsrc`, an sdist locked without its dependencies (noDeps)
whose PKG-INFO declares a macOS-only one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.cli import main
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.fetch.wheels import download_all, select_for_plan
from runenv.lock.pylock import read_lock
from runenv.lock.resolve import lock_path
from runenv.platforms import ALL_PLATFORMS, Platform
from runenv.sources.cross import host_pure_wheels
from support.dists import write_sdist, write_wheel
from support.index import Index, IndexServer, write_simple_pages
from support.project import write_variant
from support.reference import build_reference_index, write_reference_checkout

VARIANT = "3.12.10-rq"
SKIPPED = {"macosx-x64", "macosx-aarch64", "windows-x64"}  # where rqgpu is skipped
CONFIG = """\
    [packages]
    dependencies = ["rqgpu==1.0", "rqbase==1.0", "rqsrc==1.0"]
    noDeps = ["rqsrc"]
    [packages.skip.rqgpu]
    macosx-x64 = "no CUDA on macOS"
    macosx-aarch64 = "no CUDA on macOS"
    windows-x64 = "no CUDA wheels for Windows"
    """


def _metadata(
    name: str, version: str, requires: Sequence[str] = (), meta: str = "2.1", extras: str = ""
) -> str:
    lines = [f"Metadata-Version: {meta}", f"Name: {name}", f"Version: {version}"]
    lines += [f"Provides-Extra: {e}" for e in extras.split()]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def _wheel(
    files: Path, name: str, version: str, requires: Sequence[str] = (), extras: str = ""
) -> None:
    body = {f"{name}/__init__.py": f"VERSION = {version!r}\n".encode()}
    meta = _metadata(name, version, requires, extras=extras)
    write_wheel(files, name, version, body, metadata=meta)


@pytest.fixture(scope="module")
def server(pkg_index: Index, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("rq-index")
    files = root / "files"
    files.mkdir()
    for backend in pkg_index.files.glob("*.whl"):  # setuptools & co, for source builds here
        if backend.name.startswith(("setuptools-", "wheel-", "packaging-")):
            shutil.copy(backend, files)
    _wheel(files, "rqgpu", "1.0", ["rqarrow>=1,<2"])
    _wheel(files, "rqarrow", "1.0")
    _wheel(files, "rqarrow", "2.0")
    _wheel(
        files,
        "rqbase",
        "1.0",
        ['rqwin>=1; sys_platform == "win32"', 'rqfast>=1; extra == "fast"'],
        extras="fast",
    )
    _wheel(files, "rqfast", "1.0")
    _wheel(files, "rqwin", "1.0")
    # Static metadata both ways: pyproject for uv's resolution, PKG-INFO 2.2 for runenv.
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "rqsrc"\nversion = "1.0"\n'
        "dependencies = ['rqmac>=1; sys_platform == \"darwin\"']\n"
    )
    pkg_info = _metadata("rqsrc", "1.0", ['rqmac>=1; sys_platform == "darwin"'], meta="2.2")
    write_sdist(
        files,
        "rqsrc",
        "1.0",
        {
            "pyproject.toml": pyproject.encode(),
            "PKG-INFO": pkg_info.encode(),
            "rqsrc/__init__.py": b"",
        },
    )
    # Its PKG-INFO (2.1) does not vouch for its Requires-Dist: only the built wheel tells.
    pyproject = pyproject.replace('"rqsrc"', '"rqbuilt"')
    write_sdist(
        files,
        "rqbuilt",
        "1.0",
        {
            "pyproject.toml": pyproject.encode(),
            "PKG-INFO": _metadata("rqbuilt", "1.0").encode(),
            "rqbuilt/__init__.py": b"",
        },
    )
    write_simple_pages(root)
    with IndexServer(root) as srv:
        yield srv


def make_variant(root: Path, server: IndexServer, config: str = CONFIG) -> Path:
    """A project with the variant, locked by uv for all five platforms from the loopback index."""
    write_variant(root, VARIANT, config)
    args = ["-q", "--project", str(root), "lock", VARIANT, "--platform", "all"]
    assert main([*args, "--index-url", server.index_url]) == 0
    return root


@pytest.fixture(scope="module")
def project(server: IndexServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_variant(tmp_path_factory.mktemp("rq-project"), server)


@pytest.fixture(autouse=True)
def cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: IndexServer) -> Path:
    """Each test's own runenv cache, empty until it downloads into it; the index the locks
    were made from as the default one, so they count as fresh."""
    path = tmp_path / "runenv-cache"
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(path))
    monkeypatch.setenv("RUNENV_INDEX_URL", server.index_url)
    return path


def fill_cache(project: Path) -> None:
    """Download every platform's selected files into runenv's cache, as a build does."""
    vc = load_variant(project, VARIANT)
    artifacts = []
    for platform in vc.platforms:
        plan = make_plan(vc, platform)
        artifacts += select_for_plan(read_lock(lock_path(vc.folder, platform)), plan).artifacts
    download_all(artifacts, Cache.default(), parallel=False)


def run(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str
) -> tuple[int, dict[str, str], str]:
    """`runenv requirements` on a file holding `text`: exit code, line per platform, stderr."""
    capsys.readouterr()  # what came before (the lock's lines)
    req = project / "blocks" / "requirements.txt"
    req.parent.mkdir(exist_ok=True)
    req.write_text(text)
    code = main(["--project", str(project), "requirements", VARIANT, "-r", str(req), *args])
    out, err = capsys.readouterr()
    lines = {}
    for line in out.splitlines():
        key, _, rest = line.partition(": ")
        lines[key] = rest
    return code, lines, err


def test_a_package_only_a_skipped_dependency_brings_is_missing_on_exactly_those_platforms(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Comments, blank lines and a continuation are pip's file format, and fine.
    text = "# the block's needs\n\nrqarrow \\\n   >=1.0  # arrow tables\nrqbase\n"
    code, lines, err = run(project, capsys, text)
    assert code == 1, err
    assert set(lines) == {p.value for p in ALL_PLATFORMS}
    for platform, line in lines.items():
        if platform in SKIPPED:
            assert line.startswith("rqarrow: not in the runtime's packages ("), line
            assert "not in the variant's lock for " + platform in line
            assert "have it on linux-x64 (1.0), linux-aarch64 (1.0)" in line
            assert line.endswith("requirements.txt:3)"), line
            assert "rqbase" not in line
        else:
            assert line.startswith("ok"), line

    # One platform: one line, and the exit code of that platform alone.
    code, lines, _ = run(project, capsys, text, "--platform", "linux-x64")
    assert code == 0 and list(lines) == ["linux-x64"]
    code, lines, _ = run(project, capsys, text, "--platform", "windows-x64")
    assert code == 1 and lines["windows-x64"].startswith("rqarrow: not in the runtime's packages")

    req = project / "blocks" / "requirements.txt"
    assert main(["--project", str(project), "requirements", VARIANT, "-r", str(req), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["variant"] == VARIANT
    status = {p["platform"]: p["status"] for p in data["platforms"]}
    assert status == {p.value: "fails" if p.value in SKIPPED else "ok" for p in ALL_PLATFORMS}
    mac = next(p for p in data["platforms"] if p["platform"] == "macosx-aarch64")
    assert [(p["kind"], p["package"], p["line"]) for p in mac["problems"]] == [
        ("missing", "rqarrow", 3)
    ]


def test_the_reference_case_from_an_imported_reference_checkout(
    pkg_index: Index,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The reference's shared config skips cudf-cu12 (here rtcudf, which alone brings rtarrow)
    # on macOS, Windows and linux-aarch64; a block that needs the arrow package fails there.
    skip = {
        "macosx-x64": "CUDA packages not supported on macOS",
        "macosx-aarch64": "CUDA packages not supported on macOS",
        "windows-x64": "CUDA packages not supported on Windows",
        "linux-aarch64": "CUDA packages not supported on Linux ARM64",
    }
    shared = {"registries": {"additional": []}, "packages": {"skip": {"rtcudf": skip}}}
    variants = {"3.12.10-ref": {"packages": {"dependencies": ["rtpure==1.0", "rtcudf==1.0"]}}}
    checkout = write_reference_checkout(tmp_path / "checkout", shared, variants)
    project = tmp_path / "project"
    assert main(["-q", "--project", str(project), "import", str(checkout)]) == 0
    index = build_reference_index(tmp_path / "ref-index", pkg_index.root)
    with IndexServer(index) as ref:
        lock = ["-q", "--project", str(project), "lock", "3.12.10-ref", "--platform", "all"]
        assert main([*lock, "--index-url", ref.index_url]) == 0
        monkeypatch.setenv("RUNENV_INDEX_URL", ref.index_url)  # the locks' index: fresh
        req = tmp_path / "block" / "requirements.txt"
        req.parent.mkdir()
        req.write_text("rtpure>=1\nrtarrow>=1.0\n")
        capsys.readouterr()
        args = ["--project", str(project), "requirements", "3.12.10-ref", "-r", str(req)]
        assert main(args) == 1
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {p.value for p in ALL_PLATFORMS}
    assert lines.pop("linux-x64").startswith("ok"), lines
    for platform, line in lines.items():
        assert line == (
            "rtarrow: not in the runtime's packages (not in the variant's lock for "
            f"{platform}; the runtime's packages have it on linux-x64 (1.0): list it in its "
            f"dependencies and run `runenv lock 3.12.10-ref --platform {platform}`; "
            "requirements.txt:2)"
        )


def test_a_pin_the_wheelhouse_does_not_satisfy_is_named(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = run(project, capsys, "rqbase>=1,<2\nrqarrow==2.0\n", "--platform", "linux-x64")
    assert code == 1
    assert lines["linux-x64"] == (
        "rqarrow: the runtime's packages have 1.0, which does not satisfy rqarrow==2.0 "
        "(requirements.txt:2)"
    )
    code, lines, _ = run(
        project, capsys, "rqarrow~=1.0\nRQBase==1.0.0\n", "--platform", "linux-x64"
    )
    assert code == 0, lines


def test_what_python_m_venv_installs_is_there_unless_pinned(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python 3.12 venvs get pip (setuptools no more): a block may name it without a version.
    code, lines, _ = run(project, capsys, "pip\n", "--platform", "linux-x64")
    assert (code, lines) == (0, {"linux-x64": "ok"})
    code, lines, _ = run(project, capsys, "pip==24.0\nsetuptools\n", "--platform", "linux-x64")
    assert code == 1
    assert lines["linux-x64"].startswith(
        "pip: cannot tell offline whether the venv's pip (from the runtime's ensurepip) "
        "satisfies pip==24.0"
    )
    assert "; setuptools: not in the runtime's packages" in lines["linux-x64"]


def test_markers_are_evaluated_for_each_target(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        'rqwin; sys_platform == "win32"\n'  # locked for Windows only (rqbase's marker)
        'rqnone>=1; platform_system == "Darwin" and platform_machine == "arm64"\n'
        'rqgone; python_version < "3"\n'
        "rqarrow; os_name == 'posix' and platform_machine != 'x86_64'\n"
    )
    code, lines, _ = run(project, capsys, text)
    assert code == 1
    assert lines["windows-x64"].startswith("ok (the dependencies of rqwin ")
    assert lines["linux-x64"].startswith("ok") and lines["linux-aarch64"].startswith("ok")
    assert lines["macosx-x64"] == "ok"  # x86_64: the rqarrow line does not apply there
    mac = lines["macosx-aarch64"]
    assert mac.startswith("rqnone: not in the runtime's packages"), mac
    assert "; rqarrow: not in the runtime's packages" in mac and "rqgone" not in mac


def test_extras_and_dependencies_need_requires_dist_which_comes_from_the_cache(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing in runenv's cache: the extra cannot be checked, and the line says so.
    code, lines, _ = run(project, capsys, "rqbase[fast]\n", "--platform", "linux-x64")
    assert code == 1
    line = lines["linux-x64"]
    assert line.startswith("rqbase[fast]: cannot tell offline"), line
    assert "rqbase-1.0-py3-none-any.whl is not in runenv's cache" in line
    code, lines, _ = run(project, capsys, "rqbase\n", "--platform", "linux-x64")
    assert code == 0 and "dependencies of rqbase are left to the lock" in lines["linux-x64"]
    code, lines, _ = run(project, capsys, "rqsrc[extra]\n", "--platform", "linux-x64")
    assert code == 1 and "a wheel built from rqsrc-1.0.tar.gz is not in" in lines["linux-x64"]

    fill_cache(project)
    code, lines, _ = run(project, capsys, "rqbase[fast]\n")
    assert code == 1
    for line in lines.values():
        assert line.startswith("rqfast: not in the runtime's packages"), line
        assert "required by rqbase 1.0[fast], requirements.txt:1)" in line
    # Without the extra it fits, its Windows-only dependency included (locked for Windows).
    code, lines, _ = run(project, capsys, "rqbase\n")
    assert code == 0 and set(lines.values()) == {"ok"}, lines

    # The sdist's PKG-INFO (static Requires-Dist) tells what noDeps left out of the lock: a
    # dependency for macOS only, missing there alone.
    code, lines, _ = run(project, capsys, "rqsrc\n")
    assert code == 1
    for platform, line in lines.items():
        if platform.startswith("macosx"):
            assert line.startswith("rqmac: not in the runtime's packages"), line
            assert "required by rqsrc 1.0, requirements.txt:1" in line
        else:
            assert line == "ok", line


def test_requires_dist_of_a_wheel_built_from_source_comes_from_the_built_wheel(
    server: IndexServer, pkg_index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not pkg_index.has_setuptools:
        pytest.skip("no setuptools wheel for the source build (see support.index)")
    config = '[packages]\ndependencies = ["rqbuilt==1.0"]\nnoDeps = ["rqbuilt"]\n'
    root = make_variant(tmp_path / "p", server, config)
    fill_cache(root)  # the sdist alone: its PKG-INFO 2.1 does not count
    code, lines, _ = run(root, capsys, "rqbuilt\n")
    assert code == 0
    assert set(lines.values()) == {
        "ok (the dependencies of rqbuilt are left to the lock: their Requires-Dist is not in "
        "the lock, nor their wheels in runenv's cache)"
    }, lines

    # Built as a cross build builds it: on this host, pure, kept once for every platform.
    vc = load_variant(root, VARIANT)
    plan = make_plan(vc, Platform.MACOSX_AARCH64)
    sources = select_for_plan(read_lock(lock_path(vc.folder, plan.platform)), plan).artifacts
    files = download_all(sources, Cache.default(), parallel=False)
    host_pure_wheels(sources, files, plan, Cache.default(), default_index=server.index_url)
    code, lines, _ = run(root, capsys, "rqbuilt\n")
    assert code == 1
    for platform, line in lines.items():
        if platform.startswith("macosx"):
            assert line == (
                "rqmac: not in the runtime's packages (not in the variant's lock for "
                f"{platform}: list it in its dependencies and run `runenv lock {VARIANT} "
                f"--platform {platform}`; required by rqbuilt 1.0, requirements.txt:1)"
            )
        else:
            assert line == "ok", line


@pytest.mark.parametrize(
    "text",
    [
        "rqarrow\nrqbase>=1\n",
        "rqarrow==2.0\n",
        "rqbase[fast]\n",
        "rqgpu\nrqbase ; sys_platform == 'linux'\n",
        "rqwin\n",
        "rqwin ; sys_platform == 'win32'\n",
        "rqarrow>1.0\n",
    ],
)
def test_the_verdict_for_this_host_is_pips_own(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """pip itself, offline from a folder holding the linux-x64 wheelhouse, agrees: it installs
    exactly when runenv says ok (this host is linux-x64 as the markers here go)."""
    fill_cache(project)
    vc = load_variant(project, VARIANT)
    plan = make_plan(vc, Platform.LINUX_X64)
    selection = select_for_plan(read_lock(lock_path(vc.folder, plan.platform)), plan)
    house = tmp_path / "packages"
    house.mkdir()
    for path in download_all(selection.artifacts, Cache.default(), parallel=False).values():
        if path.name.endswith(".whl"):  # rqsrc's sdist: a build would carry its wheel
            shutil.copy(path, house)
    code, lines, _ = run(project, capsys, text, "--platform", "linux-x64")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    req = project / "blocks" / "requirements.txt"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--no-index", "--find-links", str(house), "--disable-pip-version-check",
         "-r", str(req)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (code == 0) == (pip.returncode == 0), (lines, pip.stdout, pip.stderr)


def test_extra_locked_with_the_variant_fits(
    server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CONFIG.replace('"rqbase==1.0"', '"rqbase[fast]==1.0"')
    root = make_variant(tmp_path / "p", server, config)
    fill_cache(root)
    code, lines, _ = run(root, capsys, "rqbase[fast]>=1\nrqfast==1.0\n")
    assert code == 0 and set(lines.values()) == {"ok"}, lines


def test_an_override_over_a_dependency_range_fails_the_package_that_declares_it(
    server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reference pins pyarrow over cudf-cu12's range; pip then refuses cudf-cu12.
    config = CONFIG + '    [packages.overrides]\n    rqarrow = "2.0"\n'
    root = make_variant(tmp_path / "p", server, config)
    fill_cache(root)
    code, lines, _ = run(root, capsys, "rqgpu\n", "--platform", "linux-x64")
    assert code == 1
    assert lines["linux-x64"] == (
        "rqarrow: the runtime's packages have 2.0, which does not satisfy rqarrow<2,>=1 "
        "(required by rqgpu 1.0, requirements.txt:1)"
    )


def test_packages_the_resolution_policy_lets_go_are_named_with_the_reason(
    server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CONFIG + "    [packages.resolution]\n    strictMissing = false\n"
    root = make_variant(tmp_path / "p", server, config)
    code, lines, _ = run(root, capsys, "rqsrc\n", "--platform", "linux-x64")
    assert code == 1
    line = lines["linux-x64"]
    assert line.startswith("rqsrc: not in the runtime's packages (no wheel for linux-x64"), line
    assert "packages.resolution does not allow building it from source" in line

    # strictMissing: the platform has no runtime at all, and the line says why.
    toml = root / "versions" / VARIANT / "config.toml"
    toml.write_text(toml.read_text().replace("strictMissing = false", "strictMissing = true"))
    code, lines, _ = run(root, capsys, "rqbase\n", "--platform", "linux-x64")
    assert code == 1
    assert lines["linux-x64"].startswith("no runtime to install into: "), lines
    assert "strictMissing" in lines["linux-x64"] and "rqsrc" in lines["linux-x64"]


def _snapshot(*roots: Path) -> dict[str, bytes | None]:
    seen: dict[str, bytes | None] = {}
    for root in roots:
        for dirpath, _dirs, filenames in os.walk(root):
            seen[dirpath] = None
            for name in filenames:
                path = Path(dirpath) / name
                seen[str(path)] = path.read_bytes()
    return seen


@pytest.mark.parametrize(
    ("text", "number", "words"),
    [
        ("rqarrow\n--index-url https://pypi.org/simple\n", 2, "the option --index-url"),
        ("-f /opt/wheels\nrqarrow\n", 1, "the option -f"),
        ("rqarrow\n# fine\n\n--find-links=/opt/wheels\n", 4, "the option --find-links"),
        ("rqarrow==1.0 \\\n  --hash=sha256:00\n", 1, "the option --hash (rqarrow==1.0"),
        ("-e ./src/block\n", 1, "an editable requirement"),
        ("--editable=git+https://example.com/x.git\n", 1, "an editable requirement"),
        ("# base\n-r base.txt\n", 2, "an include (-r base.txt)"),
        ("--requirement other.txt\n", 1, "an include"),
        ("-c constraints.txt\n", 1, "a constraints include"),
        ("rqarrow @ https://example.com/rqarrow-1.0-py3-none-any.whl\n", 1, "installs from a URL"),
        ("https://example.com/rqarrow-1.0-py3-none-any.whl\n", 1, "is a URL or a path"),
        ("./vendor/rqarrow\n", 1, "is a URL or a path"),
        ("rqarrow\nrqarrow >>= 1\n", 2, "is not a requirement"),
    ],
)
def test_a_file_a_block_cannot_install_offline_is_one_line_and_exit_2(
    project: Path,
    cold_cache: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    number: int,
    words: str,
) -> None:
    req = project / "blocks" / "bad.txt"
    req.parent.mkdir(exist_ok=True)
    req.write_text(text)
    before = _snapshot(project, cold_cache.parent)
    code = main(["--project", str(project), "requirements", VARIANT, "-r", str(req)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"runenv: error: {req}:{number}: "), err
    assert words in err, err
    assert _snapshot(project, cold_cache.parent) == before


def test_a_platform_without_a_lock_names_the_lock_to_run(
    server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_variant(tmp_path / "p", server)
    lock_path(root / "versions" / VARIANT, Platform.WINDOWS_X64).unlink()
    (root / "blocks").mkdir()
    (root / "blocks" / "requirements.txt").write_text("rqarrow\n")  # as run() writes it
    before = _snapshot(root)
    code, lines, err = run(root, capsys, "rqarrow\n")
    assert code == 2 and lines == {}
    assert err.strip() == (
        f"runenv: error: {VARIANT} has no lock for windows-x64: "
        f"run `runenv lock {VARIANT} --platform windows-x64`"
    )
    # Asking for a platform that has its lock works.
    code, lines, _ = run(root, capsys, "rqarrow\n", "--platform", "linux-x64")
    assert code == 0 and list(lines) == ["linux-x64"]
    assert _snapshot(root) == before


def test_a_lock_older_than_the_config_is_said_on_each_line(
    server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_variant(tmp_path / "p", server)
    toml = root / "versions" / VARIANT / "config.toml"
    toml.write_text(toml.read_text().replace('"rqsrc==1.0"', '"rqsrc==1.0", "rqfast==1.0"'))
    code, lines, _ = run(root, capsys, "rqfast\n", "--platform", "linux-x64")
    assert code == 1
    line = lines["linux-x64"]
    assert line.startswith("rqfast: not in the runtime's packages"), line
    assert line.endswith(
        "[pylock.linux-x64.toml is out of date with the config (or was made from another "
        f"index): run `runenv lock {VARIANT} --platform linux-x64` for what a build would carry]"
    )
    assert main(["-q", "--project", str(root), "lock", VARIANT, "--platform", "linux-x64"]) == 0
    code, lines, _ = run(root, capsys, "rqfast\n", "--platform", "linux-x64")
    assert code == 0 and lines["linux-x64"].startswith("ok"), lines


def test_bad_usage_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--project", str(project), "requirements", VARIANT]
    assert main([*args, "-r", str(project / "nope.txt")]) == 2
    assert "nope.txt: cannot read the requirements file" in capsys.readouterr().err
    (project / "ok.txt").write_text("rqarrow\n")
    assert main(args) == 2  # no -r
    assert main([*args, "-r", str(project / "ok.txt"), "--platform", "solaris"]) == 2
    capsys.readouterr()
