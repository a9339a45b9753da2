"""pack_tree and write_manifest: reproducible bytes, readable by tar, gzip and tarfile."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from runenv.artifact.pack import (
    DEFAULT_MTIME,
    _header,
    pack_tree,
    tar_stream,
    write_gzip_members,
    write_manifest,
)
from runenv.errors import BuildError

LONG = "very-long-directory-name-" * 5  # > 100 bytes with the file name: needs a PAX header


def make_tree(root: Path) -> Path:
    """A small runtime-like tree: executables, a symlink, a hard link, odd modes and names."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python3.12"
    python.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
    python.chmod(0o700)
    (root / "bin" / "python3").symlink_to("python3.12")
    site = root / "lib" / "python3.12" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("print('hi')\n" * 100)
    (site / "pkg" / "secret.txt").write_text("mode 600\n")
    (site / "pkg" / "secret.txt").chmod(0o600)
    os.link(site / "pkg" / "__init__.py", site / "pkg" / "hardlink.py")
    (site / LONG).mkdir()
    (site / LONG / "módulo_ñ.py").write_text("x = 1\n")
    (root / "empty").mkdir()
    (root / "empty").chmod(0o700)
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_is_reproducible_and_standard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    tree = make_tree(tmp_path / "tree")
    first = tmp_path / "out" / "a.tar.gz"
    sha, size = pack_tree(tree, first)
    assert (sha, size) == (_sha(first), first.stat().st_size)
    assert not [p for p in first.parent.iterdir() if p != first], "no temp file left behind"

    # Again: same bytes. After touching everything and loosening modes: still the same bytes.
    again = tmp_path / "out" / "b.tar.gz"
    assert pack_tree(tree, again) == (sha, size)
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    (tree / "lib" / "python3.12" / "site-packages" / "pkg" / "secret.txt").chmod(0o664)
    (tree / "empty").chmod(0o775)
    assert pack_tree(tree, again) == (sha, size)

    # A copy made elsewhere (hard link broken, new inodes, new times) packs identically.
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)
    assert pack_tree(copy, tmp_path / "out" / "c.tar.gz") == (sha, size)

    # gzip header: no name, mtime 0, OS unknown; one member.
    data = first.read_bytes()
    assert data[:4] == b"\x1f\x8b\x08\x04" and data[4:8] == b"\0\0\0\0" and data[9] == 255
    subprocess.run(["gzip", "-t", str(first)], check=True)
    listing = subprocess.run(
        ["tar", "tzf", str(first)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert listing[:3] == ["bin/", "bin/python3", "bin/python3.12"]
    assert listing == sorted(listing, key=lambda n: n.rstrip("/").encode().split(b"/"))
    assert not any(n.startswith(("./", "/")) for n in listing)

    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", DEFAULT_MTIME)
        assert not m.pax_headers.keys() - {"path"}, m.pax_headers
    site = "lib/python3.12/site-packages"
    assert members["bin/python3"].issym() and members["bin/python3"].linkname == "python3.12"
    assert members["bin/python3.12"].mode == 0o755
    assert members[f"{site}/pkg/secret.txt"].mode == 0o644
    assert members["empty"].isdir() and members["empty"].mode == 0o755
    assert members[f"{site}/pkg/hardlink.py"].isreg(), "hard links are stored as files"
    assert f"{site}/{LONG}/módulo_ñ.py" in members

    # tar xzf restores contents, modes and the symlink.
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(first), "-C", str(out)], check=True)
    assert (out / "bin" / "python3").readlink() == Path("python3.12")
    assert (out / "bin" / "python3.12").read_bytes() == (tree / "bin" / "python3.12").read_bytes()
    assert (out / "bin" / "python3.12").stat().st_mode & 0o777 == 0o755
    assert (out / site / "pkg" / "hardlink.py").read_text() == "print('hi')\n" * 100
    assert (out / site / LONG / "módulo_ñ.py").read_text() == "x = 1\n"


def test_source_date_epoch_sets_mtimes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_tree(tmp_path / "tree")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    archive = tmp_path / "a.tar.gz"
    pack_tree(tree, archive)
    with tarfile.open(archive) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1234567890}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        pack_tree(tree, archive)


def test_tar_stream_matches_tarfile(tmp_path: Path) -> None:
    """The stream is a well-formed tar: tarfile reads back every byte of every file."""
    tree = make_tree(tmp_path / "tree")
    raw = b"".join(bytes(c) for c in tar_stream(tree))
    assert len(raw) % (20 * 512) == 0
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert extracted.read() == (tree / member.name).read_bytes()


