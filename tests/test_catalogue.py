"""The catalogue end to end, without the internet: two variants built for the host with the
loopback PBS archive, their catalogue wheel installed into a fresh venv, and runtimes installed
from it (verified, once, concurrently), run with their environment; bad inputs refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from runenv_catalogue import (
    Catalogue,
    ChecksumMismatch,
    DownloadError,
    UnsafeArchiveError,
)
from runenv_catalogue.__main__ import main as catalogue_main

from runenv.commands.catalogue import (
    archive_url,
    build_catalogue,
    collect,
    default_version,
    find_manifests,
)
from runenv.errors import BuildError, ChecksumError, UsageError
from runenv.platforms import Platform, host_platform
from support.http import LoopbackServer, status, wrong_bytes
from support.index import IndexServer
from support.pbs import PY_VERSION
from support.project import build_for_host, make_project

REPO = Path(__file__).resolve().parents[1]


HOST = host_platform()
OTHER = next(p for p in Platform if p is not HOST)
VAR_A = f"{PY_VERSION}-cat-a"
VAR_B = f"{PY_VERSION}-cat-b"
SCRIPTS = "Scripts" if HOST.info.is_windows else "bin"


def _write_variant(
    root: Path, variant: str, pbs: tuple[Path, str], deps: list[str], env: dict[str, str]
) -> None:
    env_toml = ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items())
    extra = f"[runtime]\nenv = {{ {env_toml} }}\n"
    make_project(
        root, pbs, deps, variant=variant, platform=HOST.value, extra=extra, copy_files=False
    )


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, pbs: tuple[Path, str], pkg_server: IndexServer
) -> Path:
    """A project with two variants built for the host; returns the project (dist/ inside)."""
    root = tmp_path_factory.mktemp("catproj")
    _write_variant(root, VAR_A, pbs, ["rtpure==1.0"], {"X": "from-a", "RT_FLAVOUR": "a"})
    _write_variant(root, VAR_B, pbs, ["rtdep==1.0"], {"X": "from-b"})
    shutil.copytree(
        REPO / "catalogue", root / "catalogue", ignore=shutil.ignore_patterns("__pycache__", ".*")
    )
    for variant in (VAR_A, VAR_B):
        build_for_host(root, variant, pkg_server.index_url)
    return root


@pytest.fixture(scope="module")
def wheel(built: Path) -> Path:
    return build_catalogue(
        built / "dist", str(built / "dist"), version="1.0", project=built, out=built / "wheels"
    )


@pytest.fixture(scope="module")
def venv_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with nothing but the catalogue wheel (installed without an index)."""
    venv = tmp_path_factory.mktemp("consumer") / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / ("Scripts/python.exe" if HOST.info.is_windows else "bin/python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", wheel], check=True)
    return python


