"""`runenv check` and a no-op `build` against a tampered tree (issue 22, item 3): the tree is
compared with the listing its build recorded before anything of it runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runenv.cli import main
from runenv.tree import listing
from support.errors import one_line_error
from support.index import IndexServer
from support.project import SITE, VARIANT, build, make_project
from support.spy import spy_hashing


@pytest.fixture
def built(
    tmp_path: Path, rtpure_project: Path, pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "cache"))
    assert build(rtpure_project, pkg_server) == 0
    return rtpure_project


def _tree(root: Path) -> Path:
    return root / "pydist" / VARIANT / "linux-x64"


def _check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-q", "--project", str(root), "check", VARIANT])
    return code, capsys.readouterr().err


def _rebuilds(root: Path, server: IndexServer, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert build(root, server) == 0
    assert capsys.readouterr().out.startswith("built:")


def test_an_added_pth_fails_the_check_without_running_and_rebuilds(
    built: Path, tmp_path: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check(built, capsys)[0] == 0
    ran = tmp_path / "the-pth-ran"
    pth = _tree(built) / SITE / "zz-evil.pth"
    pth.write_text(f"import pathlib; pathlib.Path({str(ran)!r}).write_text('ran')\n")
    code, err = _check(built, capsys)
    assert code == 1
    line = one_line_error(err)
    assert f"{SITE}/zz-evil.pth added" in line
    assert not ran.exists()  # nothing of the tree ran
    _rebuilds(built, pkg_server, capsys)
    assert not pth.exists()
    assert _check(built, capsys)[0] == 0
    assert not ran.exists()


def test_a_same_size_edit_with_the_mtime_set_back_fails_the_check_and_rebuilds(
    built: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (metadata,) = (_tree(built) / SITE).glob("rtpure-*.dist-info/METADATA")
    before = metadata.stat()
    data = metadata.read_bytes()
    with metadata.open("r+b") as f:  # in place: the image cache shares this inode
        f.write(data.replace(b"rtpure", b"rtevil", 1)[: len(data)])
    os.utime(metadata, ns=(before.st_atime_ns, before.st_mtime_ns))
    code, err = _check(built, capsys)
    assert code == 1
    assert f"{metadata.relative_to(_tree(built)).as_posix()} changed" in one_line_error(err)
    _rebuilds(built, pkg_server, capsys)
    assert b"rtevil" not in metadata.read_bytes()


def test_an_added_module_a_removed_file_and_a_mode_change_are_all_named(
    built: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _tree(built) / SITE
    (site / "planted.py").write_text("print('planted')\n")
    (site / "rtpure" / "__init__.py").unlink()
    (site / "rtpure" / "__init__.py").write_text("")  # a new file in its place
    (site / "rtpure" / "__init__.py").chmod(0o755)
    code, err = _check(built, capsys)
    assert code == 1
    line = one_line_error(err)
    assert f"{SITE}/planted.py added" in line
    assert f"{SITE}/rtpure/__init__.py changed (size or mode)" in line
    _rebuilds(built, pkg_server, capsys)
    assert not (site / "planted.py").exists()


def test_an_untouched_tree_stays_up_to_date(
    built: Path, tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Another project linking the same images moves their ctime and link count: not an edit.
    other = make_project(tmp_path / "q", pbs, ["rtpure==1.0"])
    assert build(other, pkg_server) == 0
    capsys.readouterr()
    assert build(built, pkg_server) == 0
    assert capsys.readouterr().out.startswith("up to date:")


def test_after_a_check_a_no_op_build_hashes_at_most_once(
    built: Path, pkg_server: IndexServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # The check links the tree elsewhere and removes that copy: every file's ctime moves, its
    # link count comes back. The next no-op hashes (an edit in place would look the same),
    # records the new fingerprints, and the one after is a stat per file again.
    assert _check(built, capsys)[0] == 0
    hashed = spy_hashing(monkeypatch, listing)
    seen = []
    for _ in range(2):
        capsys.readouterr()
        assert build(built, pkg_server) == 0
        assert capsys.readouterr().out.startswith("up to date:")
        seen.append(len(hashed))
        hashed.clear()
    assert seen[0] > 0 and seen[1] == 0