@pytest.mark.parametrize(
    ("name", "kind", "size", "linkname"),
    [
        ("bin/python3.12", tarfile.REGTYPE, 12345, ""),
        ("bin", tarfile.DIRTYPE, 0, ""),
        ("d" * 99, tarfile.DIRTYPE, 0, ""),  # 100 bytes with its "/": still plain ustar
        ("d" * 100, tarfile.DIRTYPE, 0, ""),  # 101: a PAX path
        ("f" * 100, tarfile.REGTYPE, 0, ""),
        ("f" * 101, tarfile.REGTYPE, 1, ""),
        ("lib/módulo_ñ.py", tarfile.REGTYPE, 6, ""),
        ("lib/\udcff.py", tarfile.REGTYPE, 6, ""),  # a name that is not UTF-8 on disk
        ("bin/python3", tarfile.SYMTYPE, 0, "python3.12"),
        ("bin/far", tarfile.SYMTYPE, 0, "../" * 34),  # a 102-byte target: a PAX linkpath
        ("bin/ü", tarfile.SYMTYPE, 0, "zü"),
        ("big.bin", tarfile.REGTYPE, 8**11 - 1, ""),
        ("huge.bin", tarfile.REGTYPE, 8**11, ""),  # 8 GiB: a PAX size
    ],
)
@pytest.mark.parametrize("mode", [0o644, 0o755, 0o777])
@pytest.mark.parametrize("mtime", [DEFAULT_MTIME, 0, 8**11 - 1, 8**11])
def test_headers_are_the_bytes_tarfile_writes(
    name: str, kind: bytes, size: int, linkname: str, mode: int, mtime: int
) -> None:
    """The headers runenv writes itself are tarfile's, byte for byte, PAX records included."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, linkname
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    expected = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert _header(name, kind, mode, mtime, size=size, linkname=linkname) == expected


def _mixed_data(size: int) -> bytes:
    """Compressible text, incompressible noise and repeats across block boundaries."""
    rng = random.Random(42)
    parts: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.randrange(3)
        if kind == 0:
            part = " ".join(
                rng.choice(["def", "class", "import", "numpy", "return"])
                for _ in range(rng.randrange(100, 5000))
            ).encode()
        elif kind == 1:
            part = rng.randbytes(rng.randrange(1000, 200_000))
        else:
            part = parts[-1] if parts else b"x"
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def test_libdeflate_members_are_one_stream_independent_of_threads() -> None:
    data = _mixed_data(9 * 1024 * 1024 + 777)
    chunks = [data[i : i + 70_001] for i in range(0, len(data), 70_001)]
    outputs = []
    for threads in (1, 2, 3):
        out = io.BytesIO()
        sha, size = write_gzip_members(
            iter(chunks), out, level=6, block_size=2 * 1024 * 1024, threads=threads
        )
        blob = out.getvalue()
        assert (sha, size) == (hashlib.sha256(blob).hexdigest(), len(blob))
        outputs.append(blob)
    assert outputs[0] == outputs[1] == outputs[2]
    blob = outputs[0]
    assert blob.count(b"\x1f\x8b\x08\x04\x00\x00\x00\x00") >= 5  # one member per block
    assert gzip.decompress(blob) == data
    # `gzip -t` and `gzip -dc` read every member as one stream.
    proc = subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=True)
    assert proc.stdout == data
    # About gzip -6's size even on this cross-referencing data (smaller on real trees: see
    # `python -m benchmarks`, which compares the archive with `tar czf`).
    sequential = len(gzip.compress(data, compresslevel=6, mtime=0))
    assert len(blob) < 1.01 * sequential
    empty = io.BytesIO()
    write_gzip_members(iter([]), empty)
    assert gzip.decompress(empty.getvalue()) == b""


def test_pack_tree_uses_libdeflate_and_tar_reads_it(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    big = tree / "bin" / "big.bin"
    big.write_bytes(_mixed_data(10 * 1024 * 1024))
    archive = tmp_path / "a.tar.gz"
    pack_tree(tree, archive)
    blob = archive.read_bytes()
    assert blob.count(b"\x1f\x8b\x08\x04\x00\x00\x00\x00") >= 2  # libdeflate members
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(out)], check=True)
    assert (out / "bin" / "big.bin").read_bytes() == big.read_bytes()


def test_gzip_members_edge_sizes() -> None:
    block = 1024 * 1024
    for data in (b"", b"a", bytes(block), bytes(block + 1)):
        out = io.BytesIO()
        write_gzip_members(iter([data]), out, level=1, block_size=block)
        assert gzip.decompress(out.getvalue()) == data
        members = out.getvalue().count(b"\x1f\x8b\x08\x04\x00\x00\x00\x00")
        assert members == max(1, -(-len(data) // block))


def test_failed_pack_leaves_nothing(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    os.mkfifo(tree / "bin" / "a-fifo")
    archive = tmp_path / "dist" / "a.tar.gz"
    with pytest.raises(BuildError, match="a-fifo"):
        pack_tree(tree, archive)
    assert list(archive.parent.iterdir()) == []


def test_write_manifest(tmp_path: Path) -> None:
    path = tmp_path / "dist" / "m.json"
    manifest = {"b": 1, "a": {"z": [1, 2], "y": "é"}}
    write_manifest(path, manifest)
    text = path.read_text("utf-8")
    assert text == json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert text.index('"a"') < text.index('"b"')
    assert list(path.parent.iterdir()) == [path]
