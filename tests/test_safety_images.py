"""The image cache against a hostile or unlucky user (issue 22, items 2 and 7): an in-place
edit through a linked tree with its mtime set back, an image folder replaced by a link, a
killed maker's leftovers, and a sign command that writes more than the binaries."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.config.load import load_variant
from runenv.install import images
from runenv.pipeline.build import build_target
from runenv.pipeline.context import BuildOptions
from runenv.platforms import host_platform
from support.index import IndexServer
from support.project import SITE, VARIANT, build, make_project


def _make(calls: list[int]) -> Callable[[Path], dict[str, object]]:
    def make(tree: Path) -> dict[str, object]:
        calls.append(1)
        (tree / "pkg").mkdir()
        (tree / "pkg" / "a.py").write_text("A = 1\n")
        return {}

    return make


def test_a_same_size_edit_with_the_mtime_set_back_is_caught(tmp_path: Path) -> None:
    cache, calls = Cache(tmp_path / "cache"), []
    key = images.key(kind="edit")
    image = images.ensure(cache, key, _make(calls))
    tree = tmp_path / "tree"
    images.link_into(image, tree)
    linked = tree / "pkg" / "a.py"
    before = linked.stat()
    assert before.st_nlink == 2
    # Later, nothing linked meanwhile: the user edits the tree's file in place, same size,
    # and sets its mtime back. Only the ctime tells.
    with linked.open("r+b") as f:
        f.write(b"B")
    os.utime(linked, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert linked.stat().st_mtime_ns == before.st_mtime_ns
    again = images.ensure(cache, key, _make(calls))
    assert calls == [1, 1]  # evicted and made again
    assert (again.root / "pkg" / "a.py").read_text() == "A = 1\n"


def test_links_made_and_removed_by_builds_cost_no_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, calls = Cache(tmp_path / "cache"), []
    key = images.key(kind="links")
    image = images.ensure(cache, key, _make(calls))
    images.link_into(image, tmp_path / "t1")
    images.link_into(image, tmp_path / "t2")
    (tmp_path / "t1" / "pkg" / "a.py").unlink()  # an old tree removed
    hashed: list[Path] = []
    monkeypatch.setattr(images, "file_sha256", lambda p: hashed.append(p) or "")
    images.ensure(cache, key, _make(calls))
    assert calls == [1] and hashed == []


def test_an_image_folder_replaced_by_a_link_is_never_used_nor_written_through(
    tmp_path: Path,
) -> None:
    cache, calls = Cache(tmp_path / "cache"), []
    key = images.key(kind="linked")
    image = images.ensure(cache, key, _make(calls))
    folder = image.root.parent
    outside = tmp_path / "outside"
    # The same bytes, elsewhere (new inodes: a take would hash them, find them good and
    # record their new fingerprints in image.json), and a link in the image's place.
    shutil.copytree(folder, outside, symlinks=True)
    shutil.rmtree(folder)
    folder.symlink_to(outside)
    listing = (outside / "image.json").read_bytes()
    again = images.ensure(cache, key, _make(calls))
    assert calls == [1, 1]  # not used: made again, in a plain folder
    assert not folder.is_symlink() and folder.is_dir()
    assert again.root == folder / "tree" and (again.root / "pkg" / "a.py").is_file()
    assert (outside / "image.json").read_bytes() == listing  # not rewritten through the link


def test_a_killed_makers_leftovers_are_swept(tmp_path: Path) -> None:
    cache, calls = Cache(tmp_path / "cache"), []
    key = images.key(kind="swept")
    shard = cache.section(images.SECTION) / key[:2]
    left = shard / f".tmp-{key}.killed"
    (left / "tree").mkdir(parents=True)
    (left / "tree" / "big").write_bytes(b"x" * 1000)
    images.ensure(cache, key, _make(calls))
    assert not left.exists()
    assert sorted(p.name for p in shard.iterdir() if not p.name.endswith(".lock")) == [key]


TOUCH_EVERYTHING = """\
import os, sys
for dirpath, _dirs, files in os.walk(os.environ["RUNENV_SIGN_TREE"]):
    for name in files:
        path = os.path.join(dirpath, name)
        if not os.path.islink(path):
            with open(path, "ab") as fh:
                fh.write(b"#touched-by-the-sign-command")
"""


def test_a_sign_command_that_writes_any_file_never_reaches_the_cache(
    tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache))
    root = make_project(tmp_path / "p", pbs, ["rtpure==1.0"])
    script = tmp_path / "touch.py"
    script.write_text(TOUCH_EVERYTHING)
    vc = load_variant(root, VARIANT)
    options = BuildOptions(
        dist=root / "dist",
        pydist=root / "pydist",
        default_index=pkg_server.index_url,
        sign_command=shlex.join([sys.executable, str(script)]),
    )
    result = build_target(vc, host_platform(), options, Cache.default())
    touched = result.tree / SITE / "rtpure" / "__init__.py"
    assert touched.read_bytes().endswith(b"#touched-by-the-sign-command")
    images_dir = cache / images.SECTION
    checked = 0
    for path in images_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "image.json":
            assert b"#touched-by-the-sign-command" not in path.read_bytes(), path
            checked += 1
    assert checked > 100
    # A plain build of another project takes the images as they were.
    other = make_project(tmp_path / "q", pbs, ["rtpure==1.0"])
    assert build(other, pkg_server) == 0
    tree = other / "pydist" / VARIANT / host_platform().value
    assert b"touched" not in (tree / SITE / "rtpure" / "__init__.py").read_bytes()
    assert json.loads((other / "dist").glob("*.json").__next__().read_text())["sha256"]
