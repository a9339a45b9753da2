"""The listing of a built tree: what `runenv check` and a no-op `build` compare the tree with.

A build writes, with its locks (`pydist/.locks/<variant>/<platform>.files.json`, out of the
folder of trees), every entry of the tree as it was packed: each file's size, sha256 and exec
bit, each link's text, each folder. The manifest records the listing's sha256
(`tree_listing_sha256`), so the listing cannot be edited
to match an edited tree without the manifest telling.

`verify` hashes every file and names what differs (a file added, such as a `.pth` that would run
at start-up; a file removed; a file whose bytes, size or mode changed); `runenv check` calls it
before it runs anything from the tree. `is_intact`, for a no-op build, hashes only what may have
changed since the build: a fingerprint of every file (the image cache's rule,
`_images.must_hash`) is kept beside the listing.

At build time most files need no hashing: those linked from the image cache come with their
verified sha256, by inode (`_images.link_into(known=...)`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runenv import _bounded
from runenv._cache import file_sha256, staged_file
from runenv.errors import CheckError
from runenv.install.images import must_hash, stat_fingerprint, walk

FORMAT = 1
SUFFIX = ".files.json"
MANIFEST_KEY = "tree_listing_sha256"
_MAX_LISTING_BYTES = 256 << 20
_FINGERPRINTS = ".fingerprints.json"
_SHOWN = 5

Listing = dict[str, dict[str, Any]]


def path_of(tree: Path, markers: Path) -> Path:
    """Where the listing of `tree` lives: `<markers>/<tree name>.files.json`."""
    return markers / (tree.name + SUFFIX)


def _prints_of(tree: Path, markers: Path) -> Path:
    return markers / (tree.name + _FINGERPRINTS)


def make(tree: Path, known: Mapping[tuple[int, int], str] | None = None) -> Listing:
    """The listing of `tree` (links not followed); a file whose (device, inode) is in `known`
    takes the sha256 given there, any other is hashed."""
    known = known or {}
    entries: Listing = {}
    base = os.fspath(tree)
    for rel, kind, st in walk(tree):
        if kind == "dir":
            entries[rel] = {"dir": True}
        elif kind == "link":
            entries[rel] = {"link": str(Path(base, rel).readlink())}
        else:
            sha256 = known.get((st.st_dev, st.st_ino)) or file_sha256(Path(base, rel))
            entries[rel] = _file_entry(st, sha256)
    return entries


def encode(listing: Listing) -> bytes:
    """The listing's bytes as written (its sha256 is what the manifest records)."""
    doc = {"format": FORMAT, "entries": listing}
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def digest(listing: Listing) -> str:
    return hashlib.sha256(encode(listing)).hexdigest()


def write(tree: Path, listing: Listing, markers: Path) -> None:
    """Write the listing of the published `tree` into `markers`, with the fingerprint of each
    of its files (for `is_intact`)."""
    markers.mkdir(parents=True, exist_ok=True)
    with staged_file(path_of(tree, markers)) as tmp:
        tmp.write_bytes(encode(listing))
    prints: dict[str, dict[str, int]] = {}
    base = os.fspath(tree)
    for rel, entry in listing.items():
        if "sha256" in entry:
            prints[rel] = stat_fingerprint(os.lstat(f"{base}/{rel}"))
    _write_prints(tree, markers, prints)


def _write_prints(tree: Path, markers: Path, prints: Mapping[str, Mapping[str, int]]) -> None:
    with staged_file(_prints_of(tree, markers)) as tmp:
        tmp.write_text(json.dumps({"tree": str(tree), "files": prints}), encoding="utf-8")


def verify(tree: Path, manifest: Mapping[str, Any], markers: Path) -> None:
    """CheckError (one line) unless `tree` holds exactly what its build listed; every file is
    hashed. Called before anything of the tree runs."""
    listing = _recorded(tree, manifest, markers)
    differences = _compare(tree, listing, lambda rel, st: True)
    if differences:
        raise CheckError(
            f"{tree} is not the tree its build made: {_summary(differences)}: run "
            "`runenv build --force` (or remove the tree) to make it again"
        )


def is_intact(tree: Path, manifest: Mapping[str, Any], markers: Path) -> bool:
    """Whether `tree` still holds what its build listed, hashing only the files whose
    fingerprint (kept in `markers` by `write`) says they may have changed."""
    try:
        listing = _recorded(tree, manifest, markers)
    except CheckError:
        return False
    try:
        kept = json.loads(_prints_of(tree, markers).read_text(encoding="utf-8"))
        prints = kept["files"] if kept.get("tree") == str(tree) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        prints = {}

    moved: dict[str, dict[str, int]] = {}

    def suspect(rel: str, st: os.stat_result) -> bool:
        recorded, seen = prints.get(rel), stat_fingerprint(st)
        if recorded != seen:
            moved[rel] = seen
        return not isinstance(recorded, dict) or must_hash(recorded, seen)

    try:
        intact = not _compare(tree, listing, suspect)
    except OSError:
        return False
    if intact and moved:  # same bytes, moved stat: recorded, so the next no-op is a stat again
        _write_prints(tree, markers, {**prints, **moved})
    return intact


# --- inside -----------------------------------------------------------------------------------


def _file_entry(st: os.stat_result, sha256: str) -> dict[str, Any]:
    return {"size": st.st_size, "sha256": sha256, "exec": bool(st.st_mode & stat.S_IXUSR)}


def _recorded(tree: Path, manifest: Mapping[str, Any], markers: Path) -> Listing:
    """The listing the build wrote, if its bytes are those the manifest names."""
    expected = manifest.get(MANIFEST_KEY)
    path = path_of(tree, markers)
    if not isinstance(expected, str):
        raise CheckError(
            f"{tree}: its manifest records no listing of the tree (built by an older runenv): "
            "run `runenv build --force` to build it again"
        )
    try:
        data = _bounded.read_bytes(path, _MAX_LISTING_BYTES)
    except (OSError, _bounded.InputError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise CheckError(f"{path}: cannot read the tree's listing ({why}): build again") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckError(f"{path}: not the listing the manifest names: build again")
    entries = json.loads(data)["entries"]
    if not isinstance(entries, dict):
        raise CheckError(f"{path}: not a listing: build again")
    return entries


def _compare(tree: Path, listing: Listing, suspect: Any) -> list[str]:
    """What differs between `tree` and `listing`, as short phrases; files are hashed when
    `suspect(rel, lstat)` says so."""
    differences: list[str] = []
    seen: set[str] = set()
    base = os.fspath(tree)
    try:
        walked = list(walk(tree))
    except OSError as exc:  # a FIFO or a device in the tree
        return [f"{exc.filename}: not a file, folder or link"]
    for rel, kind, st in walked:
        seen.add(rel)
        entry = listing.get(rel)
        if entry is None:
            differences.append(f"{rel} added")
        elif kind == "dir":
            if not entry.get("dir"):
                differences.append(f"{rel} is a folder")
        elif kind == "link":
            if entry.get("link") != str(Path(base, rel).readlink()):
                differences.append(f"{rel} is not the link it was")
        elif "sha256" not in entry:
            differences.append(f"{rel} is a file")
        elif entry != _file_entry(st, entry["sha256"]):
            differences.append(f"{rel} changed (size or mode)")
        elif suspect(rel, st) and file_sha256(Path(base, rel)) != entry["sha256"]:
            differences.append(f"{rel} changed")
    differences += [f"{rel} missing" for rel in sorted(set(listing) - seen)]
    return differences


def _summary(differences: list[str]) -> str:
    shown = "; ".join(differences[:_SHOWN])
    more = len(differences) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
