"""Locking with uv against the loopback index: markers for the target, hashes, freshness, errors."""

from __future__ import annotations

import hashlib
import platform as host
import shutil
import socket
import tomllib
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.errors import LockError
from runenv.fetch.wheels import select
from runenv.lock.pylock import Lock, read_lock
from runenv.lock.request import LockRequest
from runenv.lock.resolve import is_fresh, lock, lock_path
from runenv.platforms import ALL_PLATFORMS, Platform
from support.index import Index, IndexServer, write_simple_pages

PY = host.python_version()  # the test runtime is a copy of this interpreter


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def request(
    pkg_server: IndexServer, *reqs: str, platform: Platform = Platform.LINUX_X64, **kw: object
) -> LockRequest:
    return LockRequest(
        requirements=reqs,
        python_version=PY,
        platform=platform,
        indexes=(),
        default_index=pkg_server.index_url,
        **kw,
    )  # type: ignore[arg-type]


def names(lk: Lock) -> dict[str, str]:
    return {p.name: p.version for p in lk.packages}


def test_lock_evaluates_markers_for_the_target(
    pkg_server: IndexServer, pkg_index: Index, cache: Cache, tmp_path: Path
) -> None:
    variant = tmp_path / "versions" / "3.11-test"
    got = {}
    for plat in (Platform.LINUX_X64, Platform.WINDOWS_X64):
        path = lock_path(variant, plat)
        got[plat] = lock(
            request(pkg_server, "rtpure", "rtnative", platform=plat), path, cache=cache, timeout=120
        )
        assert path.name == f"pylock.{plat}.toml"
        assert read_lock(path) == got[plat]

    linux, windows = got[Platform.LINUX_X64], got[Platform.WINDOWS_X64]
    # rtwin is required only with sys_platform == "win32"; rtdep 2.0 needs Python >= 3.99.
    assert names(linux) == {"rtdep": "1.0", "rtnative": "1.0", "rtpure": "1.0"}
    assert names(windows) == {"rtdep": "1.0", "rtnative": "1.0", "rtpure": "1.0", "rtwin": "1.0"}
    # uv keeps only the wheels that fit the target platform.
    native_linux = linux.package("rtnative")
    native_windows = windows.package("RTNative")
    assert native_linux is not None and native_windows is not None
    cp = "cp" + "".join(PY.split(".")[:2])
    assert [w.filename for w in native_linux.wheels] == [
        f"rtnative-1.0-{cp}-{cp}-manylinux_2_17_x86_64.whl"
    ]
    assert all(w.filename.endswith("win_amd64.whl") for w in native_windows.wheels)
    assert native_linux.sdist is not None and native_linux.sdist.filename == "rtnative-1.0.tar.gz"
    # Every file carries the sha256 of the bytes the index serves.
    for lk in got.values():
        for pkg in lk.packages:
            for f in (*pkg.wheels, *([pkg.sdist] if pkg.sdist else [])):
                assert f.sha256 == pkg_index.sha256(f.filename)
                assert f.url == pkg_server.file_url(f.filename)


def test_lock_records_its_inputs(pkg_server: IndexServer, cache: Cache, tmp_path: Path) -> None:
    req = request(pkg_server, "rtpure")
    path = tmp_path / "v" / "pylock.linux-x64.toml"
    result = lock(req, path, cache=cache, timeout=120)
    doc = tomllib.loads(path.read_text())
    assert doc["lock-version"] == "1.0"
    tool = doc["tool"]["runenv"]
    assert tool["inputs-hash"] == req.inputs_hash() == result.inputs_hash
    assert tool["platform"] == "linux-x64" and tool["python-version"] == PY
    assert tool["glibc"] == "2.28"
    assert result.platform == "linux-x64" and result.python_version == PY
    # No temp files beside the lock; uv's cache lives in runenv's cache.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert any((cache.root / "uv").iterdir())