def consumer(python: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNENV_CATALOGUE_CACHE": str(cache)}
    return subprocess.run(
        [python, "-m", "runenv_catalogue", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def manifest(built: Path, variant: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (built / "dist" / f"runenv-{variant}-{HOST.value}.json").read_text()
    )
    return data


def archive(built: Path, variant: str) -> Path:
    return built / "dist" / f"runenv-{variant}-{HOST.value}.tar.gz"


# --- the catalogue's content -----------------------------------------------------------------


def test_catalogue_json_indexes_every_archive(built: Path, wheel: Path) -> None:
    assert wheel.name == "runenv_catalogue-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read("runenv_catalogue/catalogue.json"))
        names = zf.namelist()
    assert not [n for n in names if n.endswith((".pyc", ".lock"))]
    assert data["schema_version"] == 1 and data["version"] == "1.0"
    assert sorted(data["variants"]) == [VAR_A, VAR_B]
    for variant, pkg in ((VAR_A, "rtpure"), (VAR_B, "rtdep")):
        m = manifest(built, variant)
        e = data["variants"][variant][HOST.value]
        assert e["url"] == archive(built, variant).as_uri()
        assert (e["sha256"], e["size"]) == (m["sha256"], m["size"])
        assert e["interpreter"] == m["interpreter"] and e["site_packages"] == m["site_packages"]
        assert e["python_version"] == PY_VERSION and e["scripts"] == SCRIPTS
        assert pkg in {p["name"] for p in e["packages"]}
        assert e["env"] == m["runtime_env"]
    assert data["variants"][VAR_A][HOST.value]["env"] == {"RT_FLAVOUR": "a", "X": "from-a"}


def test_same_manifests_and_version_give_the_same_wheel_bytes(built: Path, tmp_path: Path) -> None:
    # The same base URL with and without its trailing slash.
    one, two = (
        build_catalogue(built / "dist", url, version="2.0", project=built, out=tmp_path / name)
        for url, name in (
            ("https://example.invalid/r", "one"),
            ("https://example.invalid/r/", "two"),
        )
    )
    assert one.read_bytes() == two.read_bytes()
    default = build_catalogue(
        built / "dist",
        "https://example.invalid/r",
        version=None,
        project=built,
        out=tmp_path / "three",
    )
    match = re.fullmatch(r"runenv_catalogue-(0\+[0-9a-f]{12})-py3-none-any\.whl", default.name)
    assert match, default.name
    assert match.group(1) == default_version(collect(built / "dist", "https://example.invalid/r"))
    with pytest.raises(UsageError, match="not a valid version"):
        build_catalogue(built / "dist", "x", version="not a version", project=built)


def test_archive_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert archive_url("https://h/rel/v1/", "a.tar.gz") == "https://h/rel/v1/a.tar.gz"
    assert archive_url("file:///srv/rt", "a.tar.gz") == "file:///srv/rt/a.tar.gz"
    monkeypatch.chdir(tmp_path)
    assert archive_url("rel", "a.tar.gz") == (tmp_path / "rel" / "a.tar.gz").as_uri()
    with pytest.raises(UsageError, match="scheme"):
        archive_url("ftp://h/x", "a.tar.gz")
    with pytest.raises(UsageError):
        archive_url("  ", "a.tar.gz")


def _copy_build(built: Path, variant: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".tar.gz"):
        name = f"runenv-{variant}-{HOST.value}{suffix}"
        shutil.copy2(built / "dist" / name, dest / name)


def test_manifests_gathered_in_subfolders_combine(built: Path, tmp_path: Path) -> None:
    gathered = tmp_path / "gathered"
    _copy_build(built, VAR_A, gathered / f"runtime-{VAR_A}-{HOST.value}")
    _copy_build(built, VAR_B, gathered / "deeper" / "still")
    (gathered / ".tmp-x").mkdir()
    (gathered / ".tmp-x" / f"runenv-{VAR_A}-{HOST.value}.json").write_text("{}")  # ignored
    assert len(find_manifests(gathered)) == 2
    variants = collect(gathered, "https://h/r")
    assert sorted(variants) == [VAR_A, VAR_B]
    assert variants[VAR_B][HOST.value]["url"] == f"https://h/r/runenv-{VAR_B}-{HOST.value}.tar.gz"


def test_two_manifests_for_one_variant_and_platform_are_refused(
    built: Path, tmp_path: Path
) -> None:
    _copy_build(built, VAR_A, tmp_path / "d" / "machine1")
    _copy_build(built, VAR_A, tmp_path / "d" / "machine2")
    with pytest.raises(BuildError, match=r"machine1.*machine2.*both manifests of") as info:
        build_catalogue(tmp_path / "d", "https://h", version="1", project=built)
    assert VAR_A in str(info.value) and HOST.value in str(info.value)


def test_archives_must_match_their_manifest(built: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    _copy_build(built, VAR_A, d)
    arc = d / f"runenv-{VAR_A}-{HOST.value}.tar.gz"
    data = arc.read_bytes()
    arc.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # same size, other bytes
    with pytest.raises(ChecksumError, match=re.escape(str(arc))):
        collect(d, "https://h")
    arc.write_bytes(data + b"x")
    with pytest.raises(BuildError, match=r"bytes, but .* says"):
        collect(d, "https://h")
    arc.unlink()
    with pytest.raises(BuildError, match=r"missing \(named by"):
        collect(d, "https://h")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no runenv-"):
        collect(tmp_path / "empty", "https://h")


# --- installing from the wheel, in a fresh venv ----------------------------------------------


def test_install_from_a_fresh_venv_runs_and_second_install_reuses_the_tree(
    venv_python: Path, built: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    listed = consumer(venv_python, cache, "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [VAR_A, VAR_B]

    first = consumer(venv_python, cache, "install", VAR_A)
    assert first.returncode == 0, first.stderr
    python = Path(first.stdout.strip())
    root = cache / manifest(built, VAR_A)["sha256"][:16]
    assert python == root / manifest(built, VAR_A)["interpreter"]
    out = subprocess.run(
        [python, "-c", "import sys, rtpure, rtdep; print(sys.prefix); print(rtdep.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [str(root), "rtdep 1.0"]

    marker = root / ".provisioned"
    stamp = marker.stat().st_mtime_ns
    second = consumer(venv_python, cache, "install", VAR_A)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert marker.stat().st_mtime_ns == stamp  # not unpacked again
    assert sorted(p.name for p in cache.iterdir()) == [root.name, f"{root.name}.lock"]

    which = consumer(venv_python, cache, "which", VAR_A)
    assert which.returncode == 0 and which.stdout == first.stdout


def test_run_sees_the_variant_environment(venv_python: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = "import os, sys; print(os.environ['X']); print(os.environ['PATH'].split(os.pathsep)[0])"
    result = consumer(venv_python, cache, "run", VAR_B, "--", "-c", code)
    assert result.returncode == 0, result.stderr
    x, first_on_path = result.stdout.splitlines()
    assert x == "from-b"
    assert Path(first_on_path).name == SCRIPTS and Path(first_on_path).parent.parent == cache
    failing = consumer(venv_python, cache, "run", VAR_B, "--", "-c", "raise SystemExit(7)")
    assert failing.returncode == 7


def test_clear_errors_and_exit_codes(venv_python: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cases = [
        (("install", "no-such-variant"), 2, "unknown variant 'no-such-variant'"),
        (("install", VAR_A, "--platform", OTHER.value), 2, f"has no runtime for {OTHER.value}"),
        (("install", VAR_A, "--platform", "solaris-sparc"), 2, "unknown platform"),
        (("which", VAR_A), 1, "is not installed"),
        (("run", "nope", "--", "-c", "pass"), 2, "unknown variant"),
    ]
    for args, code, message in cases:
        result = consumer(venv_python, cache, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not cache.exists() or not any(cache.iterdir())


def test_tampered_archive_is_refused(venv_python: Path, built: Path, tmp_path: Path) -> None:
    arc = archive(built, VAR_B)
    original = arc.read_bytes()
    cache = tmp_path / "cache"
    try:
        arc.write_bytes(original[:-10] + bytes(10))  # same size, other bytes
        result = consumer(venv_python, cache, "install", VAR_B)
        assert result.returncode == 1
        assert "sha256 mismatch" in result.stderr
        assert manifest(built, VAR_B)["sha256"] in result.stderr
        assert "Traceback" not in result.stderr
        arc.write_bytes(original + b"more")
        assert consumer(venv_python, cache, "install", VAR_B).returncode == 1
        arc.unlink()
        missing = consumer(venv_python, cache, "install", VAR_B)
        assert missing.returncode == 1 and "cannot read" in missing.stderr
    finally:
        arc.write_bytes(original)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    assert consumer(venv_python, cache, "install", VAR_B).returncode == 0


def test_concurrent_installs_both_succeed(venv_python: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "RUNENV_CATALOGUE_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [venv_python, "-m", "runenv_catalogue", "install", VAR_A],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]
    python = Path(results[0][0].strip())
    assert subprocess.run([python, "-c", "import rtpure"], check=False).returncode == 0
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [python.parents[1].name]


# --- the consumer library, in process -----------------------------------------------------------


def _catalogue(url: str, sha256: str, size: int, *, interpreter: str = "bin/python3") -> Catalogue:
    return Catalogue(_document(url, sha256, size, interpreter=interpreter))


def _document(
    url: str, sha256: str, size: int, *, interpreter: str = "bin/python3"
) -> dict[str, Any]:
    """A catalogue.json's content with one variant, `v`, for this platform."""
    entry = {
        "url": url,
        "sha256": sha256,
        "size": size,
        "python_version": "3.12.0",
        "interpreter": interpreter,
        "site_packages": "lib/python3.12/site-packages",
        "packages": [],
        "env": {"K": "v"},
    }
    return {"schema_version": 1, "version": "1", "variants": {"v": {HOST.value: entry}}}


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for item in entries:
            if isinstance(item, tarfile.TarInfo):
                tf.addfile(item)
            else:
                info = tarfile.TarInfo(item[0])
                info.size, info.mode = len(item[1]), 0o755
                tf.addfile(info, io.BytesIO(item[1]))
    return buf.getvalue()


def _link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


GOOD = ("bin/python3", b"#!/bin/sh\n")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([GOOD, ("../evil", b"x")], "'../evil': '..' leaves the tree"),
        ([GOOD, ("/abs/evil", b"x")], "'/abs/evil': absolute"),
        ([GOOD, _link("out", "../../evil")], "symlink 'out' -> '../../evil': leaves the tree"),
        ([GOOD, _link("out", "/etc/passwd")], "symlink 'out' -> '/etc/passwd': absolute"),
        ([GOOD, _link("hard", "../evil", hard=True)], "hard link 'hard' -> '../evil': leaves"),
        ([GOOD, _link("up", ".."), ("up/evil", b"x")], "symlink 'up' -> '..': leaves the tree"),
        # lexically inside, really outside: a/b/l -> ../.. is the root; root/.. is not
        ([GOOD, _link("a/b/l", "../.."), _link("esc", "a/b/l/..")], "'esc'.*outside"),
        ([GOOD, _link("dir", "sub"), ("dir/f", b"x")], "'dir/f': .* through the symlink dir"),
    ],
)
@pytest.mark.parametrize("data_filter", [True, False], ids=["filter", "no-filter"])
def test_hostile_archives_are_refused(
    tmp_path: Path,
    entries: list[tarfile.TarInfo | tuple[str, bytes]],
    message: str,
    data_filter: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not data_filter:  # the checks alone, as on a Python without PEP 706's filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    data = _tar(entries)
    served = tmp_path / "served" / "rt.tar.gz"
    served.parent.mkdir()
    served.write_bytes(data)
    cat = _catalogue(str(served), hashlib.sha256(data).hexdigest(), len(data))
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeArchiveError, match=message):
        cat.install("v", cache_dir=cache)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "served"]
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_http_urls_retries_and_wrong_bytes(tmp_path: Path) -> None:
    data = _tar([GOOD, ("lib/x.txt", b"hello")])
    sha = hashlib.sha256(data).hexdigest()
    with LoopbackServer() as server:
        url = server.add_file("/rt.tar.gz", data)
        server.script("/rt.tar.gz", status(503))  # transient: retried
        cat = _catalogue(url, sha, len(data))
        python = cat.install("v", cache_dir=tmp_path / "c1")
        assert python.is_file() and (python.parents[1] / "lib" / "x.txt").read_text() == "hello"
        assert server.requests_for("/rt.tar.gz") == 2
        server.always("/rt.tar.gz", wrong_bytes())
        with pytest.raises(ChecksumMismatch, match="sha256 mismatch"):
            cat.install("v", cache_dir=tmp_path / "c2")
        server.always("/rt.tar.gz", status(404))
        with pytest.raises(DownloadError, match="HTTP 404"):
            cat.install("v", cache_dir=tmp_path / "c3")


def test_a_failed_download_shows_no_secret_of_its_url(tmp_path: Path) -> None:
    """The catalogue redacts a URL as runenv does (one `redact`): a token in the query too."""
    with LoopbackServer() as server:
        url = server.url_for("gone.tar.gz") + "?token=s3cr3t&v=1"
        cat = _catalogue(url, "0" * 64, 10)
        with pytest.raises(DownloadError, match="HTTP 404") as failed:
            cat.install("v", cache_dir=tmp_path)
    assert "s3cr3t" not in str(failed.value)
    assert "/gone.tar.gz?token=***&v=1: HTTP 404" in str(failed.value)


def test_unreachable_url_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer() as server:
        url = server.url_for("gone.tar.gz")  # the server stops: nothing listens there any more
    cat = _catalogue(url, "0" * 64, 10)
    code = catalogue_main(["install", "v", "--cache-dir", str(tmp_path)], catalogue=cat)
    err = capsys.readouterr().err
    assert code == 1 and "cannot download" in err and "Traceback" not in err


def test_environment_and_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = _catalogue("unused", "a" * 64, 1)
    monkeypatch.setenv("RUNENV_CATALOGUE_CACHE", str(tmp_path / "c"))
    env = cat.environment("v", base={"PATH": "/usr/bin", "PYTHONHOME": "/x", "K": "old"})
    root = tmp_path / "c" / ("a" * 16)
    assert env["K"] == "v" and "PYTHONHOME" not in env
    assert env["PATH"].split(os.pathsep) == [str(root / "bin"), "/usr/bin"]
    assert cat.which("v") is None


def test_an_interrupted_install_is_redone_not_trusted(tmp_path: Path) -> None:
    data = _tar([GOOD, ("lib/x.txt", b"new")])
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "rt.tar.gz").write_bytes(data)
    cat = _catalogue((tmp_path / "rt.tar.gz").as_uri(), sha, len(data))
    cache = tmp_path / "cache"
    half = cache / sha[:16]  # unpacked, renamed into place, killed before its marker
    (half / "bin").mkdir(parents=True)
    (half / "bin" / "python3").write_text("stale")
    (half / "lib").mkdir()
    (half / "lib" / "x.txt").write_text("old")
    (cache / f".tmp-{sha[:16]}-killed").mkdir()
    assert cat.which("v", cache_dir=cache) is None
    python = cat.install("v", cache_dir=cache)
    assert python == half / "bin" / "python3" and (half / "lib" / "x.txt").read_text() == "new"
    assert cat.which("v", cache_dir=cache) == python
    assert sorted(p.name for p in cache.iterdir()) == [sha[:16], f"{sha[:16]}.lock"]


def test_a_url_with_user_info_is_not_echoed_by_the_library(tmp_path: Path) -> None:
    """http.client words `http://user:pass@host/` as "nonnumeric port: 'pass@host'": the
    catalogue scrubs the password from the library's text as runenv does (one `scrub`)."""
    cat = _catalogue("http://alice-user:s3cr3t-pass@127.0.0.1/rt.tar.gz", "0" * 64, 10)
    with pytest.raises(DownloadError, match="cannot download") as failed:
        cat.install("v", cache_dir=tmp_path)
    message = str(failed.value)
    assert "s3cr3t-pass" not in message and "alice-user" not in message, message
    assert "nonnumeric port" in message, message  # the library's own words are still there


def test_a_file_url_names_its_path_once_unquoted(tmp_path: Path) -> None:
    """`file://.../x%2541/rt.tar.gz` names the folder `x%41`: unquoted once, as urllib does
    (twice, it named `xA`, a folder that is not there)."""
    data = _tar([GOOD])
    folder = tmp_path / "x%41"
    folder.mkdir()
    (folder / "rt.tar.gz").write_bytes(data)
    url = (folder / "rt.tar.gz").as_uri()
    assert "x%2541" in url
    cat = _catalogue(url, hashlib.sha256(data).hexdigest(), len(data))
    python = cat.install("v", cache_dir=tmp_path / "cache")
    assert python.read_bytes() == GOOD[1]


def _file_catalogue(tmp_path: Path) -> Path:
    """A catalogue.json in `tmp_path` whose variant `v` is a small archive there (`file://`)."""
    data = _tar([GOOD])
    (tmp_path / "rt.tar.gz").write_bytes(data)
    doc = _document((tmp_path / "rt.tar.gz").as_uri(), hashlib.sha256(data).hexdigest(), len(data))
    (tmp_path / "catalogue.json").write_text(json.dumps(doc))
    return tmp_path / "catalogue.json"


# The CLI's `install v` of the catalogue argv[1] into the cache argv[2], its exit code `code`.
_INSTALL = (
    "import sys; from pathlib import Path; from runenv_catalogue import Catalogue; "
    "from runenv_catalogue.__main__ import main; "
    "cat = Catalogue.load(Path(sys.argv[1])); "
    "code = main(['install', 'v', '--cache-dir', sys.argv[2]], cat)\n"
)


def _python(script: str, *args: object) -> list[str]:
    """`script` run by a fresh `python -S` (no site hook of this machine's Python loads
    anything behind the package's back) that sees only the catalogue package; its output's
    last line, split."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MALLOC_"))}
    env["PYTHONPATH"] = str(REPO / "catalogue" / "src")
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()


def test_an_install_from_a_file_loads_no_download_or_venv_code(tmp_path: Path) -> None:
    """Every consumer machine runs `install` first: from a file (or the cache) it imports
    neither urllib's HTTP stack (http.client, ssl) nor the PEP 440/508 code the venv command
    checks requirements with, nor subprocess (it runs nothing) nor importlib.resources (the
    catalogue is a file); a download, a venv and `run` load them when they need them."""
    script = _INSTALL + (
        "print(sorted(m for m in ('http.client', 'ssl', 'urllib.request', 'subprocess', "
        "'importlib.resources', 'runenv_catalogue._requirements', 'runenv_catalogue._check') "
        "if m in sys.modules)); "
        "sys.exit(code)"
    )
    assert _python(script, _file_catalogue(tmp_path), tmp_path / "cache") == ["[]"]


def test_an_installed_runtime_is_found_without_the_unpacking_code(tmp_path: Path) -> None:
    """`which` and `run` of an installed runtime, a consumer's every call, load none of the
    unpacking (tarfile, concurrent.futures and its logging), nor dataclasses (and inspect,
    ast, dis) nor platform: they only read the catalogue and the cache."""
    catalogue = _file_catalogue(tmp_path)
    assert _python(_INSTALL + "print(code)", catalogue, tmp_path / "cache") == ["0"]
    script = _INSTALL.replace("['install'", "['which'") + (
        "print(code, sorted(m for m in ('tarfile', 'concurrent.futures', 'logging', "
        "'runenv_catalogue._unpack', 'dataclasses', 'inspect', 'platform') "
        "if m in sys.modules))"
    )
    assert _python(script, catalogue, tmp_path / "cache") == ["0", "[]"]


_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
# A fresh process's resident memory before and after 64 MiB of 4 MiB buffers are made and
# freed (each over glibc's first mmap threshold), and after `_heap.release`, in MiB.
_FREED = (
    "from runenv_catalogue import _heap\n"
    "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 >> 20\n"
    "before = rss()\n"
    "blocks = [b'x' * (4 << 20) for _ in range(16)]\n"
    "del blocks\n"
    "after = rss()\n"
    "_heap.release()\n"
    "print(after - before, rss() - before, 'ctypes' in sys.modules)\n"
)


@pytest.mark.skipif(not _GLIBC, reason="glibc's malloc only")
def test_kept_freed_memory_stays_in_the_process_until_released() -> None:
    """`_heap.keep_freed` makes glibc keep the buffers an unpack frees, for the next ones,
    instead of unmapping them; `release` hands them back. Without it they go at once."""
    assert _python("import sys\n" + _FREED)[:2] == ["0", "0"]
    kept, released, _ = _python(
        "import sys\nfrom runenv_catalogue import _heap\nassert _heap.keep_freed()\n" + _FREED
    )
    assert int(kept) >= 48, kept
    assert int(released) < 16, released


@pytest.mark.skipif(not _GLIBC, reason="glibc's malloc only")
def test_the_cli_keeps_freed_memory_for_an_unpack_only(tmp_path: Path) -> None:
    """The CLI's `install` tunes the heap (`_heap`) when it unpacks: memory freed afterwards
    stays in the process. An install found in the cache tunes nothing, nor loads ctypes."""
    catalogue = _file_catalogue(tmp_path)
    script = _INSTALL + "assert code == 0\n" + _FREED.replace("_heap.release()", "")
    unpacked = _python(script, catalogue, tmp_path / "cache")
    assert int(unpacked[0]) >= 48 and unpacked[2] == "True", unpacked
    cached = _python(script, catalogue, tmp_path / "cache")
    assert cached[:3] == ["0", "0", "False"], cached
