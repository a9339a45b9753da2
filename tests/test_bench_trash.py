"""The benchmark's trash (`benchmarks.trash`): trees moved aside free no inode, the trash
emptied only below the free space asked for, and the wait after a removal as long as what was
removed calls for (one minute, six where asked), on real folders."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmarks import trash
from benchmarks.trash import Trash, disk_busy_ms


def _tree(root: Path, files: int = 20) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        (root / "sub" / f"f{i}").write_text(str(i))
    return root


def test_a_discarded_tree_is_renamed_and_the_trash_emptied_only_when_the_disk_is_low(
    tmp_path: Path,
) -> None:
    bin_ = Trash()
    bin_.root = tmp_path / "trash"
    tree = _tree(tmp_path / "a")
    inode = (tree / "sub" / "f3").stat().st_ino
    bin_.discard(tree, low_disk=0)  # always enough room: kept
    assert not tree.exists()
    assert (bin_.root / "1" / "sub" / "f3").stat().st_ino == inode  # moved, not copied
    assert bin_.removed_at is None  # nothing freed: no wait
    bin_.discard(_tree(tmp_path / "b"), low_disk=1 << 62)  # never enough: emptied
    assert not bin_.root.exists()
    assert bin_.removed_at is not None and bin_.quiet == Trash.QUIET
    bin_.discard(_tree(tmp_path / "c"), low_disk=1 << 62, quiet=Trash.QUIET_TRASH)
    assert bin_.quiet == Trash.QUIET_TRASH  # the consumer's: as long as ext4 needs


def test_removing_nothing_asks_for_no_wait_and_a_small_removal_for_a_minute(
    tmp_path: Path,
) -> None:
    bin_ = Trash()
    bin_.remove(tmp_path / "missing")
    assert bin_.removed_at is None
    bin_.remove(_tree(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    assert bin_.removed_at is not None and bin_.quiet == Trash.QUIET


def test_settle_waits_out_the_rest_of_the_quiet_time_then_forgets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(trash.time, "sleep", slept.append)
    monkeypatch.setattr(trash, "wait_for_quiet_disk", lambda path: None)
    # settle() syncs before it reckons the wait: with gigabytes dirty that took seconds, and
    # the wait came out that much shorter than the bound below.
    monkeypatch.setattr(trash.os, "sync", lambda: None)
    bin_ = Trash()
    bin_.root = tmp_path / "trash"
    bin_.root.mkdir()
    bin_.remove(bin_.root, Trash.QUIET_TRASH)
    bin_.removed_at = time.monotonic() - 100  # removed 100 s ago
    bin_.settle()
    assert len(slept) == 1 and Trash.QUIET_TRASH - 101 < slept[0] <= Trash.QUIET_TRASH - 100
    assert bin_.removed_at is None and bin_.quiet == Trash.QUIET
    bin_.settle()  # nothing removed since: no wait
    assert len(slept) == 1


@pytest.mark.skipif(not Path("/sys/dev/block").is_dir(), reason="Linux's block device stats")
def test_the_disk_holding_a_folder_reports_its_busy_time(tmp_path: Path) -> None:
    busy = disk_busy_ms(tmp_path)
    if busy is None:  # a file system without a block device (tmpfs, overlay): nothing to wait on
        dev = tmp_path.stat().st_dev
        assert not Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat").exists()
    else:
        assert busy >= 0
        trash.wait_for_quiet_disk(tmp_path, limit=1.0, window=0.5)  # returns, quiet or not


def test_a_removal_elsewhere_makes_the_next_timed_command_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build's own temp trees are removed behind the trash's back: noted, the next settle
    waits as long as asked, the longest of two asks."""
    slept: list[float] = []
    monkeypatch.setattr(trash.time, "sleep", slept.append)
    monkeypatch.setattr(trash, "wait_for_quiet_disk", lambda path: None)
    monkeypatch.setattr(trash.os, "sync", lambda: None)
    bin_ = Trash()
    bin_.removed_elsewhere(Trash.QUIET_TRASH)
    bin_.removed_elsewhere()  # a shorter ask does not shorten it
    bin_.settle()
    assert len(slept) == 1 and Trash.QUIET_TRASH - 1 < slept[0] <= Trash.QUIET_TRASH


def test_the_page_cache_is_left_alone_where_it_cannot_be_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trash, "DROP_CACHES", tmp_path / "no-such-folder" / "drop_caches")
    monkeypatch.setattr(trash.os, "sync", lambda: None)
    assert trash.drop_page_cache() is False
