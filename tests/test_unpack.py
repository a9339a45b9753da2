"""The catalogue's install on every core (`runenv_catalogue._unpack`), on real archives packed by
runenv: the tree is the one `tar xzf` gives, file by file, from one archive or from parts cut
through members; a corrupted member, a truncated part and a SIGKILLed install leave nothing a
later call trusts; a plain `tar czf` archive still installs, on one inflating thread; memory
stays bounded for a member of any size."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runenv.artifact.pack import MEMBER_SIZE, pack_tree, write_gzip_members
from runenv.platforms import host_platform
from support.http import LoopbackServer, drop_after, stall

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "catalogue" / "src"))

from runenv_catalogue import (  # noqa: E402
    Catalogue,
    CatalogueError,
    ChecksumMismatch,
    _unpack,
)
from runenv_catalogue._unpack import member_info, safe_extract  # noqa: E402

HOST = host_platform().value
LONG = "a-rather-long-folder-name-" * 5  # a path over 100 bytes: a PAX header


def _data(size: int, seed: int) -> bytes:
    """Text that compresses, noise that does not, in runs."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if rng.randrange(2):
            words = (rng.choice([b"import", b"numpy", b"def", b"return"]) for _ in range(3000))
            out += b" ".join(words)
        else:
            out += rng.randbytes(rng.randrange(1000, 200_000))
    return bytes(out[:size])


def make_tree(root: Path) -> Path:
    """A runtime-like tree of about 3 members: folders, executables, symlinks, a hard link,
    an empty file and folder, a long and a non-ASCII name."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python3.12").write_bytes(b"#!/bin/sh\necho python\n" + _data(300_000, 1))
    (root / "bin" / "python3.12").chmod(0o755)
    (root / "bin" / "python3").symlink_to("python3.12")
    lib = root / "lib" / "python3.12"
    (lib / "site-packages" / "pkg").mkdir(parents=True)
    (lib / "site-packages" / "pkg" / "big.so").write_bytes(_data(MEMBER_SIZE + 123_457, 2))
    (lib / "site-packages" / "pkg" / "data.bin").write_bytes(_data(2 * MEMBER_SIZE, 3))
    (lib / "site-packages" / "pkg" / "__init__.py").write_text("x = 1\n" * 1000)
    os.link(lib / "site-packages" / "pkg" / "__init__.py", lib / "site-packages" / "pkg" / "h.py")
    (lib / "site-packages" / "pkg" / "empty.txt").write_bytes(b"")
    (lib / "site-packages" / "pkg" / "ünïcode.txt").write_text("ü\n")
    (lib / "empty-folder").mkdir()
    (lib / LONG).mkdir()
    (lib / LONG / "deep.txt").write_text("deep\n")
    (lib / "site-packages" / "link-to-pkg").symlink_to("pkg")
    return root


def listing(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[Any, ...]]:
    """Every path: kind, permission bits, mtime (not a symlink's), content or link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("symlink", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", oct(st.st_mode & 0o7777), int(st.st_mtime))
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = ("file", oct(st.st_mode & 0o7777), int(st.st_mtime), digest)
    return out


def tar_xzf(archive: Path, out: Path) -> dict[str, tuple[Any, ...]]:
    out.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(out)], check=True)
    return listing(out)


def members(blob: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, length, inflated size) of each member, from their headers alone."""
    offset = 0
    while offset < len(blob):
        info = member_info(blob[offset : offset + 64])
        assert info is not None, f"no member field at {offset}"
        yield offset, *info
        offset += info[0]
    assert offset == len(blob)


def catalogue(url: str, blob: bytes, parts: list[dict[str, Any]] | None = None) -> Catalogue:
    entry: dict[str, Any] = {
        "url": url,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "python_version": "3.12.0",
        "interpreter": "bin/python3",
        "site_packages": "lib/python3.12/site-packages",
        "packages": [],
    }
    if parts:
        entry["parts"] = parts
    return Catalogue({"schema_version": 1, "version": "1", "variants": {"v": {HOST: entry}}})


def cut(blob: bytes, folder: Path, cuts: list[int]) -> list[dict[str, Any]]:
    """`blob` in parts ending at each of `cuts` (and at its end), as a catalogue lists them."""
    folder.mkdir()
    parts = []
    for i, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(blob)], strict=True)):
        path = folder / f"a.tar.gz.part{i:03d}"
        path.write_bytes(blob[start:end])
        digest = hashlib.sha256(blob[start:end]).hexdigest()
        parts.append({"url": path.as_uri(), "size": end - start, "sha256": digest})
    return parts


class Spy:
    """What the pipeline was given: the inflated size of each member started (None for the
    rest of a stream without member fields, inflated on one thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int | None] = []
        start = _unpack._Pipeline._start

        def spy(pipeline: Any, size: int | None) -> Any:
            self.sizes.append(size)
            return start(pipeline, size)

        monkeypatch.setattr(_unpack._Pipeline, "_start", spy)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("packed")
    archive = root / "a.tar.gz"
    pack_tree(make_tree(root / "tree"), archive)
    return archive, archive.read_bytes()


