"""Installed images: each wheel installed once per target layout, then hard-linked into trees.

A warm build spends its time installing (inflating, hashing and writing every file of every
wheel) and unpacking the interpreter. Both outputs are position-independent (RECORD paths are
relative, scripts find their interpreter relative to themselves), so runenv keeps them in the
cache as *images*: a folder holding the files one wheel installs for one (platform layout,
Python version), or the files one PBS archive unpacks to, plus `image.json`, which lists every
file with its sha256 and a stat fingerprint. A build links each file into its tree (hard
links, as uv does; a copy where the cache is on another filesystem), which costs a directory
entry per file instead of the file's bytes.

No cached byte is used unverified. The sha256 of a wheel's file comes from the RECORD the
installer wrote while hashing it; other files are hashed when the image is made. Each take
checks every file's size, mtime, inode, device, ctime and link count against the fingerprint
(a `lstat` per file); a file whose size, mtime, inode or device moved is hashed again, and so
is one whose ctime moved while its link count did not. The image is evicted and made again
from the (verified) wheel if any byte differs.

The ctime is the one field user code cannot set back, so it is what catches an in-place edit
through a tree under `pydist/` (which shares the inode) with the mtime reset by hand. But
every hard link made or removed changes it too, and builds do that all the time (a tree linked,
an old tree removed): `link_into` records the ctime and link count it leaves, and at a take a
ctime that moved together with the link count is taken as a tree removed or linked elsewhere
and recorded without hashing, so a warm build stays a stat per file. The limits: an edit made
in the same interval as a link count change (or while `link_into` runs) is seen only if it
moved the size or the mtime.
The download cache, which CI restores from outside and nothing links, keeps the stricter check
(any ctime move is hashed again).

What may write a tree's files: runenv's own stages never change a linked file in place
(installs replace files: unlink, then link or write; bytecode is written to new files;
copyFiles unlinks before copying), and a tree is handed to a command that may write any of its
files (the sign command) only after every file has its own inode (`unshare_tree`).

An image is only ever a plain folder of the cache: a shard or image folder (or its `tree/`)
that is a link is evicted (the link, not what it leads to) and the image made again, so
nothing is read or rewritten through it. A killed maker's `.tmp-*` folder is swept by the next
maker of that image, under the image's lock.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from installer.records import parse_record_file

from runenv._cache import Cache, file_sha256, is_plain_dir, staged_file
from runenv._cache_entry import Entry

logger = logging.getLogger(__name__)

SECTION = "images"
# Bump when what an image holds for the same inputs changes (2: bytecode batches; 3: bytecode
# workers that import nothing, see bytecode._COMPILE_SCRIPT; 4: image.json records each file's
# ctime and link count).
FORMAT = 4
_META = "image.json"
_FILES = "tree"
_LINK_ERRORS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES, errno.ENOTSUP}


@dataclass(frozen=True)
class Image:
    """A verified image: its entries under `root`, and what the maker recorded about them."""

    root: Path
    files: tuple[str, ...]  # regular files, tree-relative, `/`-separated, sorted
    links: Mapping[str, str]  # symbolic links (PBS has `bin/python3 -> python3.12`): text
    dirs: tuple[str, ...]  # every folder, so empty ones survive too
    info: Mapping[str, object]  # what the maker returned (e.g. the installed distribution)
    sha256s: Mapping[str, str] = field(default_factory=dict)  # each regular file's, verified


def key(**inputs: object) -> str:
    """The cache key of an image: a digest of everything that decides its files."""
    import hashlib

    doc = json.dumps({"format": FORMAT, **inputs}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def ensure(
    cache: Cache,
    image_key: str,
    make: Callable[[Path], Mapping[str, object]],
    *,
    known_hashes: Callable[[Path], Mapping[str, str]] | None = None,
) -> Image:
    """The image named `image_key`, verified; made by `make(tree)` if absent or damaged.

    `make` fills an empty folder and returns JSON-able facts kept with the image.
    `known_hashes(tree)` may return sha256s of files it already knows (from a RECORD), so only
    the others are hashed.
    """
    entry = Entry(cache.entry_path(SECTION, image_key))
    folder = entry.path

    def make_image(stage: Path) -> Image:
        tree = stage / _FILES
        tree.mkdir()
        info = dict(make(tree))
        known = dict(known_hashes(tree)) if known_hashes else {}
        entries: dict[str, dict[str, object]] = {}
        regular: list[str] = []
        links: dict[str, str] = {}
        dirs: list[str] = []
        base = os.fspath(tree)
        for rel, kind, st in walk(tree):
            if kind == "dir":
                entries[rel] = {"dir": True}
                dirs.append(rel)
            elif kind == "link":
                links[rel] = os.readlink(f"{base}/{rel}")  # noqa: PTH115 - per entry
                entries[rel] = {"link": links[rel]}
            else:
                sha256 = known.get(rel) or file_sha256(Path(base, rel))
                entries[rel] = {"sha256": sha256, **_stat_fingerprint(st)}
                regular.append(rel)
        meta = {"format": FORMAT, "info": info, "files": entries}
        (stage / _META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        # The rename moves the folder, not its files: what was just recorded still holds, and
        # is what `_load` would find (no second walk of a tree written a moment ago).
        sha256s = {rel: str(entries[rel]["sha256"]) for rel in regular}
        return Image(
            folder / _FILES, tuple(sorted(regular)), links, tuple(sorted(dirs)), info, sha256s
        )

    return entry.get_or_make(_load, make_image, on_bad=_warn_damaged)


def _warn_damaged(folder: Path) -> None:
    logger.warning(
        "cached image %s does not match what it recorded: evicted it, making it again", folder
    )


def link_into(image: Image, dest: Path, known: dict[tuple[int, int], str] | None = None) -> None:
    """Put every file of `image` at the same relative path under `dest`, replacing what is
    there (a later install wins, as it would by writing), by hard link or else by copy.

    `known`, if given, gets the verified sha256 of each file placed, by its (device, inode)
    in `dest`: what the tree's listing (`tree_listing`) need not hash again.
    """
    # os calls on str paths: ~10,000 files per large tree, on the build's one-core stretch.
    base, source = os.fspath(dest), os.fspath(image.root)
    os.makedirs(base, exist_ok=True)  # noqa: PTH103
    made = {""}
    for rel in image.dirs:
        os.makedirs(os.path.join(base, rel), exist_ok=True)  # noqa: PTH103, PTH118
        made.add(rel)
    for rel in image.files:
        parent = rel.rpartition("/")[0]
        if parent not in made:  # every image lists its folders: only for a damaged listing
            os.makedirs(os.path.join(base, parent), exist_ok=True)  # noqa: PTH103, PTH118
            made.add(parent)
        src, target = os.path.join(source, rel), os.path.join(base, rel)  # noqa: PTH118
        try:
            _link_or_copy(src, target)
        except FileExistsError:  # what an earlier install wrote: replaced
            os.unlink(target)  # noqa: PTH108
            _link_or_copy(src, target)
        if known is not None:
            st = os.lstat(target)
            known[(st.st_dev, st.st_ino)] = image.sha256s[rel]
    for rel, text in image.links.items():
        link = dest / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(text)
    _record_links(image)


def unshare(path: Path) -> None:
    """Give `path` its own inode, so that changing it in place cannot reach an image."""
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return
    tmp = path.with_name(f".tmp-{path.name}.unshare")
    shutil.copy2(path, tmp)
    tmp.replace(path)


def unshare_tree(tree: Path) -> int:
    """`unshare` every regular file of `tree` (links not followed); how many were shared.

    For a tree handed to a command that may write any file of it (the sign command): the
    command, not runenv, decides which files it touches, so every file gets its own inode.
    """
    count = 0
    for dirpath, _dirnames, filenames in os.walk(tree):
        for name in filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                unshare(path)
                count += 1
    return count


def record_hashes(site_packages_rel: str) -> Callable[[Path], dict[str, str]]:
    """`known_hashes` for a wheel image: the sha256 of each file its RECORD hashes."""

    def hashes(tree: Path) -> dict[str, str]:
        known: dict[str, str] = {}
        site = tree / site_packages_rel
        for record in sorted(site.glob("*.dist-info/RECORD")) if site.is_dir() else []:
            for row in parse_record_file(record.read_text("utf-8").splitlines()):
                path, digest = row[0], row[1]
                if not digest or not digest.startswith("sha256="):
                    continue
                rel = os.path.normpath(f"{site_packages_rel}/{path}").replace(os.sep, "/")
                raw = base64.urlsafe_b64decode(digest[7:] + "=" * (-len(digest[7:]) % 4))
                known[rel] = raw.hex()
        return known

    return hashes


# --- inside -----------------------------------------------------------------------------------


def walk(tree: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(tree-relative path, "file" | "link" | "dir", lstat) of every entry, links not
    followed: os.scandir, one lstat per entry (~10,000 per large wheel)."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        with os.scandir(tree / prefix if prefix else tree) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            st = os.lstat(entry.path)  # DirEntry.stat() has no inode on Windows
            if stat.S_ISLNK(st.st_mode):
                yield rel, "link", st
            elif stat.S_ISDIR(st.st_mode):
                yield rel, "dir", st
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                yield rel, "file", st
            else:
                raise OSError(errno.EINVAL, "an image holds files, folders and links only", rel)


def _fingerprint(path: Path) -> dict[str, int]:
    return _stat_fingerprint(path.lstat())


_REHASH_ON = ("size", "mtime_ns", "ino", "dev")


def stat_fingerprint(st: os.stat_result) -> dict[str, int]:
    """What a take compares: size, mtime, inode, device, ctime and link count."""
    return _stat_fingerprint(st)


def must_hash(recorded: Mapping[str, object], seen: Mapping[str, int]) -> bool:
    """Whether a file fingerprinted `recorded` and now `seen` may hold other bytes: its size,
    mtime, inode or device moved, or its ctime moved while its link count did not (module
    docstring: a link made or removed moves both, an edit in place only the ctime)."""
    if any(recorded.get(k) != seen[k] for k in _REHASH_ON):
        return True
    return recorded.get("ctime_ns") != seen["ctime_ns"] and recorded.get("nlink") == seen["nlink"]


def _stat_fingerprint(st: os.stat_result) -> dict[str, int]:
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
        "ctime_ns": st.st_ctime_ns,
        "nlink": st.st_nlink,
    }


def _read_nofollow(path: Path) -> bytes:
    """The bytes of `path`, refusing a link (the image's own listing, never through a link)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return f.read()


def _record_links(image: Image) -> None:
    """Record in `image.json` the ctime and link count each file has after `link_into` (which
    moved both), when nothing else of its fingerprint moved; the next take then hashes a file
    whose ctime moves without its link count (an edit in place)."""
    folder = image.root.parent
    try:
        meta = json.loads(_read_nofollow(folder / _META))
    except (OSError, ValueError):
        return
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict):
        return
    base = os.fspath(image.root)
    changed = False
    for rel in image.files:
        entry = files.get(rel)
        try:
            st = os.lstat(f"{base}/{rel}")
        except OSError:
            continue
        seen = _stat_fingerprint(st)
        if not isinstance(entry, dict) or any(entry.get(k) != seen[k] for k in _REHASH_ON):
            continue
        if entry.get("ctime_ns") != seen["ctime_ns"] or entry.get("nlink") != seen["nlink"]:
            entry.update(seen)
            changed = True
    if changed and is_plain_dir(folder):
        with staged_file(folder / _META) as tmp:
            tmp.write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")


