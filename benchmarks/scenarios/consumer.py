"""The consumer (issue 24): `runenv_catalogue install` of runenv's archive from a `file://`
catalogue into an empty cache, against `tar xzf` of the same archive; the trees compared."""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.log import BenchError, log
from benchmarks.project import Setup
from benchmarks.record import Recorder
from benchmarks.runner import call, clean_env, run
from benchmarks.scenarios.build import runenv_build
from benchmarks.trash import TRASH, drop_page_cache, rmtree, tree_bytes

CONSUMER = (
    "import sys; from pathlib import Path; from runenv_catalogue import Catalogue; "
    "from runenv_catalogue.__main__ import main; "
    "sys.exit(main(sys.argv[2:], Catalogue.load(Path(sys.argv[1]))))"
)


def consumer_catalogue(s: Setup) -> tuple[Path, Path]:
    """runenv's archive of the workload (built once, untimed, if no round built it yet) and a
    catalogue.json naming it by a `file://` URL, as `runenv catalogue` lists it."""
    archive = s.project / "dist" / f"runenv-{s.variant}-{s.host}.tar.gz"
    manifest_path = archive.with_name(f"runenv-{s.variant}-{s.host}.json")
    if not (archive.exists() and manifest_path.exists()):
        log("building runenv's archive for the consumer measure (untimed)")
        runenv_build(s, s.host, s.work / "cache-consumer", "runenv build (for the consumer)")
        # The build's consumer check copied the tree and removed the copy: as many inodes
        # freed as the measurement creates, so the first command waits the full six minutes.
        TRASH.removed_elsewhere(TRASH.QUIET_TRASH)
        TRASH.discard(s.work / "cache-consumer", room(archive.stat().st_size), TRASH.QUIET_TRASH)
    kept = s.work / "consumer" / archive.name  # later rounds' builds do not replace it
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, kept)
        shutil.copy2(manifest_path, kept.parent / manifest_path.name)
    m = json.loads((kept.parent / manifest_path.name).read_text(encoding="utf-8"))
    entry = {
        "url": kept.as_uri(),
        "sha256": m["sha256"],
        "size": m["size"],
        "python_version": m["python_version"],
        "interpreter": m["interpreter"],
        "site_packages": m["site_packages"],
        "packages": [{"name": p["name"], "version": p["version"]} for p in m["packages"]],
    }
    catalogue = kept.parent / "catalogue.json"
    doc = {"schema_version": 1, "version": "bench", "variants": {s.variant: {s.host: entry}}}
    catalogue.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return kept, catalogue


def catalogue_package(s: Setup) -> Path:
    """A copy of the catalogue package with its bytecode compiled, as installing its wheel
    leaves it (pip compiles it), for the consumer's PYTHONPATH: a checkout holds no bytecode,
    and where PYTHONDONTWRITEBYTECODE is set (these machines set it) every install would
    compile the package's modules again, 26 ms of each on this machine."""
    package = REPO / "catalogue" / "src" / "runenv_catalogue"
    return compiled_copy(package, s.work / "consumer-package")


def compiled_copy(package: Path, folder: Path) -> Path:
    """`folder`, holding a copy of `package` with its bytecode compiled (made once)."""
    if not folder.exists():
        staged = folder.with_name(folder.name + ".tmp")
        rmtree(staged)
        shutil.copytree(package, staged / package.name)
        if not compileall.compile_dir(staged, quiet=1):
            raise BenchError(f"cannot compile the catalogue package in {staged}")
        staged.rename(folder)
    return folder


def room(archive_bytes: int, tree_bytes: int | None = None) -> int:
    """The free bytes below which the consumer empties the trash: two more rounds' trees (the
    archive's tree taken as four times its size until one is measured) and 10 GB for everyone
    else. Each emptying costs the next command a six-minute wait (`Trash.QUIET_TRASH`): it
    creates about as many files as the removal freed."""
    tree = 4 * archive_bytes if tree_bytes is None else tree_bytes
    return 4 * (tree + archive_bytes) + (10 << 30)