def installed_root(cache: Path) -> Path:
    return next(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_members_are_found_from_their_headers_and_inflated_in_parallel(
    packed: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, blob = packed
    found = list(members(blob))
    assert len(found) >= 4  # the blocks of 4 MiB, each a member with its field
    spy = Spy(monkeypatch)
    cat = catalogue(archive.as_uri(), blob)
    python = cat.install("v", cache_dir=tmp_path / "cache")
    assert spy.sizes == [size for _, _, size in found]  # every member a job of its own
    root = installed_root(tmp_path / "cache")
    assert python == root / "bin" / "python3" and cat.which("v", cache_dir=tmp_path / "cache")
    expected = tar_xzf(archive, tmp_path / "tar")
    assert listing(root, frozenset({".provisioned"})) == expected
    assert len(expected) == 17 and expected["bin/python3"] == ("symlink", "python3.12")
    # Any number of threads, one included, gives the same tree.
    one = tmp_path / "one"
    _unpack.unpack(iter([blob]), one, "a.tar.gz", threads=1)
    assert listing(one) == expected


def test_parts_cut_through_members_install_the_same_tree(
    packed: tuple[Path, bytes], tmp_path: Path
) -> None:
    archive, blob = packed
    offset, length, _ = list(members(blob))[1]
    # One cut inside a member's header, one inside its deflate data, one a byte from its end.
    cuts = [offset + 5, offset + length // 2, offset + length - 1]
    parts = cut(blob, tmp_path / "parts", cuts)
    cat = catalogue(parts[0]["url"], blob, parts)
    cat.install("v", cache_dir=tmp_path / "cache")
    got = listing(installed_root(tmp_path / "cache"), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")


def _nothing_trusted(cat: Catalogue, cache: Path) -> None:
    assert cat.which("v", cache_dir=cache) is None
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_a_corrupted_member_installs_nothing(packed: tuple[Path, bytes], tmp_path: Path) -> None:
    blob = packed[1]
    offset, length, _ = list(members(blob))[2]
    bad = bytearray(blob)
    bad[offset + length // 2] ^= 0x55  # inside the deflate data of the third member
    served = tmp_path / "bad.tar.gz"
    served.write_bytes(bytes(bad))
    # The catalogue's sha256 is the good archive's: the bytes are not the catalogue's.
    cat = catalogue(served.as_uri(), blob)
    with pytest.raises(ChecksumMismatch, match=r"sha256 mismatch.*nothing was installed"):
        cat.install("v", cache_dir=tmp_path / "c1")
    _nothing_trusted(cat, tmp_path / "c1")
    # A bad archive catalogued as it is (its sha256 matches): the member's data or its CRC-32
    # is wrong, and still nothing is installed.
    cat = catalogue(served.as_uri(), bytes(bad))
    with pytest.raises(CatalogueError, match="cannot unpack"):
        cat.install("v", cache_dir=tmp_path / "c2")
    _nothing_trusted(cat, tmp_path / "c2")
    # A member whose header says more than it holds.
    info = bytearray(blob)
    info[offset + 16] ^= 0x01  # the length field's lowest byte
    served.write_bytes(bytes(info))
    cat = catalogue(served.as_uri(), bytes(info))
    with pytest.raises(CatalogueError, match="cannot unpack"):
        cat.install("v", cache_dir=tmp_path / "c3")
    _nothing_trusted(cat, tmp_path / "c3")


def test_a_truncated_part_installs_nothing(packed: tuple[Path, bytes], tmp_path: Path) -> None:
    blob = packed[1]
    offset, length, _ = list(members(blob))[1]
    parts = cut(blob, tmp_path / "parts", [offset + length // 2])
    cat = catalogue(parts[0]["url"], blob, parts)
    first = Path(parts[0]["url"].removeprefix("file://"))
    first.write_bytes(first.read_bytes()[:-1000])  # cut short inside a member
    with pytest.raises(ChecksumMismatch, match=r"part 1 of 2 .*nothing was installed"):
        cat.install("v", cache_dir=tmp_path / "cache")
    _nothing_trusted(cat, tmp_path / "cache")
    # The last part cut short: the stream ends inside the last member.
    first.write_bytes(blob[: offset + length // 2])
    last = Path(parts[1]["url"].removeprefix("file://"))
    last.write_bytes(blob[offset + length // 2 : -10])
    with pytest.raises(ChecksumMismatch, match=r"part 2 of 2 .*nothing was installed"):
        cat.install("v", cache_dir=tmp_path / "cache")
    _nothing_trusted(cat, tmp_path / "cache")


def test_a_download_dropped_inside_a_member_resumes_where_it_stopped(
    packed: tuple[Path, bytes], tmp_path: Path
) -> None:
    archive, blob = packed
    offset, length, _ = list(members(blob))[1]
    with LoopbackServer() as server:
        url = server.add_file("/a.tar.gz", blob)
        server.set_ranges("/a.tar.gz", True)
        server.script("/a.tar.gz", drop_after(offset + length // 2))  # once
        cat = catalogue(url, blob)
        cat.install("v", cache_dir=tmp_path / "cache")
        ranges = [r.range for r in server.request_log("/a.tar.gz")]
    assert ranges == [None, f"bytes={offset + length // 2}-"]  # the rest, not all again
    got = listing(installed_root(tmp_path / "cache"), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")


KILLED = """
import sys
from pathlib import Path
from runenv_catalogue import Catalogue
Catalogue.load(Path(sys.argv[1])).install("v", cache_dir=Path(sys.argv[2]))
"""


def test_a_killed_install_is_not_trusted_and_the_next_one_redoes_it(
    packed: tuple[Path, bytes], tmp_path: Path
) -> None:
    archive, blob = packed
    offset = list(members(blob))[2][0]
    cache = tmp_path / "cache"
    with LoopbackServer() as server:
        url = server.add_file("/a.tar.gz", blob)
        # The first request sends two members' worth, then says nothing for a long while.
        server.script("/a.tar.gz", stall(120, after=offset + 100))
        doc = catalogue(url, blob)
        cat_file = tmp_path / "catalogue.json"
        entry = doc.entry("v", HOST)
        raw = {
            "url": url,
            "sha256": entry.sha256,
            "size": entry.size,
            "python_version": "3.12.0",
            "interpreter": "bin/python3",
            "site_packages": "lib/python3.12/site-packages",
            "packages": [],
        }
        cat_file.write_text(
            json.dumps({"schema_version": 1, "version": "1", "variants": {"v": {HOST: raw}}})
        )
        env = {**os.environ, "PYTHONPATH": str(REPO / "catalogue" / "src")}
        proc = subprocess.Popen([sys.executable, "-c", KILLED, str(cat_file), str(cache)], env=env)
        try:
            # Wait (not a timed assertion: a deadline for a hung test) until the stalled
            # install has written part of the tree into its staging folder.
            deadline = time.monotonic() + 120
            while not any(cache.glob(".tmp-*/tree/lib/python3.12/site-packages/pkg/*")):
                assert proc.poll() is None, "the install ended before it was killed"
                assert time.monotonic() < deadline, "the install never started writing"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert list(cache.glob(".tmp-*")), "the killed install's staging folder is left"
        assert doc.which("v", cache_dir=cache) is None  # nothing a later call trusts
        doc.install("v", cache_dir=cache)  # the server answers normally now
    assert doc.which("v", cache_dir=cache) is not None
    assert not list(cache.glob(".tmp-*"))  # swept
    got = listing(installed_root(cache), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")


def test_a_plain_tar_czf_archive_installs_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree")
    archive = tmp_path / "plain.tar.gz"
    subprocess.run(["tar", "czf", str(archive), "-C", str(tree), "."], check=True)
    blob = archive.read_bytes()
    assert member_info(blob[:64]) is None
    spy = Spy(monkeypatch)
    cat = catalogue(archive.as_uri(), blob)
    cat.install("v", cache_dir=tmp_path / "cache")
    assert spy.sizes == [None]  # the whole stream, one job
    got = listing(installed_root(tmp_path / "cache"), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")
    # Several plain members back to back (as `pigz` or `cat a.gz b.gz` make), zero padding
    # after the last (which gzip allows): one stream too.
    raw = gzip.decompress(blob)
    cut_at = len(raw) // 3
    several = gzip.compress(raw[:cut_at], mtime=0) + gzip.compress(raw[cut_at:], mtime=0)
    safe_extract_from = tmp_path / "several.tar.gz"
    safe_extract_from.write_bytes(several + bytes(1024))
    safe_extract(safe_extract_from, tmp_path / "several", "several.tar.gz")
    assert listing(tmp_path / "several") == listing(tmp_path / "tar")


def test_memory_stays_bounded_for_a_member_of_any_size(tmp_path: Path) -> None:
    size = 96 << 20
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("bin/python3")
        info.size = size
        tf.addfile(info, io.BytesIO(bytes(size)))
    stream = tar.getvalue()
    out = io.BytesIO()
    write_gzip_members(iter([stream]), out, block_size=len(stream))  # one member
    blob = out.getvalue()
    assert len(list(members(blob))) == 1
    del stream, tar, out

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(blob), 1 << 20):
            yield blob[i : i + (1 << 20)]

    tracemalloc.start()
    try:
        _unpack.unpack(chunks(), tmp_path / "tree", "big.tar.gz", threads=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "tree" / "bin" / "python3").stat().st_size == size
    assert peak < 48 << 20, peak  # pieces of 4 MiB queued, never the member's 96 MiB