def test_is_fresh_follows_the_inputs(pkg_server: IndexServer, cache: Cache, tmp_path: Path) -> None:
    req = request(pkg_server, "rtpure")
    path = tmp_path / "v" / "pylock.linux-x64.toml"
    assert not is_fresh(path, req)  # no lock yet
    lock(req, path, cache=cache, timeout=120)
    assert is_fresh(path, req)
    assert is_fresh(path, request(pkg_server, "rtpure"))  # an equal request
    changed = [
        request(pkg_server, "rtpure", "rtdep"),
        request(pkg_server, "rtpure==1.0"),
        request(pkg_server, "rtpure", skipped=("rtwin",)),
        request(pkg_server, "rtpure", constraints=("rtdep<2",)),
        request(pkg_server, "rtpure", glibc=(2, 17)),
        LockRequest(("rtpure",), "3.12.10", Platform.LINUX_X64, (), pkg_server.index_url),
        LockRequest(
            ("rtpure",),
            PY,
            Platform.LINUX_X64,
            ("https://example.com/simple",),
            pkg_server.index_url,
        ),
        LockRequest(("rtpure",), PY, Platform.LINUX_X64, ()),  # PyPI
    ]
    for other in changed:
        assert other.inputs_hash() != req.inputs_hash()
        assert not is_fresh(path, other)
    # A damaged lock is not fresh either.
    path.write_text(path.read_text().replace("[tool.runenv]", "[tool.other]"))
    assert not is_fresh(path, req)
    path.write_text("not toml [")
    assert not is_fresh(path, req)


def test_inputs_hash_is_canonical() -> None:
    def linux_request(requirements: tuple[str, ...], skipped: tuple[str, ...]) -> LockRequest:
        index = ("https://x/simple",)
        return LockRequest(requirements, "3.12.10", Platform.LINUX_X64, index, skipped=skipped)

    # Requirements and skips written otherwise (order, spacing, name spelling): the same hash.
    a = linux_request(("b==1", "A>=2"), ("Foo_Bar", "baz"))
    b = linux_request(("A >= 2", "b==1"), ("baz", "foo-bar"))
    assert a.inputs_hash() == b.inputs_hash()
    # Index order is priority order: it matters.
    c = LockRequest((), "3.12.10", Platform.LINUX_X64, ("https://x/simple", "https://y/simple"))
    d = LockRequest((), "3.12.10", Platform.LINUX_X64, ("https://y/simple", "https://x/simple"))
    assert c.inputs_hash() != d.inputs_hash()
    # The glibc floor matters on Linux only; the macOS minimum on macOS only.
    win = LockRequest((), "3.12.10", Platform.WINDOWS_X64, ())
    assert (
        win.inputs_hash()
        == LockRequest(
            (), "3.12.10", Platform.WINDOWS_X64, (), glibc=(2, 17), macos=(12, 0)
        ).inputs_hash()
    )
    mac = LockRequest((), "3.12.10", Platform.MACOSX_X64, ())
    assert (
        mac.inputs_hash()
        == LockRequest((), "3.12.10", Platform.MACOSX_X64, (), macos=(10, 13)).inputs_hash()
    )
    assert (
        mac.inputs_hash()
        != LockRequest((), "3.12.10", Platform.MACOSX_X64, (), macos=(10, 9)).inputs_hash()
    )


