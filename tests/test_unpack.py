"""The catalogue's install on every core (`runenv_catalogue._unpack` and its stages), on real
archives packed by runenv: the tree is the one `tar xzf` gives, file by file, from one archive or
from parts cut through members; a corrupted member, a truncated part and a SIGKILLed install
leave nothing a later call trusts; a plain `tar czf` archive still installs, on one inflating
thread; memory stays bounded for a member of any size."""

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
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runenv_catalogue import (
    Catalogue,
    CatalogueError,
    ChecksumMismatch,
    UnsafeArchiveError,
    _files,
    _pipeline,
    _unpack,
    _ustar,
)
from runenv_catalogue._members import FIRST_PIECE, PIECE, member_info
from runenv_catalogue._shared.tar_rules import Planner, clean_name
from runenv_catalogue._unpack import safe_extract

from runenv.artifact.pack import MEMBER_SIZE, pack_tree, write_gzip_members
from runenv.platforms import host_platform
from support.http import LoopbackServer, drop_after, stall

REPO = Path(__file__).resolve().parents[1]


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
        self.groups: list[int | None] = []  # how many whole members each job was
        self.pieces: list[int] = []  # the most each job inflates in one call
        start = _pipeline.Pipeline._start

        def spy(pipeline: Any, size: int | None, group: Any = None, piece: int = PIECE) -> Any:
            self.sizes.append(size)
            self.groups.append(None if group is None else len(group))
            self.pieces.append(piece)
            return start(pipeline, size, group, piece)

        monkeypatch.setattr(_pipeline.Pipeline, "_start", spy)


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
    # The first streamed in small pieces (the tree's first entries wait for it), the rest whole.
    assert spy.pieces[0] == FIRST_PIECE and spy.groups[0] is None
    assert spy.groups[1:] == [1] * (len(found) - 1)
    root = installed_root(tmp_path / "cache")
    assert python == root / "bin" / "python3" and cat.which("v", cache_dir=tmp_path / "cache")
    expected = tar_xzf(archive, tmp_path / "tar")
    assert listing(root, frozenset({".provisioned"})) == expected
    assert len(expected) == 17 and expected["bin/python3"] == ("symlink", "python3.12")
    # Any number of threads, one included, gives the same tree.
    one = tmp_path / "one"
    _unpack.unpack(io.BytesIO(blob), one, "a.tar.gz", threads=1)
    assert listing(one) == expected


