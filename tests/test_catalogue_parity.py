"""What runenv and the catalogue package cannot share as code, checked to agree.

The rules themselves are written once (`runenv_catalogue/_shared`: platform keys and host
mapping, the tar entries' rules, bounded reads, redaction, the import check's script; runenv
imports them as `runenv._shared`, tests/test_shared.py). Left two-sided: runenv's `Platform`
enum, written out for the type checker, and the PBS stand-in's triples; the runtime layout
runenv records and the catalogue reads back; and the two writers of an archive's tree
(runenv's tarfile extraction, the catalogue's own unpack), which apply the one rule set and
must refuse the same archives, leaving nothing, and write the same trees."""

from __future__ import annotations

import json
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
import runenv_catalogue as rc
from runenv_catalogue import _unpack

from runenv.artifact.manifest import SCHEMA_VERSION as MANIFEST_SCHEMA
from runenv.commands.catalogue import collect
from runenv.errors import UnsafeArchiveError
from runenv.fetch.extract import extract_tar
from runenv.platforms import ALL_PLATFORMS, Platform
from support.pbs import (
    PY_VERSION,
    Entry,
    device,
    fifo,
    file,
    folder,
    hardlink,
    standin,
    symlink,
    write_tar,
)

# --- platforms ---------------------------------------------------------------------------------


def test_runenv_lists_the_shared_platform_keys_and_the_standins_triples() -> None:
    keys = tuple(p.value for p in ALL_PLATFORMS)
    assert keys == rc.PLATFORMS
    assert tuple(standin.TRIPLES) == keys
    assert {p.value: p.info.pbs_triple for p in ALL_PLATFORMS} == standin.TRIPLES


@pytest.mark.parametrize("plat", ALL_PLATFORMS, ids=str)
def test_runtime_layout_round_trips_through_the_catalogue(tmp_path: Path, plat: Platform) -> None:
    """A runtime with each platform's layout (the PBS stand-in's tree), catalogued by runenv and
    installed by the catalogue package: the interpreter is where runenv says it is."""
    info = plat.info
    tree = standin.foreign_tree(tmp_path / "tree", plat.value)
    dist = tmp_path / "dist"
    name = f"runenv-v-{plat}.tar.gz"
    sha = standin.pack(tree, dist / name, ".")
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        "variant": "v",
        "python_version": PY_VERSION,
        "platform": plat.value,
        "archive": name,
        "sha256": sha,
        "size": (dist / name).stat().st_size,
        "interpreter": info.interpreter(PY_VERSION).as_posix(),
        "site_packages": info.site_packages(PY_VERSION).as_posix(),
        "runtime_env": {},
        "packages": [],
    }
    (dist / f"runenv-v-{plat}.json").write_text(json.dumps(manifest))
    variants = collect(dist, dist.as_uri())
    raw = variants["v"][plat.value]
    cat = rc.Catalogue({"schema_version": 1, "version": "1", "variants": variants})
    entry = cat.entry("v", plat.value)
    assert entry.interpreter == PurePosixPath(info.interpreter(PY_VERSION))
    assert entry.site_packages == info.site_packages(PY_VERSION)
    assert entry.scripts == info.scripts_dir()
    # Older catalogues carry no `scripts`: the catalogue's default is runenv's folder.
    del raw["scripts"]
    assert rc.Entry.parse("v", plat.value, raw).scripts == info.scripts_dir()
    python = cat.install("v", plat.value, cache_dir=tmp_path / "cache")
    assert python == entry.root(tmp_path / "cache").joinpath(*info.interpreter(PY_VERSION).parts)
    assert python.is_file()
    assert (entry.root(tmp_path / "cache") / info.site_packages(PY_VERSION)).is_dir()


# --- archive rules -----------------------------------------------------------------------------