def test_empty_requirements_give_an_empty_lock(
    pkg_server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    path = tmp_path / "v" / "pylock.macosx-aarch64.toml"
    lk = lock(request(pkg_server, platform=Platform.MACOSX_AARCH64), path, cache=cache, timeout=120)
    assert lk.packages == () and lk.inputs_hash == read_lock(path).inputs_hash


def test_skipped_package_still_required_names_both(
    pkg_server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    path = tmp_path / "3.11-test" / "pylock.linux-x64.toml"
    with pytest.raises(LockError) as err:
        lock(request(pkg_server, "rtpure", skipped=("RTDep",)), path, cache=cache, timeout=120)
    message = str(err.value)
    assert "rtdep is skipped on linux-x64 but required by rtpure==1.0" in message
    assert message.startswith("cannot lock 3.11-test for linux-x64")
    assert not path.exists()
    # Skipping what nothing requires is fine; on Windows rtwin is required by rtpure.
    lock(request(pkg_server, "rtpure", skipped=("rtwin",)), path, cache=cache, timeout=120)
    with pytest.raises(LockError, match="rtwin is skipped on windows-x64 but required by rtpure"):
        lock(
            request(pkg_server, "rtpure", platform=Platform.WINDOWS_X64, skipped=("rtwin",)),
            tmp_path / "w" / "pylock.windows-x64.toml",
            cache=cache,
            timeout=120,
        )


def test_constraints_reach_uv(pkg_server: IndexServer, cache: Cache, tmp_path: Path) -> None:
    path = tmp_path / "v" / "pylock.linux-x64.toml"
    # rtdep 2.0 needs Python >= 3.99: constraining to it makes rtpure unresolvable.
    with pytest.raises(LockError, match="rtdep"):
        lock(
            request(pkg_server, "rtpure", constraints=("rtdep>=2",)), path, cache=cache, timeout=120
        )
    lk = lock(
        request(pkg_server, "rtpure", constraints=("rtdep==1.0",)), path, cache=cache, timeout=120
    )
    assert names(lk)["rtdep"] == "1.0"


def test_uv_failure_is_one_clear_line(
    pkg_server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    path = tmp_path / "3.11-test" / "pylock.windows-x64.toml"
    path.parent.mkdir(parents=True)
    path.write_text("previous lock\n")
    with pytest.raises(LockError) as err:
        lock(
            request(pkg_server, "rtpure==3", platform=Platform.WINDOWS_X64),
            path,
            cache=cache,
            timeout=120,
        )
    message = str(err.value)
    assert message.startswith(f"cannot lock 3.11-test for windows-x64 (Python {PY}): ")
    assert "uv found no solution: Because" in message and "rtpure" in message
    assert len(message.splitlines()) == 1 and message.count("Because") == 1  # uv's text once
    assert path.read_text() == "previous lock\n"  # untouched
    with pytest.raises(LockError, match="nosuchpkg"):
        lock(request(pkg_server, "nosuchpkg"), path, cache=cache, timeout=120)


def test_uv_timeout_is_one_clear_line(cache: Cache, tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/simple"
        req = LockRequest(("rtpure",), PY, Platform.LINUX_X64, (), default_index=url)
        with pytest.raises(LockError) as err:
            lock(
                req, tmp_path / "v" / "pylock.linux-x64.toml", cache=cache, timeout=2, log_file=log
            )
    assert str(err.value) == (
        f"cannot lock v for linux-x64 (Python {PY}): uv timed out after 2s (build.timeout) "
        f"(full log: {log})"
    )
    assert not (tmp_path / "v" / "pylock.linux-x64.toml").exists()


def test_user_uv_settings_do_not_leak(
    pkg_server: IndexServer, cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CONSTRAINT", str(tmp_path / "missing-constraints.txt"))
    monkeypatch.setenv("UV_INDEX", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_EXCLUDE_NEWER", "2000-01-01T00:00:00Z")
    monkeypatch.setenv("UV_NO_BINARY", "1")
    lk = lock(
        request(pkg_server, "rtpure"),
        tmp_path / "v" / "pylock.linux-x64.toml",
        cache=cache,
        timeout=120,
    )
    assert names(lk) == {"rtdep": "1.0", "rtpure": "1.0"}


def test_index_without_hashes_is_refused(pkg_index: Index, cache: Cache, tmp_path: Path) -> None:
    bare = tmp_path / "bare-index"
    (bare / "files").mkdir(parents=True)
    for name in ("rtdep-1.0-py3-none-any.whl",):
        shutil.copy(pkg_index.path(name), bare / "files" / name)
    write_simple_pages(bare)
    page = bare / "simple" / "rtdep" / "index.html"
    text = page.read_text()
    page.write_text(text.split("#sha256=")[0] + text.split("#sha256=")[1][64:])
    with IndexServer(bare) as srv:
        path = tmp_path / "v" / "pylock.linux-x64.toml"
        try:
            lk = lock(request(srv, "rtdep"), path, cache=cache, timeout=120)
        except LockError as exc:  # had uv written no hash, runenv would refuse the lock
            assert "rtdep 1.0" in str(exc) and "no sha256" in str(exc)
            assert not path.exists()
        else:  # uv (0.13) hashes the file itself: then the hash must be right
            pkg = lk.package("rtdep")
            assert pkg is not None and pkg.wheels[0].sha256 == pkg_index.sha256(
                "rtdep-1.0-py3-none-any.whl"
            )


def test_read_lock_requires_hashes_and_files(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(
        'lock-version = "1.0"\n[[packages]]\nname = "foo"\nversion = "1.0"\n'
        'wheels = [{ url = "https://x/foo-1.0-py3-none-any.whl" }]\n'
    )
    with pytest.raises(LockError, match=r"foo 1\.0: foo-1\.0-py3-none-any\.whl has no sha256"):
        read_lock(path)
    path.write_text('lock-version = "1.0"\n[[packages]]\nname = "foo"\nversion = "1.0"\n')
    with pytest.raises(LockError, match=r"foo 1\.0 has no wheel and no sdist"):
        read_lock(path)
    path.write_text(
        'lock-version = "1.0"\n[[packages]]\nname = "foo"\nversion = "1.0"\n'
        'vcs = { type = "git", url = "https://x/foo.git", commit-id = "abc" }\n'
    )
    # A git source must carry its full commit hash: an abbreviated one is not a pin.
    with pytest.raises(LockError, match=r"foo 1\.0: a git source needs its url and full commit"):
        read_lock(path)
    path.write_text(
        'lock-version = "1.0"\n[[packages]]\nname = "foo"\nversion = "1.0"\n'
        'directory = { path = "src/foo" }\n'
    )
    with pytest.raises(LockError, match=r"foo 1\.0 comes from a directory"):
        read_lock(path)
    with pytest.raises(LockError, match="no such lock"):
        read_lock(tmp_path / "missing.toml")


def test_read_lock_accepts_pep751_variants(tmp_path: Path) -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    path = tmp_path / "pylock.toml"
    path.write_text(
        'lock-version = "1.0"\n'
        '[[packages]]\nname = "a"\nversion = "1"\nindex = "https://x/simple"\n'
        f'archive = {{ url = "https://x/a-1-py3-none-any.whl", hashes = {{ sha256 = "{sha}" }} }}\n'
        '[[packages]]\nname = "b"\nversion = "2"\nmarker = "sys_platform == \'win32\'"\n'
        'sdist = { name = "b-2.tar.gz", path = "dist/b-2.tar.gz", '
        f'hashes = {{ sha256 = "{sha}" }} }}\n'
    )
    lk = read_lock(path)
    a, b = lk.packages
    assert a.index == "https://x/simple" and a.wheels[0].filename == "a-1-py3-none-any.whl"
    assert b.sdist is not None and b.sdist.url == str(tmp_path / "dist" / "b-2.tar.gz")
    assert b.marker == "sys_platform == 'win32'"
    assert lk.inputs_hash is None  # not written by runenv


@pytest.mark.network
def test_lock_numpy_pandas_for_every_platform_from_pypi(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    for plat in ALL_PLATFORMS:
        # Default floors: numpy 2.2.6's oldest Intel macOS wheel is for 10.13, runenv's default.
        req = LockRequest(("numpy==2.2.6", "pandas==2.2.3"), "3.12.10", plat, ())
        path = tmp_path / "3.12.10" / f"pylock.{plat}.toml"
        lk = lock(req, path, cache=cache, timeout=300)
        assert {"numpy", "pandas", "python-dateutil", "pytz", "tzdata"} <= set(names(lk))
        assert is_fresh(path, req)
        arts = select(lk, plat, "3.12.10", {}, macos=req.macos)
        assert all(a.kind == "wheel" for a in arts), [a for a in arts if a.kind != "wheel"]
        numpy = next(a for a in arts if a.name == "numpy")
        assert "cp312" in numpy.filename
        assert {
            Platform.LINUX_X64: "x86_64",
            Platform.LINUX_AARCH64: "aarch64",
            Platform.MACOSX_X64: "x86_64",
            Platform.MACOSX_AARCH64: "arm64",
            Platform.WINDOWS_X64: "win_amd64",
        }[plat] in numpy.filename