def test_small_members_are_inflated_in_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Members of 64 KiB (as a runtime's wheel files mostly are): a job per member spent more
    # time handing members between threads than inflating them; groups of about 4 MiB do not.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        # The folder's own entry: a folder made for its files has the time it was made as its
        # mtime, which tar's and ours need not share (a second may tick between them).
        tf.addfile(_entry("d", tarfile.DIRTYPE, mode=0o755))
        for i in range(40):
            data = _data(300_000, i)
            info = tarfile.TarInfo(f"d/f{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    write_gzip_members(iter([raw.getvalue()]), out, block_size=64 << 10)
    blob = out.getvalue()
    found = list(members(blob))
    spy = Spy(monkeypatch)
    _unpack.unpack(io.BytesIO(blob), tmp_path / "ours", "a.tar.gz", threads=2)
    assert sum(spy.sizes) == sum(size for _, _, size in found)  # type: ignore[arg-type]
    assert spy.groups[0] is None and 1 + sum(spy.groups[1:]) == len(found)  # type: ignore[arg-type]
    assert 2 < len(spy.sizes) < len(found) // 10
    assert all(size < _pipeline.GROUP + (64 << 10) for size in spy.sizes)  # type: ignore[operator]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(blob)
    assert listing(tmp_path / "ours") == tar_xzf(archive, tmp_path / "tar")


def test_the_first_member_comes_out_in_small_pieces(packed: tuple[Path, bytes]) -> None:
    # The tree's first entries wait for the first member: a 4 MiB member inflated in one call
    # kept the reading thread idle for 30-45 ms.
    blob = packed[1]
    first = next(members(blob))[2]
    assert first > 4 * FIRST_PIECE
    pipeline = _pipeline.Pipeline(io.BytesIO(blob), 2, "a.tar.gz")
    sizes = [len(piece) for piece in pipeline.pieces()]
    assert pipeline.close(drain=False) is None
    count, total = 0, 0
    while total < first:  # the first member's pieces: none larger than FIRST_PIECE
        assert sizes[count] <= FIRST_PIECE
        total, count = total + sizes[count], count + 1
    assert total == first and count >= first // FIRST_PIECE
    assert sum(sizes) == sum(size for _, _, size in members(blob))


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
    # Good deflate data, a wrong CRC-32 or size in its trailer: caught as gzip catches it.
    for at in (offset + length - 8, offset + length - 1):
        trailer = bytearray(blob)
        trailer[at] ^= 0x01
        served.write_bytes(bytes(trailer))
        cat = catalogue(served.as_uri(), bytes(trailer))
        with pytest.raises(CatalogueError, match="does not match its CRC-32 and size"):
            cat.install("v", cache_dir=tmp_path / "c4")
        _nothing_trusted(cat, tmp_path / "c4")
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

    tracemalloc.start()
    try:
        _unpack.unpack(io.BytesIO(blob), tmp_path / "tree", "big.tar.gz", threads=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "tree" / "bin" / "python3").stat().st_size == size
    assert peak < 48 << 20, peak  # pieces of 4 MiB queued, never the member's 96 MiB


# --- the tree written by threads --------------------------------------------------------------

ATTRS = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "devmajor", "devminor")


def _fields(info: tarfile.TarInfo) -> tuple[object, ...]:
    return tuple(getattr(info, a) for a in ATTRS)


def _headers(fmt: int) -> list[bytes]:
    """One header block per kind of entry, as tarfile writes them in `fmt`: long (ustar
    prefix) and non-ASCII names, a folder, links, odd modes and times."""
    blocks = []
    names = ["bin/python3", "a/" + "b" * 99, ("deep/" * 30) + "f.py", "ünï/cödé", "pkg"]
    kinds = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
    for i, (name, kind) in enumerate((n, k) for n in names for k in kinds):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, (0o755, 0o644, 0o4777, 0)[i % 4], 315532800 + i
        info.size = 12345 * i if kind == tarfile.REGTYPE else 0
        info.uid, info.gid = i, 2 * i
        info.linkname = "target/of/the-link" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        try:
            buf = info.tobuf(fmt, "utf-8", "surrogateescape")
        except ValueError:  # a name ustar cannot hold
            continue
        blocks.append(buf[-tarfile.BLOCKSIZE :] if fmt != tarfile.PAX_FORMAT else buf[:512])
    return blocks


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_plain_headers_are_read_as_tarfile_reads_them(fmt: int) -> None:
    read = 0
    seen: dict[tuple[bytes, ...], tuple[int, ...]] = {}  # shared, as an archive's entries do
    for block in _headers(fmt) * 2:  # the second time, their numbers are the ones kept
        expected = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        got = _ustar.plain_header(block, seen)
        if got is not None:
            read += 1
            assert _fields(got) == _fields(expected)
    assert read >= 16  # most are plain; PAX and GNU long-name headers are left to tarfile
    # A header runenv's pack writes, a V7 folder (a regular file named with a slash), numbers
    # written with spaces: read alike.
    from runenv.artifact.pack import _header

    v7 = bytearray(_header("old/", tarfile.AREGTYPE, 0o755, 0))
    spaced = bytearray(_header("x", tarfile.REGTYPE, 0o644, 7, size=3))
    spaced[100:108] = b"   644 \0"
    for buf in (v7, spaced):
        buf[148:156] = b" " * 8
        buf[148:156] = b"%06o\0 " % sum(buf)
    for block in (
        _header("lib/x.so", tarfile.REGTYPE, 0o755, 1, size=99),
        bytes(v7),
        bytes(spaced),
    ):
        got = _ustar.plain_header(block, seen)
        assert got is not None
        assert _fields(got) == _fields(tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape"))
    for block in (bytes(512), b"\xff" * 512, random.Random(0).randbytes(512)):
        assert _ustar.byte_sum(block) == sum(block)  # the checksum's sum, exact
    # Anything else is tarfile's: a bad checksum, base-256 numbers, the end of the archive.
    bad = bytearray(_header("x", tarfile.REGTYPE, 0o644, 7, size=3))
    bad[0] ^= 1
    binary = tarfile.TarInfo("huge")
    binary.size = 8**12  # GNU base-256 size field
    for block in (bytes(bad), binary.tobuf(tarfile.GNU_FORMAT)[:512], bytes(512)):
        assert _ustar.plain_header(block, seen) is None
    # The numbers kept are bounded, whatever an archive holds: an entry's own are still read.
    for mtime in range(2 * _ustar.SEEN):
        block = _header("t", tarfile.REGTYPE, 0o644, mtime, size=1)
        got = _ustar.plain_header(block, seen)
        assert got is not None and got.mtime == mtime
    assert len(seen) == _ustar.SEEN


def _tar_gz(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    with path.open("wb") as out:
        write_gzip_members(iter([raw.getvalue()]), out, block_size=4096)  # many members
    return path


def _entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> Any:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1_000_000
    return info


def test_paths_written_twice_and_hard_links_come_out_as_tar_writes_them(tmp_path: Path) -> None:
    # A file written, linked to, then written again (tar makes a new file: the link keeps the
    # first bytes); a file replaced by a symlink; files around them in many small members, so
    # the writing threads have files in hand when each of those comes.
    entries = [(_entry("d", tarfile.DIRTYPE, mode=0o755), b"")]
    entries += [(_entry(f"d/f{i}.py"), _data(3000 + i, i)) for i in range(40)]
    entries += [
        (_entry("d/twice"), b"first\n"),
        (_entry("d/linked", tarfile.LNKTYPE, "d/twice"), b""),
        (_entry("d/f3.py", mode=0o755), b"again\n"),
        (_entry("d/twice"), b"second, longer\n"),
        (_entry("d/f5.py", tarfile.SYMTYPE, "f4.py"), b""),
    ]
    entries += [(_entry(f"e/g{i}"), _data(70_000, i)) for i in range(6)]  # no folder entry
    archive = _tar_gz(tmp_path / "a.tar.gz", entries)
    _unpack.unpack(io.BytesIO(archive.read_bytes()), tmp_path / "ours", "a.tar.gz")
    expected = tar_xzf(archive, tmp_path / "tar")
    ours = listing(tmp_path / "ours")
    for tree in (ours, expected):  # a folder made for its files: its mtime is when
        tree["e"] = tree["e"][:2]
    assert ours == expected
    assert (tmp_path / "ours" / "d" / "linked").read_bytes() == b"first\n"
    assert expected["d/f5.py"] == ("symlink", "f4.py")


def test_folders_come_out_as_tar_makes_them(tmp_path: Path) -> None:
    # An empty folder, a folder entry after its files, a folder whose parent has no entry, a
    # symlink's folder, among files the writing threads have in hand: each with its mtime, as
    # tar's (a folder's mode is not the archive's but the umask's, as tarfile's `data` filter
    # has it: 0o755 here).
    entries = [(_entry("a", tarfile.DIRTYPE, mode=0o755), b"")]
    entries += [(_entry(f"a/f{i}.py"), _data(2000 + i, i)) for i in range(30)]
    entries += [
        (_entry("a/empty", tarfile.DIRTYPE, mode=0o755), b""),
        (_entry("a/b/c", tarfile.DIRTYPE, mode=0o755), b""),
        (_entry("a/b/c/f.py"), b"deep\n"),
        (_entry("links", tarfile.DIRTYPE, mode=0o755), b""),
        (_entry("links/s", tarfile.SYMTYPE, "../a/b/c/f.py"), b""),
        (_entry("late/f"), b"before its folder\n"),
        (_entry("late", tarfile.DIRTYPE, mode=0o755), b""),
    ]
    archive = _tar_gz(tmp_path / "a.tar.gz", entries)
    _unpack.unpack(io.BytesIO(archive.read_bytes()), tmp_path / "ours", "a.tar.gz")
    expected = tar_xzf(archive, tmp_path / "tar")
    ours = listing(tmp_path / "ours")
    for tree in (ours, expected):  # a folder with no entry: its mtime is when it was made
        tree["a/b"] = tree["a/b"][:2]
    assert ours == expected
    assert ours["a/empty"] == ours["late"] == ("dir", "0o755", 1_000_000)


def test_a_symlink_over_a_folder_a_file_before_it_needs_is_refused(tmp_path: Path) -> None:
    # `d/x/f` comes before the symlink `d/x`: its folder is made before the symlink, never
    # after it, so nothing is written through the symlink into `y`.
    entries = [(_entry("y", tarfile.DIRTYPE), b""), (_entry("d/x/f"), b"in d/x\n")]
    entries.append((_entry("d/x", tarfile.SYMTYPE, "../y"), b""))
    archive = _tar_gz(tmp_path / "a.tar.gz", entries)
    with pytest.raises(FileExistsError):
        _unpack.unpack(io.BytesIO(archive.read_bytes()), tmp_path / "ours", "a.tar.gz")
    assert not (tmp_path / "ours" / "y" / "f").exists()


def test_a_folder_entry_over_a_file_is_refused(tmp_path: Path) -> None:
    entries = [(_entry("x"), b"a file\n"), (_entry("x", tarfile.DIRTYPE), b"")]
    archive = _tar_gz(tmp_path / "a.tar.gz", entries)
    with pytest.raises(CatalogueError, match="cannot unpack 'x': not a folder"):
        _unpack.unpack(io.BytesIO(archive.read_bytes()), tmp_path / "ours", "a.tar.gz")


def test_modes_are_the_archives_whatever_the_umask(
    tmp_path: Path, packed: tuple[Path, bytes]
) -> None:
    archive, blob = packed
    expected = tar_xzf(archive, tmp_path / "tar")
    old = os.umask(0o077)  # takes group and other bits at creation: set again after it
    try:
        assert _files.umask() in (0o077, None)
        _unpack.unpack(io.BytesIO(blob), tmp_path / "ours", "a.tar.gz")
    finally:
        os.umask(old)
    files = {k: v for k, v in listing(tmp_path / "ours").items() if v[0] == "file"}
    assert files == {k: v for k, v in expected.items() if v[0] == "file"}
    assert files["bin/python3.12"][1] == "0o755"


def test_a_writing_threads_error_is_the_installs_and_nothing_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name longer than the file system takes (a PAX header holds it): the thread that
    # creates it fails, after other files were handed out.
    entries = [(_entry(f"ok/f{i}"), _data(5000, i)) for i in range(30)]
    entries.append((_entry("ok/" + "n" * 300), b"too long a name\n"))
    entries += [(_entry(f"ok/g{i}"), _data(5000, i)) for i in range(30)]
    archive = _tar_gz(tmp_path / "a.tar.gz", entries)
    blob = archive.read_bytes()
    written: list[int] = []
    write_files = _files.write_files

    def spy(jobs: list[Any]) -> None:
        written.append(len(jobs))
        write_files(jobs)

    monkeypatch.setattr(_files, "write_files", spy)
    cat = catalogue(archive.as_uri(), blob)
    with pytest.raises(CatalogueError, match=r"cannot unpack: .*nnnn.* File name too long"):
        cat.install("v", cache_dir=tmp_path / "cache")
    assert written  # the files went to the writing threads
    _nothing_trusted(cat, tmp_path / "cache")


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """runenv's archive of a tree with a file three times `SPANNING` (pieces of many members)
    between small ones."""
    root = tmp_path_factory.mktemp("large")
    tree = root / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3").write_bytes(b"#!/bin/sh\n")
    (tree / "lib").mkdir()
    (tree / "lib" / "a.py").write_text("a = 1\n")
    (tree / "lib" / "libbig.so").write_bytes(_data(3 * _files.SPANNING + 12_345, 7))
    (tree / "lib" / "libbig.so").chmod(0o755)
    (tree / "lib" / "z.py").write_text("z = 1\n")
    archive = root / "large.tar.gz"
    pack_tree(tree, archive)
    return archive, archive.read_bytes()


def _open_fds() -> list[str]:
    return sorted(
        os.readlink(f"/dev/fd/{fd}")
        for fd in os.listdir("/dev/fd")
        if os.path.exists(f"/dev/fd/{fd}")
    )


@pytest.mark.parametrize("pwrite", [True, False], ids=["pieces-on-threads", "reading-thread"])
def test_a_large_file_is_written_piece_by_piece_on_the_writing_threads(
    large: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pwrite: bool
) -> None:
    """A file larger than `SPANNING` is handed out piece by piece, each written at its offset
    by a writing thread; where os.pwrite is missing (Windows) the reading thread writes it.
    Either way the tree is tar's, file by file."""
    archive, blob = large
    monkeypatch.setattr(_files, "PWRITE", pwrite)
    threads: list[str] = []
    piece = _files.Spanning.piece

    def spy(self: Any, offset: int, view: memoryview) -> None:
        threads.append(threading.current_thread().name)
        piece(self, offset, view)

    monkeypatch.setattr(_files.Spanning, "piece", spy)
    before = _open_fds()
    cat = catalogue(archive.as_uri(), blob)
    cat.install("v", cache_dir=tmp_path / "cache")
    got = listing(installed_root(tmp_path / "cache"), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")
    if pwrite:
        assert len(threads) >= 3, threads  # 24 MiB in pieces of at most 4 MiB
        assert all(name.startswith("runenv-write") for name in threads), threads
    else:  # the reading thread (the caller's) writes every piece, none a writing thread
        assert threads and set(threads) == {threading.current_thread().name}, threads
    assert _open_fds() == before


@pytest.mark.parametrize("pwrite", [True, False], ids=["pieces-on-threads", "reading-thread"])
def test_no_write_call_is_given_more_than_a_mebibyte(
    packed: tuple[Path, bytes],
    large: tuple[Path, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pwrite: bool,
) -> None:
    """Files of several MiB, written whole and in pieces at their offsets, go to the kernel
    at most `WRITE` bytes a call: a larger write takes whole 2 MiB blocks of memory for its
    page cache, which cost this VM most (`_files.WRITE`). The trees are still tar's."""
    monkeypatch.setattr(_files, "PWRITE", pwrite)
    sizes: list[int] = []
    write, pwrite_at = os.write, os.pwrite

    def spy_write(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return write(fd, data)

    def spy_pwrite(fd: int, data: Any, offset: int) -> int:
        sizes.append(len(data))
        return pwrite_at(fd, data, offset)

    monkeypatch.setattr(os, "write", spy_write)
    monkeypatch.setattr(os, "pwrite", spy_pwrite)
    for name, (archive, blob) in (("packed", packed), ("large", large)):
        catalogue(archive.as_uri(), blob).install("v", cache_dir=tmp_path / name)
        got = listing(installed_root(tmp_path / name), frozenset({".provisioned"}))
        assert got == tar_xzf(archive, tmp_path / f"{name}-tar")
    assert max(sizes) == _files.WRITE  # 4-24 MiB files, in calls of at most 1 MiB
    assert sum(sizes) > 3 * _files.SPANNING + 3 * MEMBER_SIZE


def test_the_pieces_of_one_file_are_never_written_at_once(
    large: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writing threads take turns at a large file: the kernel would make them wait for the
    file's inode lock anyway, spinning on a core (`Spanning.writing`). Each os.pwrite here
    sleeps a little, so writes that could overlap do; the pieces still go to several threads,
    and the tree is tar's."""
    archive, blob = large
    active: dict[int, int] = {}
    most, threads = 0, set()
    guard, pwrite = threading.Lock(), os.pwrite

    def slow_pwrite(fd: int, data: Any, offset: int) -> int:
        nonlocal most
        with guard:
            active[fd] = active.get(fd, 0) + 1
            most = max(most, active[fd])
            threads.add(threading.current_thread().name)
        try:
            time.sleep(0.002)
            return pwrite(fd, data, offset)
        finally:
            with guard:
                active[fd] -= 1

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    catalogue(archive.as_uri(), blob).install("v", cache_dir=tmp_path / "cache")
    got = listing(installed_root(tmp_path / "cache"), frozenset({".provisioned"}))
    assert got == tar_xzf(archive, tmp_path / "tar")
    assert len(threads) >= 2, threads  # the pieces went to several writing threads
    assert most == 1


@pytest.mark.parametrize("failure", ["pwrite", "cut"])
def test_a_large_file_that_fails_midway_installs_nothing_and_leaves_no_file_open(
    large: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A piece whose write fails (a full disk), or an archive that ends inside the large file
    (catalogued as it is): the install fails, nothing is trusted, and the file's descriptor,
    which the last piece would have closed, is closed."""
    archive, blob = large
    if failure == "pwrite":
        calls: list[int] = []
        pwrite = os.pwrite

        def full(fd: int, data: Any, offset: int) -> int:
            calls.append(offset)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            return pwrite(fd, data, offset)

        monkeypatch.setattr(os, "pwrite", full)
        match = "No space left on device"
    else:
        offset, length, _ = next(m for m in members(blob) if m[0] > len(blob) // 2)
        blob = blob[: offset + length]  # whole members, the large file's end missing
        archive = tmp_path / "cut.tar.gz"
        archive.write_bytes(blob)
        match = "ends in it|cut short|unexpected end"
    before = _open_fds()
    cat = catalogue(archive.as_uri(), blob)
    with pytest.raises(CatalogueError, match=match):
        cat.install("v", cache_dir=tmp_path / "cache")
    _nothing_trusted(cat, tmp_path / "cache")
    assert _open_fds() == before


def test_a_folder_seen_clear_is_looked_at_again_once_a_symlink_is_added() -> None:
    """The planner skips the part-by-part look at an entry's folder it has seen free of
    symlinks; a symlink added later (here: the folder itself turned into one) makes it look
    again, so an entry written through it is still refused."""
    planner = Planner("t.tar.gz")
    for entry in (_entry("s", tarfile.SYMTYPE, "bin"), _entry("d/e/f"), _entry("d/e/x")):
        planner.check(entry)
    assert "d/e" in planner.clear
    planner.check(_entry("d/e", tarfile.SYMTYPE, "."))
    with pytest.raises(UnsafeArchiveError, match=r"'d/e/g': .* through the symlink d/e"):
        planner.check(_entry("d/e/g"))


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("a/b/c.py", "a/b/c.py"),
        ("./a/b", "a/b"),
        ("a//b/./c/", "a/b/c"),
        ("a/.hidden", "a/.hidden"),
        (".", ""),
        ("", ""),
        ("a/b/.", "a/b"),
    ],
)
def test_entry_names_are_cleaned_the_same_on_the_fast_path_and_the_slow(
    name: str, clean: str
) -> None:
    assert clean_name(name, "t.tar.gz") == clean


@pytest.mark.parametrize("name", ["a/../b", "..", "a/..", "../a"])
def test_a_dotdot_part_is_refused_whatever_the_path(name: str) -> None:
    with pytest.raises(UnsafeArchiveError, match=r"'\.\.' leaves the tree"):
        clean_name(name, "t.tar.gz")
