"""Fetching portable Pythons: index lookup, mirrors, verified cached downloads, safe extraction.

Everything runs against a loopback server and a PBS-shaped archive made from the running
interpreter; nothing here touches the internet.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from runenv._cache import Cache
from runenv.errors import ChecksumError, FetchError, RunenvError, UnsafeArchiveError, UsageError
from runenv.fetch import download, pbs_index, python
from runenv.fetch.download import FetchOptions, fetch_to_cache, redact
from runenv.fetch.extract import extract_tar, extract_tar_apart
from runenv.fetch.python import (
    PinnedArchive,
    PythonSource,
    fetch_many,
    fetch_python,
    resolve,
    unpack,
)
from runenv.platforms import ALL_PLATFORMS, Platform, host_platform
from support.http import (
    Fault,
    LoopbackServer,
    dribble,
    drop_after,
    redirect,
    slow,
    stall,
    status,
    wrong_bytes,
)
from support.pbs import (
    PBS_TAG,
    PY_VERSION,
    PY_XY,
    device,
    fifo,
    file,
    folder,
    hardlink,
    make_pbs_archive,
    pbs_filename,
    symlink,
    write_pbs_copy,
    write_tar,
)

HOST = host_platform()
ARCHIVE = "python.tar.gz"


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "BACKOFF_BASE", 0.01)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


# What the download tests fetch: 1 MiB of incompressible bytes, which a download cut, resumed
# or retried at any offset must give back exactly. Only the tests that unpack and run what they
# fetch take the PBS-shaped archive (`served_python`): building it is what made the others e2e.
PAYLOAD = random.Random(20).randbytes(1 << 20)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def write_payload(folder: Path, name: str = ARCHIVE) -> tuple[Path, str]:
    """PAYLOAD written to `folder/name`; (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(PAYLOAD)
    return folder / name, PAYLOAD_SHA256


@pytest.fixture
def served(loopback: LoopbackServer) -> tuple[str, str]:
    """(url, sha256) of PAYLOAD on the loopback server."""
    _, sha = write_payload(www(loopback))
    return loopback.url_for(ARCHIVE), sha


@pytest.fixture
def served_python(loopback: LoopbackServer, pbs: tuple[Path, str]) -> tuple[str, str]:
    """(url, sha256) of the PBS-shaped archive on the loopback server."""
    _, sha = make_pbs_archive(www(loopback), ARCHIVE)
    return loopback.url_for(ARCHIVE), sha


def www(server: LoopbackServer) -> Path:
    assert server.root is not None
    return server.root


def cached_files(cache: Cache) -> list[Path]:
    """Every file in the cache but its CACHEDIR.TAG."""
    if not cache.root.exists():
        return []
    return [p for p in cache.root.rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"]


def fetch_served(cache: Cache, served: tuple[str, str]) -> None:
    """Fetch the served archive into `cache`; what it gives back has the published sha256."""
    url, sha = served
    path = fetch_to_cache(cache, "python", url, sha, ARCHIVE)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def run_python(tree: Path, code: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [str(tree / "bin" / "python3"), "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


# -- the whole pipeline -------------------------------------------------------------------------


@pytest.mark.skipif(HOST.info.is_windows, reason="POSIX tree layout")
def test_fetched_tree_runs_after_being_moved(
    tmp_path: Path, cache: Cache, served_python: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served_python
    dest = tmp_path / "unpacked" / "python"
    pinned = PinnedArchive(url=url, path=None, sha256=sha)
    assert fetch_python(PY_VERSION, HOST, dest, cache=cache, pinned=pinned) == dest

    python3 = dest / "bin" / "python3"
    assert python3.is_symlink() and os.readlink(python3) == f"python{PY_XY}"
    assert os.access(dest / "bin" / f"python{PY_XY}", os.X_OK)
    assert (dest / "lib" / f"python{PY_XY}" / "site-packages").is_dir()

    moved = tmp_path / "elsewhere" / "runtime"
    moved.parent.mkdir()
    shutil.move(str(dest), str(moved))
    assert not dest.exists()
    assert run_python(moved, "import sys; print(sys.prefix)") == str(moved)
    assert run_python(moved, "import json, sqlite3, ssl; print('ok')") == "ok"
    assert loopback.requests_for(ARCHIVE) == 1


def test_second_fetch_is_served_from_the_cache_without_the_network(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    first = fetch_to_cache(cache, "python", url, sha, ARCHIVE)
    loopback.stop()  # the network is gone: the second fetch must not need it
    second = fetch_to_cache(cache, "python", url, sha, ARCHIVE)
    assert second == first == cache.blob_path("python", sha, ARCHIVE)
    assert loopback.requests_for(ARCHIVE) == 1


# -- flaky servers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [status(500), drop_after(100_000, announce_length=False)],
    ids=["500_then_success", "body_cut_short_without_a_length"],
)
def test_one_failed_answer_is_fetched_again(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer, failure: Fault
) -> None:
    loopback.script(ARCHIVE, failure)
    fetch_served(cache, served)
    assert loopback.requests_for(ARCHIVE) == 2


def test_persistent_5xx_gives_up_after_the_retries(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    loopback.always(ARCHIVE, status(503))
    with pytest.raises(FetchError, match=r"HTTP 503.*|3 attempts") as err:
        fetch_to_cache(cache, "python", url, sha, ARCHIVE, FetchOptions(retries=2))
    assert "3 attempts" in str(err.value) and "503" in str(err.value)
    assert loopback.requests_for(ARCHIVE) == 3
    assert cached_files(cache) == []


def test_dropped_connection_resumes_with_range(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    half = (www(loopback) / ARCHIVE).stat().st_size // 2
    loopback.script(ARCHIVE, drop_after(half))
    fetch_served(cache, served)
    log = loopback.request_log(ARCHIVE)
    assert [r.range for r in log] == [None, f"bytes={half}-"]


def test_dropped_connection_restarts_without_range_support(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    loopback.set_ranges(ARCHIVE, False)
    loopback.script(ARCHIVE, drop_after(1000), drop_after(200_000))
    fetch_served(cache, served)
    assert [r.range for r in loopback.request_log(ARCHIVE)] == [None, None, None]


def test_wrong_bytes_raise_checksum_error_and_cache_nothing(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    loopback.always(ARCHIVE, wrong_bytes())
    with pytest.raises(ChecksumError) as err:
        fetch_to_cache(cache, "python", url, sha, ARCHIVE)
    assert err.value.expected == sha
    assert re.fullmatch(r"[0-9a-f]{64}", err.value.got) and err.value.got != sha
    assert f"expected {sha}, got {err.value.got}" in str(err.value)
    assert not cache.blob_path("python", sha, ARCHIVE).exists()
    assert cached_files(cache) == []
    assert loopback.requests_for(ARCHIVE) == 1  # wrong bytes are not a transient failure


def test_404_is_a_clear_error_at_once(cache: Cache, loopback: LoopbackServer) -> None:
    url = loopback.url_for("missing.tar.gz")
    with pytest.raises(FetchError) as err:
        fetch_to_cache(cache, "python", url, "0" * 64, "missing.tar.gz")
    message = str(err.value)
    assert "\n" not in message
    assert "missing.tar.gz" in message and "HTTP 404" in message and url in message
    assert loopback.requests_for("missing.tar.gz") == 1
    assert cached_files(cache) == []


@pytest.mark.parametrize("fault", [stall(30), stall(30, after=5000)], ids=["silent", "mid-body"])
def test_stalled_server_times_out(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer, fault: Fault
) -> None:
    url, sha = served
    loopback.always(ARCHIVE, fault)
    start = time.perf_counter()
    with pytest.raises(FetchError, match="timed out"):
        fetch_to_cache(cache, "python", url, sha, ARCHIVE, FetchOptions(timeout=1))
    assert time.perf_counter() - start < 3
    assert cached_files(cache) == []


def test_dribbling_server_times_out(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    loopback.always(ARCHIVE, dribble(0.2, nbytes=10))
    start = time.perf_counter()
    with pytest.raises(FetchError, match="timed out"):
        fetch_to_cache(cache, "python", url, sha, ARCHIVE, FetchOptions(timeout=1))
    assert time.perf_counter() - start < 3


def test_redirects_are_followed(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    _, sha = served
    loopback.script("old/place.tar.gz", redirect("/" + ARCHIVE))
    path = fetch_to_cache(cache, "python", loopback.url_for("old/place.tar.gz"), sha, ARCHIVE)
    assert path.is_file()
    assert loopback.requests_for(ARCHIVE) == 1


def test_refused_connection_is_retried_then_reported(cache: Cache) -> None:
    with LoopbackServer() as server:
        url = server.url_for(ARCHIVE)
    with pytest.raises(FetchError, match=r"after 3 attempts.*ConnectError"):
        fetch_to_cache(cache, "python", url, "a" * 64, ARCHIVE, FetchOptions(retries=2))


def test_caller_client_is_used(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    with httpx.Client(headers={"X-Test": "mine"}) as client:
        fetch_to_cache(cache, "python", url, sha, ARCHIVE, FetchOptions(client=client))
        assert not client.is_closed
    assert loopback.request_log(ARCHIVE)[0].headers["x-test"] == "mine"


def test_stale_temp_file_of_a_killed_fetch_is_ignored(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    target = cache.blob_path("python", sha, ARCHIVE)
    target.parent.mkdir(parents=True)
    stale = target.parent / f".tmp-{ARCHIVE}.killed"
    stale.write_bytes(b"half an archive")
    assert fetch_to_cache(cache, "python", url, sha, ARCHIVE) == target
    assert not stale.exists()
    assert loopback.requests_for(ARCHIVE) == 1


# -- local sources ------------------------------------------------------------------------------


def test_file_url_and_plain_path_are_copied_and_verified(
    tmp_path: Path,
) -> None:
    path, sha = write_payload(tmp_path / "local")
    by_url = fetch_to_cache(Cache(tmp_path / "c1"), "python", path.as_uri(), sha, ARCHIVE)
    by_path = fetch_to_cache(Cache(tmp_path / "c2"), "python", str(path), sha, ARCHIVE)
    assert by_url.read_bytes() == by_path.read_bytes() == path.read_bytes()

    with pytest.raises(ChecksumError):
        fetch_to_cache(Cache(tmp_path / "c3"), "python", str(path), "b" * 64, ARCHIVE)
    assert cached_files(Cache(tmp_path / "c3")) == []
    with pytest.raises(FetchError, match="does not exist"):
        fetch_to_cache(Cache(tmp_path / "c4"), "python", str(tmp_path / "nope"), sha, ARCHIVE)


def test_bad_inputs_are_usage_errors(cache: Cache) -> None:
    with pytest.raises(UsageError, match="not a sha256"):
        fetch_to_cache(cache, "python", "http://127.0.0.1:1/x", "abc", "x.tar.gz")
    with pytest.raises(UsageError, match="plain file name"):
        fetch_to_cache(cache, "python", "http://127.0.0.1:1/x", "a" * 64, "../x.tar.gz")
    with pytest.raises(UsageError, match="unsupported URL scheme"):
        fetch_to_cache(cache, "python", "ftp://host/x", "a" * 64, "x.tar.gz")


# -- offline ------------------------------------------------------------------------------------


def test_offline_without_the_entry_says_what_is_missing(
    cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    with pytest.raises(FetchError) as err:
        fetch_to_cache(cache, "python", url, sha, ARCHIVE, FetchOptions(offline=True))
    message = str(err.value)
    assert ARCHIVE in message and sha in message and "--offline" in message
    assert loopback.requests_for(ARCHIVE) == 0


def test_offline_with_the_entry_cached(
    tmp_path: Path, cache: Cache, served_python: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served_python
    pinned = PinnedArchive(url=url, path=None, sha256=sha)
    fetch_to_cache(cache, "python", url, sha, ARCHIVE)
    loopback.stop()
    dest = fetch_python(PY_VERSION, HOST, tmp_path / "rt", cache=cache, pinned=pinned, offline=True)
    assert (dest / "bin" / f"python{PY_XY}").is_file()
    assert loopback.requests_for(ARCHIVE) == 1


# -- concurrency --------------------------------------------------------------------------------

_WORKER = textwrap.dedent("""
    import pathlib, sys, time
    from runenv._cache import Cache
    from runenv.fetch.download import fetch_to_cache
    go, root, url, sha, name = sys.argv[1:]
    while not pathlib.Path(go).exists():
        time.sleep(0.005)
    path = fetch_to_cache(Cache(pathlib.Path(root)), "python", url, sha, name)
    sys.stdout.write(str(path))
""")


def test_four_processes_download_once_and_all_succeed(
    tmp_path: Path, cache: Cache, served: tuple[str, str], loopback: LoopbackServer
) -> None:
    url, sha = served
    loopback.script(ARCHIVE, slow(1.0))  # the first download takes long enough to overlap
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(go), str(cache.root), url, sha, ARCHIVE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let them import and wait at the start line
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, results
    expected = str(cache.blob_path("python", sha, ARCHIVE))
    assert [out for out, _ in results] == [expected] * 4
    assert loopback.requests_for(ARCHIVE) == 1


# -- credentials --------------------------------------------------------------------------------


def test_redact_hides_user_info_and_secret_query_values() -> None:
    assert redact("https://alice:s3cret@mirror.example/pbs/x.tar.gz?token=abc&v=1") == (
        "https://***@mirror.example/pbs/x.tar.gz?token=***&v=1"
    )
    assert redact("https://tok3n@h.example/a") == "https://***@h.example/a"
    assert redact("https://h.example/a") == "https://h.example/a"
    assert redact("/srv/mirror/a.tar.gz") == "/srv/mirror/a.tar.gz"


def test_mirror_credentials_never_appear_in_errors(
    tmp_path: Path, cache: Cache, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_user, secret_pass = "alice-user", "s3cr3t-pass"
    mirror = loopback.url_for("mirror", userinfo=f"{secret_user}:{secret_pass}")
    source = resolve("3.12.10", Platform.LINUX_X64, mirror=mirror)
    assert secret_pass in source.url
    assert secret_pass not in repr(source) and secret_pass not in source.public_url

    messages: list[str] = []
    with pytest.raises(FetchError) as err:  # 404: nothing under the mirror
        python.download(source, cache)
    messages.append(str(err.value))
    with pytest.raises(FetchError) as err:  # offline, not cached
        python.download(source, cache, offline=True)
    messages.append(str(err.value))
    with LoopbackServer() as gone:
        dead = gone.url_for("m", userinfo=f"{secret_user}:{secret_pass}")
    with pytest.raises(FetchError) as err:  # connection refused, after retries
        fetch_to_cache(cache, "python", dead, "c" * 64, "x.tar.gz", FetchOptions(retries=1))
    messages.append(str(err.value))
    loopback.always("mirror/wrong.tar.gz", wrong_bytes(b"nope"))
    loopback.add_file("mirror/wrong.tar.gz", b"real")
    with pytest.raises(ChecksumError) as err:
        fetch_to_cache(cache, "python", mirror + "/wrong.tar.gz", "d" * 64, "wrong.tar.gz")
    messages.append(str(err.value))
    for message in messages:
        assert secret_pass not in message and secret_user not in message, message
        assert "***@127.0.0.1" in message or "not in the cache" in message, message


def test_basic_auth_from_the_url_is_sent(tmp_path: Path, cache: Cache) -> None:
    root = tmp_path / "private"
    _, sha = write_payload(root)
    with LoopbackServer(root, auth=("bob", "hunter2-xyz")) as server:
        with pytest.raises(FetchError, match="HTTP 401") as err:
            fetch_to_cache(
                cache, "python", server.url_for(ARCHIVE, userinfo="bob:wrong-pw"), sha, ARCHIVE
            )
        assert "wrong-pw" not in str(err.value)
        good = server.url_for(ARCHIVE, userinfo="bob:hunter2-xyz")
        assert fetch_to_cache(cache, "python", good, sha, ARCHIVE).is_file()


# -- hostile archives ---------------------------------------------------------------------------

_BASE = [folder("python"), folder("python/bin"), file("python/bin/tool", b"#!/bin/sh\n", 0o755)]
HOSTILE = {
    "dotdot": [*_BASE, file("python/../../evil.txt")],
    "dotdot-top": [*_BASE, file("../evil.txt")],
    "absolute": [*_BASE, file("/tmp/runenv-evil-absolute.txt")],
    "symlink-to-etc": [*_BASE, symlink("python/etc", "/etc")],
    "symlink-up": [*_BASE, symlink("python/bin/up", "../../..")],
    "write-through-symlink": [*_BASE, symlink("python/lib", "bin"), file("python/lib/x")],
    "symlink-chain": [
        *_BASE,
        symlink("python/bin/root", ".."),
        symlink("python/out", "bin/root/.."),
    ],
    "hardlink-absolute": [*_BASE, hardlink("python/passwd", "/etc/passwd")],
    "hardlink-outside": [*_BASE, hardlink("python/x", "python/../../outside.txt")],
    "hardlink-to-symlink": [
        *_BASE,
        symlink("python/s", "bin/tool"),
        hardlink("python/h", "python/s"),
    ],
    "device": [*_BASE, device("python/dev0")],
    "fifo": [*_BASE, fifo("python/pipe")],
    "not-under-python": [*_BASE, file("other/file")],
}
NAMED = {
    "dotdot": "python/../../evil.txt",
    "dotdot-top": "../evil.txt",
    "absolute": "/tmp/runenv-evil-absolute.txt",
    "symlink-to-etc": "python/etc",
    "symlink-up": "python/bin/up",
    "write-through-symlink": "python/lib/x",
    "symlink-chain": "out",
    "hardlink-absolute": "python/passwd",
    "hardlink-outside": "python/x",
    "hardlink-to-symlink": "python/h",
    "device": "python/dev0",
    "fifo": "python/pipe",
    "not-under-python": "other/file",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    archive, _ = write_tar(tmp_path / "evil.tar.gz", HOSTILE[case])
    out = tmp_path / "work" / "out"
    dest = out / "python"
    with pytest.raises(UnsafeArchiveError) as err:
        unpack(archive, dest)
    assert NAMED[case] in str(err.value)
    assert not dest.exists()
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "work"]
    assert not Path("/tmp/runenv-evil-absolute.txt").exists()


def test_hostile_archive_through_the_pipeline(tmp_path: Path, cache: Cache) -> None:
    archive, sha = write_tar(tmp_path / "evil.tar.gz", HOSTILE["symlink-to-etc"])
    pinned = PinnedArchive(url=None, path=archive, sha256=sha)
    dest = tmp_path / "out" / "python"
    with pytest.raises(UnsafeArchiveError, match="python/etc"):
        fetch_python(PY_VERSION, HOST, dest, cache=cache, pinned=pinned)
    assert list((tmp_path / "out").iterdir()) == []


def test_benign_archive_keeps_modes_and_in_tree_links(tmp_path: Path) -> None:
    archive, _ = write_tar(
        tmp_path / "ok.tar.gz",
        [
            *_BASE,
            symlink("python/bin/tool3", "tool"),
            folder("python/lib"),
            file("python/lib/data.txt", b"data"),
            symlink("python/lib/up", ".."),
            hardlink("python/lib/tool-copy", "python/bin/tool"),
            file("./python/./lib/dotted.txt", b"dot"),
        ],
    )
    dest = extract_tar(archive, tmp_path / "out")
    assert os.access(dest / "bin" / "tool", os.X_OK)
    assert not os.access(dest / "lib" / "data.txt", os.X_OK)
    assert os.readlink(dest / "bin" / "tool3") == "tool"
    assert (dest / "lib" / "up" / "bin" / "tool").is_file()
    assert (dest / "lib" / "tool-copy").read_bytes() == b"#!/bin/sh\n"
    assert (dest / "lib" / "dotted.txt").read_bytes() == b"dot"
    assert (dest.stat().st_mode & 0o777) == 0o755


def test_archive_read_in_one_pass_whatever_its_compression(tmp_path: Path) -> None:
    """Extraction streams the archive once: a gzip of several members (as runenv's own archives
    are, and which tarfile's stream mode would cut short), bzip2 and xz all extract whole."""
    entries = [*_BASE, folder("python/lib"), file("python/lib/big.bin", bytes(range(256)) * 4096)]
    plain, _ = write_tar(tmp_path / "one.tar.gz", entries)
    raw = gzip.decompress(plain.read_bytes())
    half = len(raw) // 2
    archives = {
        "members.tar.gz": gzip.compress(raw[:half]) + gzip.compress(raw[half:]),
        "one.tar.bz2": bz2.compress(raw),
        "one.tar.xz": lzma.compress(raw),
        "one.tar": raw,
    }
    for name, data in archives.items():
        (tmp_path / name).write_bytes(data)
        dest = extract_tar(tmp_path / name, tmp_path / f"out-{name}")
        assert (dest / "lib" / "big.bin").read_bytes() == bytes(range(256)) * 4096, name
        assert (dest / "bin" / "tool").read_bytes() == b"#!/bin/sh\n", name


def test_replacing_an_existing_tree_is_atomic(tmp_path: Path) -> None:
    good, _ = write_tar(tmp_path / "good.tar.gz", _BASE)
    dest = extract_tar(good, tmp_path / "out")
    (dest / "marker").write_text("old")
    evil, _ = write_tar(tmp_path / "evil.tar.gz", HOSTILE["dotdot"])
    with pytest.raises(UnsafeArchiveError):
        extract_tar(evil, dest)
    assert (dest / "marker").read_text() == "old"  # the refused archive changed nothing
    extract_tar(good, dest)
    assert not (dest / "marker").exists()


def test_corrupt_archive_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(Exception, match="cannot extract") as err:
        extract_tar(bad, tmp_path / "out")
    assert not isinstance(err.value, tarfile.TarError)
    assert not (tmp_path / "out").exists()


def test_extraction_in_a_process_of_its_own_keeps_its_errors(tmp_path: Path) -> None:
    """The build unpacks PBS in a child process (`extract_tar_apart`): same tree, same errors,
    each still one line naming the entry, and nothing left behind."""
    good, _ = write_tar(tmp_path / "good.tar.gz", [*_BASE, file("python/lib/x.txt", b"x")])
    dest = extract_tar_apart(good, tmp_path / "out")
    assert (dest / "lib" / "x.txt").read_bytes() == b"x"
    assert os.access(dest / "bin" / "tool", os.X_OK)
    evil, _ = write_tar(tmp_path / "evil.tar.gz", HOSTILE["symlink-to-etc"])
    with pytest.raises(UnsafeArchiveError, match=r"^evil\.tar\.gz: refused symlink .*python/etc"):
        extract_tar_apart(evil, tmp_path / "evil-out")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(RunenvError, match=r"^bad\.tar\.gz: cannot extract") as err:
        extract_tar_apart(bad, tmp_path / "bad-out")
    assert not isinstance(err.value, UnsafeArchiveError)
    assert not (tmp_path / "evil-out").exists() and not (tmp_path / "bad-out").exists()


# -- resolving from the real index --------------------------------------------------------------

UPSTREAM = "https://github.com/astral-sh/python-build-standalone/releases/download"


@pytest.mark.parametrize("platform", ALL_PLATFORMS, ids=str)
def test_resolve_3_12_10_from_the_pbs_installer_index(platform: Platform) -> None:
    source = resolve("3.12.10", platform)
    assert source.version == "3.12.10" and source.platform is platform
    assert source.filename.startswith("cpython-3.12.10+")
    assert source.filename.endswith(f"-{platform.info.pbs_triple}-install_only_stripped.tar.gz")
    assert re.fullmatch(r"[0-9a-f]{64}", source.sha256)
    assert source.url.startswith(UPSTREAM + "/")
    assert source.url.endswith(source.filename.replace("+", "%2B"))


def test_unknown_version_names_the_nearest_ones() -> None:
    have = sorted(v for v in pbs_index.load() if v[:2] == (3, 12))
    newest = ".".join(map(str, have[-1]))
    with pytest.raises(UsageError) as err:
        resolve("3.12.99", Platform.LINUX_X64)
    message = str(err.value)
    assert "3.12.99" in message and "linux-x64" in message and newest in message
    with pytest.raises(UsageError, match=r"3\.\d+\.\d+"):
        resolve("3.99.0", Platform.LINUX_X64)
    with pytest.raises(UsageError, match=r"X\.Y\.Z"):
        resolve("3.12", Platform.LINUX_X64)


def test_mirror_replaces_the_release_prefix(tmp_path: Path) -> None:
    upstream = resolve("3.12.10", Platform.MACOSX_AARCH64)
    tag_and_file = upstream.url[len(UPSTREAM) + 1 :]
    assert re.fullmatch(r"\d{8}/cpython-3\.12\.10%2B\d{8}-aarch64-apple-darwin-.*", tag_and_file)
    for mirror in ("https://mirror.example/pbs", "https://mirror.example/pbs/"):
        source = resolve("3.12.10", Platform.MACOSX_AARCH64, mirror=mirror)
        assert source.url == "https://mirror.example/pbs/" + tag_and_file
        assert (source.sha256, source.filename) == (upstream.sha256, upstream.filename)
    as_file = resolve("3.12.10", Platform.MACOSX_AARCH64, mirror=tmp_path.as_uri())
    assert as_file.url == tmp_path.as_uri() + "/" + tag_and_file
    as_dir = resolve("3.12.10", Platform.MACOSX_AARCH64, mirror=str(tmp_path))
    assert as_dir.url == str(tmp_path / tag_and_file.split("/")[0] / upstream.filename)


def test_pinned_archive_wins(tmp_path: Path) -> None:
    pinned = PinnedArchive(
        url="https://in.house/builds/cp-3.12.10-linux.tar.gz", path=None, sha256="E" * 64
    )
    source = resolve("3.12.10", Platform.LINUX_X64, mirror="https://m.example", pinned=pinned)
    assert source == PythonSource(
        "3.12.10", Platform.LINUX_X64, pinned.url or "", "e" * 64, "cp-3.12.10-linux.tar.gz"
    )
    by_path = resolve(
        "3.9.99",
        Platform.LINUX_X64,
        pinned=PinnedArchive(url=None, path=tmp_path / "a.tar.gz", sha256="f" * 64),
    )
    assert by_path.url == str(tmp_path / "a.tar.gz") and by_path.filename == "a.tar.gz"
    with pytest.raises(UsageError):
        PinnedArchive(url=None, path=None, sha256="f" * 64)
    with pytest.raises(UsageError):
        PinnedArchive(url="https://x/y.tar.gz", path=None, sha256="nope")


# -- mirrors end to end, with an index entry that points at the test archive -------------------


@pytest.fixture
def fake_index(monkeypatch: pytest.MonkeyPatch, pbs: tuple[Path, str]) -> dict[Platform, str]:
    """Make the index list the test archive for PY_VERSION on the host and on linux-aarch64."""
    _, sha = pbs
    files = {}
    names = {}
    for platform in dict.fromkeys([HOST, Platform.LINUX_AARCH64]):
        info = platform.info
        name = pbs_filename(PY_VERSION, info.pbs_triple, PBS_TAG)
        url = f"{UPSTREAM}/{PBS_TAG}/{name.replace('+', '%2B')}"
        files[(info.os, info.arch)] = pbs_index.IndexEntry(url, name, sha)
        names[platform] = name
    key = tuple(int(p) for p in PY_VERSION.split("."))
    monkeypatch.setattr(pbs_index, "load", lambda: {key: files})
    return names


@pytest.mark.parametrize("kind", ["http", "file-url", "directory"])
def test_mirror_end_to_end(
    tmp_path: Path,
    cache: Cache,
    loopback: LoopbackServer,
    fake_index: dict[Platform, str],
    kind: str,
) -> None:
    write_pbs_copy(www(loopback) / "pbs" / PBS_TAG)
    mirror = {
        "http": loopback.url_for("pbs"),
        "file-url": (www(loopback) / "pbs").as_uri(),
        "directory": str(www(loopback) / "pbs"),
    }[kind]
    dest = fetch_python(PY_VERSION, HOST, tmp_path / "rt", cache=cache, mirror=mirror)
    assert (dest / "bin" / f"python{PY_XY}").is_file()
    assert cache.blob_path("python", resolve(PY_VERSION, HOST).sha256, fake_index[HOST]).is_file()
    served = loopback.requests_for(f"pbs/{PBS_TAG}/{fake_index[HOST]}")
    assert served == (1 if kind == "http" else 0)


def test_fetch_many_runs_platforms_concurrently_over_one_client(
    tmp_path: Path, cache: Cache, loopback: LoopbackServer, fake_index: dict[Platform, str]
) -> None:
    for name in fake_index.values():
        make_pbs_archive(www(loopback) / "pbs" / PBS_TAG, name)
        loopback.script(f"pbs/{PBS_TAG}/{name}", slow(0.5))
    targets = {p: tmp_path / "out" / p.value for p in fake_index}
    result = fetch_many(PY_VERSION, targets, cache=cache, mirror=loopback.url_for("pbs"))
    assert result == targets
    for dest in targets.values():
        assert (dest / "bin" / f"python{PY_XY}").is_file()
    arrivals = [r.at for r in loopback.request_log()]
    assert len(arrivals) == len(targets)
    assert max(arrivals) - min(arrivals) < 0.4  # each asked before the other's slow answer

    with pytest.raises(UsageError, match=r"3\.12\.99"):  # resolved up front: nothing fetched
        fetch_many("3.12.99", targets, cache=Cache(tmp_path / "c2"))
    assert not (tmp_path / "c2").exists()
