"""`runenv import` against hostile checkouts (issue 22, items 1 and 6): a path written in a
checkout is checked as written, component by component, before anything follows or writes it;
`--force` replaces all or nothing and replaces a link, never what it leads to."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from runenv.cli import main
from support.errors import one_line_error


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`, links as links, files by content."""
    seen = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            seen[rel] = "-> " + str(path.readlink())
        elif path.is_file():
            seen[rel] = path.read_text(errors="replace")
        else:
            seen[rel] = "/"
    return seen


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """tmp_path/{checkout, proj, outside}: a checkout with one valid variant."""
    checkout = tmp_path / "checkout"
    variant = checkout / "python-3.12.10"
    variant.mkdir(parents=True)
    (variant / "config.json").write_text("{}")
    (checkout / "shared-config.json").write_text('{"python": {}}')
    (tmp_path / "proj" / ".git").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("keep me")
    return tmp_path


def _import(world: Path, *extra: str) -> int:
    proj, checkout = world / "proj", world / "checkout"
    return main(["-q", "--project", str(proj), "import", str(checkout), *extra])


def _copy_from(world: Path, source: str, variant: str = "python-3.12.10") -> None:
    config = {"packages": {"copyFiles": [{"from": source, "to": "x"}]}}
    (world / "checkout" / variant / "config.json").write_text(json.dumps(config))


def test_a_link_then_dotdot_in_copy_files_writes_nothing_outside(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variant = world / "checkout" / "python-3.12.10"
    deep = variant.joinpath(*(f"d{i}" for i in range(1, 11)))
    deep.mkdir(parents=True)
    (variant / "L").symlink_to(deep.relative_to(variant))
    (world / "outside" / "x").write_text("outside")
    # Resolved, L/../../.. stays inside the variant folder; walked as written by the OS after
    # following L, it climbs out of the project and names a file outside.
    _copy_from(world, "L/" + "../" * 10 + "../../outside/x")
    before = snapshot(world)
    for _ in range(2):
        assert _import(world) == 2
        line = one_line_error(capsys.readouterr().err)
        assert "python-3.12.10/config.json" in line and "'..'" in line
    assert snapshot(world) == before


def test_a_copy_source_through_a_link_out_of_the_checkout_is_refused(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variant = world / "checkout" / "python-3.12.10"
    (variant / "out").symlink_to(world / "outside")
    _copy_from(world, "out/precious.txt")
    before = snapshot(world)
    assert _import(world) == 2
    assert "leads out of its folder" in one_line_error(capsys.readouterr().err)
    assert snapshot(world) == before


def test_a_copy_source_through_a_link_inside_is_copied_from_where_it_leads(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variant = world / "checkout" / "python-3.12.10"
    (variant / "real").mkdir()
    (variant / "real" / "f.txt").write_text("payload")
    (variant / "alias").symlink_to("real")
    _copy_from(world, "alias/f.txt")
    assert _import(world) == 0
    capsys.readouterr()
    copied = world / "proj" / "versions" / "3.12.10" / "alias" / "f.txt"
    assert copied.read_text() == "payload" and not copied.is_symlink()


def test_a_variant_folder_that_links_out_of_the_checkout_is_refused(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = world / "outside" / "python-3.12.11"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text("{}")
    (world / "checkout" / "python-3.12.11").symlink_to(elsewhere)
    before = snapshot(world)
    assert _import(world) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "python-3.12.11" in line and "leads out" in line
    assert snapshot(world) == before


@pytest.mark.parametrize("kind", ["dangling", "outside"])
def test_force_replaces_a_linked_variant_folder_whole_and_never_follows_it(
    world: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (world / "checkout" / "python-3.12.11").mkdir()
    (world / "checkout" / "python-3.12.11" / "config.json").write_text("{}")
    versions = world / "proj" / "versions"
    versions.mkdir()
    (versions / "3.12.10").mkdir()
    (versions / "3.12.10" / "config.json").write_text('{"old": 1}')
    target = world / "nowhere" if kind == "dangling" else world / "outside"
    (versions / "3.12.11").symlink_to(target)
    (world / "proj" / "shared-config.json").write_text("{}")
    outside_before = snapshot(world / "outside")
    assert _import(world, "--force") == 0
    capsys.readouterr()
    assert snapshot(world / "outside") == outside_before  # never written through the link
    for variant in ("3.12.10", "3.12.11"):
        folder = versions / variant
        assert not folder.is_symlink() and (folder / "config.json").read_text() == "{}"
    assert (world / "proj" / "shared-config.json").read_text() == '{"python": {}}'


def test_force_that_cannot_finish_changes_nothing(
    world: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old variant and shared config are put aside and the new shared config placed; the
    variant's move then fails (a disk error, injected): everything is put back as it was."""
    proj = world / "proj"
    versions = proj / "versions"
    (versions / "3.12.10").mkdir(parents=True)
    (versions / "3.12.10" / "config.json").write_text('{"old": 1}')
    (proj / "shared-config.json").write_text('{"old": 2}')
    before = snapshot(proj)
    real_rename = Path.rename
    failed: list[Path] = []

    def failing_rename(self: Path, target: Path) -> Path:
        if Path(target) == versions / "3.12.10" and not failed:  # the undo's rename works
            failed.append(self)
            raise OSError(errno.EIO, "Input/output error", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    assert _import(world, "--force") == 1
    assert "nothing was changed" in one_line_error(capsys.readouterr().err)
    assert snapshot(proj) == before
