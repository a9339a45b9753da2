"""Warm builds link installed images from the cache: same bytes as a cold build, every image
verified on each take, a damaged one evicted and made again, copies where links cannot go."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.install import images
from support.fs import tmpfs
from support.index import IndexServer
from support.project import (
    SITE,
    VARIANT,
    archive_of,
    build,
    make_project,
    manifest_of,
    run_unpacked,
)
from support.spy import spy_hashing


@pytest.fixture
def warm(
    tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """A project built once with its own cache; returns (project, cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache))
    root = make_project(tmp_path / "p", pbs, ["rtpure==1.0", "rtnative==1.0"])
    assert build(root, pkg_server) == 0
    return root, cache


def _outputs_removed(root: Path) -> None:
    shutil.rmtree(root / "dist")
    shutil.rmtree(root / "pydist")


def test_a_warm_build_links_images_and_gives_the_same_bytes(
    warm: tuple[Path, Path], pkg_server: IndexServer
) -> None:
    root, cache = warm
    first = manifest_of(root)["sha256"]
    _outputs_removed(root)
    assert build(root, pkg_server) == 0
    assert manifest_of(root)["sha256"] == first
    tree = root / "pydist" / VARIANT / "linux-x64"
    installed = tree / SITE / "rtpure" / "__init__.py"
    interpreter = (tree / "bin" / "python3").resolve()
    images_dir = cache / images.SECTION
    # Both the package and the interpreter are links to the images in the cache.
    for path in (installed, interpreter):
        assert path.stat().st_nlink >= 2
        assert any(p.samefile(path) for p in images_dir.rglob(path.name))


def test_a_file_changed_through_a_linked_tree_is_caught_and_the_image_made_again(
    warm: tuple[Path, Path],
    pkg_server: IndexServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, _ = warm
    first = manifest_of(root)["sha256"]
    tree = root / "pydist" / VARIANT / "linux-x64"
    shared = tree / SITE / "rtpure" / "__init__.py"
    assert shared.stat().st_nlink >= 2
    with shared.open("a") as f:  # an in-place edit reaches the image through the link
        f.write("VALUE = 'EDITED IN PLACE'\n")
    _outputs_removed(root)
    with caplog.at_level(logging.WARNING):
        assert build(root, pkg_server) == 0
    assert any("evicted" in r.getMessage() for r in caplog.records)
    assert manifest_of(root)["sha256"] == first
    assert "EDITED" not in run_unpacked(root, tmp_path / "rt", "import rtpure; print(rtpure.VALUE)")


def test_an_image_copied_elsewhere_is_hashed_again_then_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "c1")

    def make(tree: Path) -> dict[str, object]:
        (tree / "pkg").mkdir()
        (tree / "pkg" / "a.py").write_text("A = 1\n")
        (tree / "empty").mkdir()
        (tree / "link").symlink_to("pkg/a.py")
        return {"made": True}

    key = images.key(kind="test")
    image = images.ensure(cache, key, make)
    assert image.files == ("pkg/a.py",) and image.links == {"link": "pkg/a.py"}
    assert set(image.dirs) == {"empty", "pkg"}
    shutil.copytree(tmp_path / "c1", tmp_path / "c2", symlinks=True)
    hashed = spy_hashing(monkeypatch, images)

    def never(tree: Path) -> dict[str, object]:
        raise AssertionError("a verified image is not made again")

    copy = images.ensure(Cache(tmp_path / "c2"), key, never)
    assert [p.name for p in hashed] == ["a.py"]
    images.ensure(Cache(tmp_path / "c2"), key, never)
    assert len(hashed) == 1  # the new fingerprints were recorded
    dest = tmp_path / "dest"
    images.link_into(copy, dest)
    assert (dest / "link").read_text() == "A = 1\n" and (dest / "empty").is_dir()


def test_linking_across_filesystems_falls_back_to_copies(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", 1024) as cache_dir:
        cache = Cache(cache_dir)

        def make(tree: Path) -> dict[str, object]:
            (tree / "tool").write_text("#!/bin/sh\n")
            (tree / "tool").chmod(0o755)
            return {}

        image = images.ensure(cache, images.key(kind="test"), make)
        dest = tmp_path / "tree"  # another filesystem than the tmpfs
        images.link_into(image, dest)
        copied = dest / "tool"
        assert copied.read_text() == "#!/bin/sh\n" and os.access(copied, os.X_OK)
        assert copied.stat().st_nlink == 1


def test_a_warm_build_of_the_same_inputs_reuses_the_kept_archive(
    warm: tuple[Path, Path], pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = warm
    first = manifest_of(root)["sha256"]
    name = archive_of(root).name
    kept = next(p for p in (cache / "archives").rglob(name) if p.is_file())
    from runenv.artifact import pack

    def no_pack(*args: object, **kwargs: object) -> object:
        raise AssertionError("an identical build's archive is reused, not packed again")

    _outputs_removed(root)
    with monkeypatch.context() as m:
        m.setattr(pack, "pack_tree", no_pack)
        assert build(root, pkg_server) == 0
    assert manifest_of(root)["sha256"] == first
    assert (root / "pydist" / VARIANT / "linux-x64" / "bin" / "python3").exists()
    # A kept archive that is not the bytes it was kept with is not reused: packed again.
    with kept.open("r+b") as f:
        f.seek(100)
        f.write(b"\0" * 8)
    _outputs_removed(root)
    assert build(root, pkg_server) == 0
    assert manifest_of(root)["sha256"] == first
    assert images.file_sha256(kept) == first  # kept again, from the new build
