"""`runenv wheels --out D` never deletes what it did not write (issue 22, item 5): a folder is
replaced only when it holds exactly an earlier output (its index and the wheels it names), and
the new folder gets the mode any folder the user makes gets, not mkdtemp's 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runenv.sources import built_wheels
from support.index import IndexServer
from support.project import VARIANT
from test_wheel_jobs import _main, wheels_out

__all__ = ["wheels_out"]


def _again(root: Path, out: Path, server: IndexServer) -> int:
    args = ("--platform", "host", "--out", str(out), "--index-url", server.index_url)
    return _main(root, "wheels", VARIANT, *args)


def test_a_folder_holding_a_users_file_beside_an_index_is_not_replaced(
    wheels_out: tuple[Path, Path],
    pkg_server: IndexServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, out = wheels_out
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not 0700
    (out / "precious.txt").write_text("keep me")
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert _again(root, out, pkg_server) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precious.txt" in err[0] and "--out" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "precious.txt").read_text() == "keep me"
    # An index of its own beside a user's files does not make a folder replaceable either.
    mine = out.parent / "mine"
    mine.mkdir()
    (mine / built_wheels.INDEX_NAME).write_text("{}")
    (mine / "notes.txt").write_text("mine")
    assert _again(root, mine, pkg_server) == 2
    assert sorted(p.name for p in mine.iterdir()) == sorted([built_wheels.INDEX_NAME, "notes.txt"])
    # Exactly an earlier output is replaced.
    (out / "precious.txt").unlink()
    assert _again(root, out, pkg_server) == 0