def tree_listing(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[Any, ...]]:
    """Every path under `root`: its kind, permission bits, mtime (not a symlink's) and its
    content's sha256 or its link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel in skip:
                continue
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("symlink", str(path.readlink()))
            elif path.is_dir():
                out[rel] = ("dir", oct(st.st_mode & 0o7777), int(st.st_mtime))
            else:
                with path.open("rb") as f:  # the torch-sized tree has files of 1 GB and more
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                out[rel] = ("file", oct(st.st_mode & 0o7777), int(st.st_mtime), digest)
    return out


def warm(archive: Path, env: dict[str, str]) -> None:
    """Read `archive` once, untimed, so both commands find it in the page cache: whichever
    runs first is not billed for reading it from disk; and both tools (the catalogue's
    modules, tar and gzip), which a dropped page cache lost too."""
    with archive.open("rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
    # What the CLI loads only when it unpacks too: the unpacking (`_unpack`) and ctypes, to
    # tune the C heap (`_heap`).
    imports = "import runenv_catalogue.__main__, runenv_catalogue._unpack, ctypes"
    call([sys.executable, "-c", imports], env=env, what="loading the catalogue package")
    for tool in ("tar", "gzip"):
        call([tool, "--version"], env=clean_env(), what=f"{tool} --version")


def measure_consumer(s: Setup, rec: Recorder, i: int) -> None:
    """`runenv_catalogue install` from a `file://` catalogue into an empty cache, against
    `tar xzf` of the same archive into an empty folder; which goes first alternates by round.
    The two trees are compared file by file (the install's `.provisioned` marker aside).

    Both commands are measured alike: each starts after `TRASH.settle` (what the other wrote
    written back, the waits after a removal done, the disk quiet) and `drop_page_cache` (as
    root: every command writes its tree into the same memory), with the archive and both
    tools read back into the page cache. The trees go to the trash (renamed, no inode freed),
    so no round pays for an earlier one's clean-up; when the disk could not hold two more
    rounds the trash is emptied between rounds, and the next round waits until ext4 reuses
    the freed inodes (`Trash`).
    """
    archive, catalogue = consumer_catalogue(s)
    cache, folder = s.work / f"consumer-cache-{i}", s.work / f"consumer-tar-{i}"
    for path in (cache, folder):
        rmtree(path)
    env = clean_env() | {"PYTHONPATH": str(catalogue_package(s))}
    install = [sys.executable, "-c", CONSUMER, catalogue, "install", s.variant]

    def consumer() -> None:
        result = run([*install, "--cache-dir", cache], env=env, what="runenv_catalogue install")
        rec.add("consumer_install", result.seconds, memory=result)
        rec.data["consumer_install"].setdefault("cpu", []).append(round(result.cpu, 2))
        log(f"run {i}: runenv_catalogue install {result.seconds:.2f} s (cpu {result.cpu:.2f} s)")

    def tar() -> None:
        folder.mkdir()
        result = run(["tar", "xzf", archive, "-C", folder], env=clean_env(), what="tar xzf")
        rec.add("consumer_tar_xzf", result.seconds, memory=result)
        rec.data["consumer_tar_xzf"].setdefault("cpu", []).append(round(result.cpu, 2))
        log(f"run {i}: tar xzf {result.seconds:.2f} s (cpu {result.cpu:.2f} s)")

    for step in (consumer, tar) if i % 2 else (tar, consumer):
        TRASH.settle()  # before the archive is read: a removal's wait may be minutes
        if not drop_page_cache() and i == 1 and step is consumer:
            rec.note("consumer_install", "the page cache was not dropped before each command")
        warm(archive, env)
        step()
    installed = next(p for p in cache.iterdir() if p.is_dir())
    ours, theirs = tree_listing(installed, frozenset({".provisioned"})), tree_listing(folder)
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    written = tree_bytes(folder)
    rec.add(
        "consumer_trees",
        0.0,
        identical=[*rec.data.get("consumer_trees", {}).get("identical", []), not differ],
        entries=len(theirs),
        archive_bytes=archive.stat().st_size,
        tree_bytes=written,
    )
    if differ:
        rec.note("consumer_trees", f"round {i}: {len(differ)} paths differ, first {differ[:3]}")
        log(f"WARNING: run {i}: the trees differ in {len(differ)} paths: {differ[:3]}")
    for path in (cache, folder):
        TRASH.discard(path, room(archive.stat().st_size, written), TRASH.QUIET_TRASH)