def _load(folder: Path) -> Image | None:
    """The image in `folder` if every file still holds its recorded bytes, else None.

    None as well when its tree is a link (never followed).
    """
    if not is_plain_dir(folder / _FILES):  # the shard and `folder`: `Entry.load` checked them
        return None
    try:
        meta = json.loads(_read_nofollow(folder / _META))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    files = meta.get("files")
    info = meta.get("info")
    if not isinstance(files, dict) or not isinstance(info, dict):
        return None
    tree = folder / _FILES
    regular: list[str] = []
    links: dict[str, str] = {}
    dirs: list[str] = []
    moved = False
    for rel, entry in files.items():
        path = tree / rel
        if not isinstance(entry, dict):
            return None
        try:
            mode = path.lstat().st_mode
            if entry.get("dir"):
                if not stat.S_ISDIR(mode):
                    return None
                dirs.append(rel)
                continue
            if "link" in entry:
                if not stat.S_ISLNK(mode) or str(path.readlink()) != entry["link"]:
                    return None
                links[rel] = str(entry["link"])
                continue
            if not stat.S_ISREG(mode):
                return None
            seen = _fingerprint(path)
            if must_hash(entry, seen) and file_sha256(path) != entry.get("sha256"):
                return None
            if any(entry.get(k) != v for k, v in seen.items()):
                entry.update(seen)  # same bytes, moved stat (a link, a restored cache)
                moved = True
        except OSError:
            return None
        regular.append(rel)
    if moved:  # record the new fingerprints, so the next take is a stat again
        with staged_file(folder / _META) as tmp:
            tmp.write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
    sha256s = {rel: str(files[rel]["sha256"]) for rel in regular}
    return Image(tree, tuple(sorted(regular)), links, tuple(sorted(dirs)), info, sha256s)


def _link_or_copy(src: str, target: str) -> None:
    try:
        os.link(src, target)
    except OSError as exc:
        if exc.errno not in _LINK_ERRORS:
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # noqa: PTH108 - copy2 would write through what is there
        shutil.copy2(src, target)
