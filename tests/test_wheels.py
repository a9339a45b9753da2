"""Choosing each package's file for a platform, and fetching them verified, once, concurrently."""

from __future__ import annotations

import hashlib
import io
import platform as host
import sys
import threading
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.errors import ChecksumError, FetchError, LockError
from runenv.fetch.wheels import WHEELS_SECTION, Artifact, download_all, marker_environment, select
from runenv.lock.pylock import Lock, LockedFile, LockedPackage
from runenv.lock.request import LockRequest
from runenv.lock.resolve import lock
from runenv.platforms import ALL_PLATFORMS, Platform
from support.index import RTNATIVE_PLATFORMS, Index, IndexServer

PY = host.python_version()
CP = "cp" + "".join(PY.split(".")[:2])


@pytest.fixture(scope="module")
def locks(
    pkg_server: IndexServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[Platform, Lock]:
    """rtpure + rtnative + rtsrconly locked for all five platforms against the loopback index."""
    root = tmp_path_factory.mktemp("locks")
    cache = Cache(root / "cache")
    return {
        plat: lock(
            LockRequest(("rtpure", "rtnative", "rtsrconly"), PY, plat, (), pkg_server.index_url),
            root / "v" / f"pylock.{plat}.toml",
            cache=cache,
            timeout=120,
        )
        for plat in ALL_PLATFORMS
    }


def by_name(arts: list[Artifact]) -> dict[str, Artifact]:
    return {a.name: a for a in arts}


def test_select_picks_each_platforms_wheel(locks: dict[Platform, Lock]) -> None:
    for plat, lk in locks.items():
        arts = by_name(select(lk, plat, PY, {}))
        tag = RTNATIVE_PLATFORMS[plat.value][0]
        native = arts["rtnative"]
        assert (native.kind, native.reason) == ("wheel", None)
        assert native.filename == f"rtnative-1.0-{CP}-{CP}-{tag}.whl"
        assert arts["rtpure"].filename == "rtpure-1.0-py3-none-any.whl"
        assert arts["rtdep"].filename == "rtdep-1.0-py3-none-any.whl"
        assert ("rtwin" in arts) == (plat is Platform.WINDOWS_X64)
        # No wheel at all: the sdist, saying why.
        src = arts["rtsrconly"]
        assert (src.kind, src.filename) == ("sdist", "rtsrconly-1.0.tar.gz")
        assert src.reason == f"no wheel for {plat}" and src.kind == "sdist"


def test_select_honours_force_source(locks: dict[Platform, Lock]) -> None:
    lk = locks[Platform.LINUX_AARCH64]
    arts = by_name(select(lk, Platform.LINUX_AARCH64, PY, {"RTNative": "no wheels for ARM64"}))
    native = arts["rtnative"]
    assert (native.kind, native.filename) == ("sdist", "rtnative-1.0.tar.gz")
    assert native.reason == "forced to source (no wheels for ARM64)"
    assert native.sha256 == lk.package("rtnative").sdist.sha256  # type: ignore[union-attr]
    assert arts["rtpure"].kind == "wheel"


def _file(name: str) -> LockedFile:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return LockedFile(f"https://example.com/{name}", name, digest)


def _pkg(name: str, *wheels: str, sdist: bool = True, marker: str | None = None) -> LockedPackage:
    return LockedPackage(
        name,
        "1.0",
        tuple(_file(w) for w in wheels),
        _file(f"{name}-1.0.tar.gz") if sdist else None,
        marker=marker,
    )


def test_select_ranks_by_platform_tags_and_floors() -> None:
    lk = Lock(
        (
            _pkg(
                "a",
                "a-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "a-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                "a-1.0-py3-none-any.whl",
            ),
            _pkg("b", "b-1.0-cp39-abi3-manylinux_2_17_x86_64.whl", "b-1.0-py3-none-any.whl"),
            _pkg(
                "c",
                "c-1.0-cp312-cp312-manylinux_2_34_x86_64.whl",
                "c-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
                "c-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            ),
            _pkg(
                "d",
                "d-1.0-cp312-cp312-macosx_10_13_x86_64.whl",
                "d-1.0-cp312-cp312-macosx_14_0_x86_64.whl",
            ),
            _pkg("w", "w-1.0-py3-none-any.whl", sdist=False, marker="sys_platform == 'win32'"),
        )
    )
    linux = by_name(select(lk, Platform.LINUX_X64, "3.12.10", {}, glibc=(2, 28)))
    assert linux["a"].filename == "a-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert linux["b"].filename == "b-1.0-cp39-abi3-manylinux_2_17_x86_64.whl"
    assert linux["c"].kind == "sdist"  # 2.34 is above the floor, musl and cp311 do not fit
    assert "manylinux_2_34" in (linux["c"].reason or "")
    assert linux["d"].kind == "sdist"
    assert "w" not in linux  # its marker is false on Linux
    old = by_name(select(lk, Platform.LINUX_X64, "3.12.10", {}, glibc=(2, 17)))
    assert old["a"].filename == "a-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    mac = by_name(select(lk, Platform.MACOSX_X64, "3.12.10", {}, macos=(10, 9)))
    assert mac["a"].filename == "a-1.0-py3-none-any.whl"
    assert mac["d"].kind == "sdist"
    mac13 = by_name(select(lk, Platform.MACOSX_X64, "3.12.10", {}))  # default floor 10.13
    assert mac13["d"].filename == "d-1.0-cp312-cp312-macosx_10_13_x86_64.whl"
    win = by_name(select(lk, Platform.WINDOWS_X64, "3.12.10", {}))
    assert win["w"].kind == "wheel"


def test_select_without_wheel_or_sdist_names_the_package() -> None:
    lk = Lock((_pkg("lonely", "lonely-1.0-cp312-cp312-win_amd64.whl", sdist=False),))
    with pytest.raises(LockError, match=r"lonely 1\.0: no wheel for linux-x64.*no sdist"):
        select(lk, Platform.LINUX_X64, "3.12.10", {})
    with pytest.raises(LockError, match=r"lonely 1\.0: forced.*no sdist"):
        select(lk, Platform.WINDOWS_X64, "3.12.10", {"lonely": "forced"})


def test_marker_environment_matches_uv_targets() -> None:
    env = marker_environment(Platform.WINDOWS_X64, "3.12.10")
    assert (env["sys_platform"], env["os_name"], env["python_version"]) == ("win32", "nt", "3.12")
    assert marker_environment(Platform.MACOSX_AARCH64, "3.12.10")["platform_machine"] == "arm64"
    assert marker_environment(Platform.LINUX_AARCH64, "3.10.11")["python_full_version"] == "3.10.11"


def _artifacts(lk: Lock, plat: Platform) -> list[Artifact]:
    return [a for a in select(lk, plat, PY, {}) if a.kind == "wheel"]


def test_download_all_fetches_verified_files_once(
    locks: dict[Platform, Lock], pkg_server: IndexServer, pkg_index: Index, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    linux = _artifacts(locks[Platform.LINUX_X64], Platform.LINUX_X64)
    windows = _artifacts(locks[Platform.WINDOWS_X64], Platform.WINDOWS_X64)
    before = {a.filename: pkg_server.hits(a.filename) for a in linux + windows}
    paths = download_all(linux + windows, cache, timeout=30, progress=True)
    # The pure wheels both platforms share are fetched once.
    assert sorted(paths) == sorted({a.filename for a in linux + windows})
    for art in linux + windows:
        path = paths[art.filename]
        assert path == cache.blob_path(WHEELS_SECTION, art.sha256, art.filename)
        assert (
            hashlib.sha256(path.read_bytes()).hexdigest()
            == art.sha256
            == pkg_index.sha256(art.filename)
        )
        assert pkg_server.hits(art.filename) - before[art.filename] == 1
    # Again, sequentially: everything comes from the cache.
    again = download_all(linux, cache, parallel=False)
    assert again == {a.filename: paths[a.filename] for a in linux}
    assert all(pkg_server.hits(a.filename) - before[a.filename] == 1 for a in linux)
    assert download_all([], cache) == {}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_download_progress_is_drawn_on_a_terminal_only(
    locks: dict[Platform, Lock],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
) -> None:
    arts = _artifacts(locks[Platform.LINUX_X64], Platform.LINUX_X64)
    stderr = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert download_all(arts, Cache(tmp_path / "cache"), timeout=30, progress=True)
    drawn = stderr.getvalue()
    if tty:  # one bar for the set: in bytes when the lock knows every size, else in files
        by_bytes = all(a.size is not None for a in arts)
        assert "wheels:" in drawn
        assert ("B/s" if by_bytes else f"0/{len(arts)} ") in drawn
    else:
        assert drawn == ""


def test_concurrent_downloads_share_one_fetch(
    locks: dict[Platform, Lock], pkg_server: IndexServer, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    arts = _artifacts(locks[Platform.MACOSX_AARCH64], Platform.MACOSX_AARCH64)
    before = {a.filename: pkg_server.hits(a.filename) for a in arts}
    results: list[dict[str, Path]] = []
    threads = [
        threading.Thread(target=lambda: results.append(download_all(arts, cache))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert all(pkg_server.hits(a.filename) - before[a.filename] == 1 for a in arts)


def test_tampered_file_is_refused_and_not_cached(
    locks: dict[Platform, Lock], pkg_server: IndexServer, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    arts = _artifacts(locks[Platform.LINUX_X64], Platform.LINUX_X64)
    bad = next(a for a in arts if a.name == "rtdep")
    pkg_server.tamper(bad.filename, b"not the wheel you locked")
    try:
        with pytest.raises(ChecksumError, match=bad.filename):
            download_all(arts, cache, timeout=30)
    finally:
        pkg_server.tamper(bad.filename, None)
    blob = cache.blob_path(WHEELS_SECTION, bad.sha256, bad.filename)
    assert not blob.exists()
    assert not blob.parent.exists() or not [
        p for p in blob.parent.iterdir() if not p.name.endswith(".lock")
    ]
    # The next run fetches the real bytes.
    assert download_all(arts, cache, timeout=30)[bad.filename].is_file()


def test_offline_uses_only_the_cache(locks: dict[Platform, Lock], tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    arts = _artifacts(locks[Platform.LINUX_X64], Platform.LINUX_X64)
    with pytest.raises(FetchError, match="offline"):
        download_all(arts, cache, offline=True)
    download_all(arts, cache)
    assert set(download_all(arts, cache, offline=True)) == {a.filename for a in arts}


def test_one_filename_with_two_hashes_is_an_error(tmp_path: Path) -> None:
    a = Artifact("x", "1", "x-1-py3-none-any.whl", "https://e/x", "0" * 64, "wheel")
    b = Artifact("x", "1", "x-1-py3-none-any.whl", "https://f/x", "1" * 64, "wheel")
    with pytest.raises(LockError, match="two different sha256"):
        download_all([a, b], Cache(tmp_path))