_BASE = [folder("bin"), file("bin/tool", b"#!/bin/sh\n", 0o755)]
# Each on top of _BASE (a folder and a tool in it): the entries that make the archive unsafe,
# and the name the refusal must give.
HOSTILE = {
    "absolute": ([file("/tmp/runenv-parity-evil.txt")], "/tmp/runenv-parity-evil.txt"),
    "dotdot": ([file("../evil.txt")], "../evil.txt"),
    "dotdot-inside": ([file("bin/../../evil.txt")], "bin/../../evil.txt"),
    "backslash": ([file("bin\\..\\..\\evil.txt")], "evil.txt"),
    "drive": ([file("C:/evil.txt")], "C:/evil.txt"),
    "symlink-absolute": ([symlink("etc", "/etc")], "etc"),
    "symlink-up": ([symlink("bin/up", "../..")], "bin/up"),
    "symlink-empty": ([symlink("empty", "")], "empty"),
    "symlink-chain": ([symlink("bin/root", ".."), symlink("out", "bin/root/..")], "out"),
    "write-through-symlink": ([symlink("lib", "bin"), file("lib/x")], "lib/x"),
    "replace-symlink": ([symlink("bin/t", "tool"), file("bin/t")], "bin/t"),
    "hardlink-absolute": ([hardlink("passwd", "/etc/passwd")], "passwd"),
    "hardlink-outside": ([hardlink("x", "../outside.txt")], "x"),
    "hardlink-dotdot-inside": ([hardlink("x", "bin/../bin/tool")], "x"),
    "hardlink-to-symlink": ([symlink("s", "bin/tool"), hardlink("h", "s")], "h"),
    "hardlink-to-folder": ([hardlink("h", "bin")], "h"),
    "hardlink-forward": ([hardlink("h", "later"), file("later")], "h"),
    "device": ([device("dev0")], "dev0"),
    "fifo": ([fifo("pipe")], "pipe"),
}
GOOD = {
    "plain": _BASE,
    "dot-root": [folder("."), folder("./bin"), file("./bin/./tool", b"x", 0o755)],
    "links": [
        *_BASE,
        symlink("bin/tool3", "tool"),
        folder("lib"),
        file("lib/data.txt", b"data"),
        symlink("lib/up", ".."),
        symlink("lib/bin", "../bin"),
        hardlink("lib/tool-copy", "bin/tool"),
        file("./lib/dotted.txt", b"dot"),
    ],
    "no-folders": [file("a/b/c.txt", b"deep"), symlink("a/link", "b/c.txt")],
}


def _catalogue_extract(archive: Path, dest: Path) -> Path:
    _unpack.safe_extract(archive, dest, archive.name)
    return dest


def _listing(root: Path) -> list[tuple[str, str, int, str]]:
    """Every path under `root` with its kind, permission bits and target or content."""
    rows = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            rows.append((rel, "symlink", 0, str(path.readlink())))
        elif path.is_dir():
            rows.append((rel, "dir", stat.S_IMODE(st.st_mode), ""))
        else:
            rows.append((rel, "file", stat.S_IMODE(st.st_mode), path.read_bytes().decode()))
    return rows


@pytest.mark.parametrize("data_filter", [True, False], ids=["filter", "no-filter"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_both_extractors_refuse_the_same_archives(
    tmp_path: Path, case: str, data_filter: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not data_filter:  # the checks alone, as on a Python without PEP 706's filters
        monkeypatch.delattr("tarfile.data_filter", raising=False)
    entries, named = HOSTILE[case]
    archive, _ = write_tar(tmp_path / f"{case}.tar.gz", [*_BASE, *entries])
    with pytest.raises(UnsafeArchiveError) as ours:
        extract_tar(archive, tmp_path / "runenv", strip=None)
    with pytest.raises(rc.UnsafeArchiveError) as theirs:
        _catalogue_extract(archive, tmp_path / "catalogue")
    assert named in str(ours.value)
    assert named in str(theirs.value)
    assert not (tmp_path / "runenv").exists()
    assert not Path("/tmp/runenv-parity-evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("case", sorted(GOOD))
def test_both_extractors_accept_the_same_archives_alike(tmp_path: Path, case: str) -> None:
    archive, _ = write_tar(tmp_path / f"{case}.tar.gz", GOOD[case])
    ours = _listing(extract_tar(archive, tmp_path / "runenv", strip=None))
    theirs = _listing(_catalogue_extract(archive, tmp_path / "catalogue"))
    assert ours == theirs
    assert ours  # something was extracted
    if case == "links":
        assert ("lib/tool-copy", "file", 0o755, "#!/bin/sh\n") in ours


MEMBER_TYPES = {
    "regular": tarfile.REGTYPE,
    "old-regular": tarfile.AREGTYPE,
    "contiguous": tarfile.CONTTYPE,
    "folder": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char-device": tarfile.CHRTYPE,
    "block-device": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}
SPECIAL = {tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE}


def _verdict(extract: Callable[[], object]) -> str:
    try:
        extract()
    except (UnsafeArchiveError, rc.UnsafeArchiveError):
        return "refused"
    return "ok"


@pytest.mark.parametrize("kind", sorted(MEMBER_TYPES))
def test_each_member_type_gets_the_same_verdict(tmp_path: Path, kind: str) -> None:
    member_type = MEMBER_TYPES[kind]
    linkname = "bin/tool" if member_type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    archive, _ = write_tar(tmp_path / "t.tar.gz", [*_BASE, Entry("m", b"", member_type, linkname)])
    ours = _verdict(lambda: extract_tar(archive, tmp_path / "runenv", strip=None))
    theirs = _verdict(lambda: _catalogue_extract(archive, tmp_path / "catalogue"))
    assert ours == theirs == ("refused" if member_type in SPECIAL else "ok")
