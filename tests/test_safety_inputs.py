"""Input edges (issue 22, item 10): every file runenv reads is bounded (size, nesting, only a
regular file, no repeated JSON key) and every identifier is checked whole, in ASCII."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from runenv.cli import main
from runenv.config.load import load_variant
from support.errors import one_line_error


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "versions" / "3.12.10").mkdir(parents=True)
    (root / "versions" / "3.12.10" / "config.json").write_text("{}")
    (root / ".git").mkdir()
    return root


def _list(project: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["-q", "--project", str(project), "list"]) == 2
    return one_line_error(capsys.readouterr().err)


def test_a_config_nested_200000_levels_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = '{"a":' * 200_000 + "1" + "}" * 200_000
    (project / "versions" / "3.12.10" / "config.json").write_text(deep)
    line = _list(project, capsys)
    assert "versions/3.12.10/config.json" in line and "nested deeper" in line
    toml = "a = " + "[" * 200_000 + "]" * 200_000 + "\n"
    (project / "versions" / "3.12.10" / "config.json").unlink()
    (project / "versions" / "3.12.10" / "config.toml").write_text(toml)
    assert "nested deeper" in _list(project, capsys)


def test_a_repeated_json_key_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "shared-config.json").write_text(
        '{"python": {"version": "3.12.10"}, "python": {"version": "3.11.7"}}'
    )
    line = _list(project, capsys)
    assert "shared-config.json" in line and "'python' appears twice" in line


def test_a_fifo_config_is_refused_not_ignored(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(project / "shared-config.json")  # reading it would block without a writer
    line = _list(project, capsys)
    assert "shared-config.json" in line and "FIFO" in line


def test_a_config_larger_than_the_limit_is_refused_before_it_is_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = project / "versions" / "3.12.10" / "config.json"
    with big.open("wb") as f:  # sparse: 2 GB of size without 2 GB of disk
        f.truncate(2 << 30)
    line = _list(project, capsys)
    assert "config.json" in line and "more than the" in line


def test_cached_wheels_from_dev_zero_is_bounded(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["-q", "--project", str(project), "matrix", "--cached-wheels", "/dev/zero"])
    assert code == 2
    line = one_line_error(capsys.readouterr().err)
    assert "/dev/zero" in line and "not a regular file" in line


@pytest.mark.parametrize(
    "version", ["3.11.7\n", "3.11.\u0667", "\u0663.11.7", "3.11.7 "], ids=["nl", "ar7", "ar3", "sp"]
)
def test_versions_with_a_newline_or_foreign_digits_are_refused(
    project: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"python": {"version": version}}
    (project / "versions" / "3.12.10" / "config.json").write_text(json.dumps(config))
    line = _list(project, capsys)
    assert "python.version" in line


@pytest.mark.parametrize("value", ["2.28\n", "2.\u0662\u0668"], ids=["nl", "arabic"])
def test_glibc_with_a_newline_or_foreign_digits_is_refused(project: Path, value: str) -> None:
    config = {"platforms": {"linux-x86_64": {"glibc": value}}}
    (project / "versions" / "3.12.10" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="glibc"):
        load_variant(project, "3.12.10")


@pytest.mark.parametrize("name", ["3.12.10\n", "3.12.1\u0660", "six\n"], ids=["nl", "ar", "pkg"])
def test_names_with_a_newline_or_foreign_digits_are_refused(
    project: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "--project", str(project), "config", name]) == 2
    assert "variant" in one_line_error(capsys.readouterr().err)
    config = {"packages": {"noDeps": [name]}}
    (project / "versions" / "3.12.10" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"package name|not a"):
        load_variant(project, "3.12.10")


def test_the_import_refuses_a_variant_folder_named_with_a_newline(
    tmp_path: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "python-3.12.10\n").mkdir(parents=True)
    (checkout / "python-3.12.10\n" / "config.json").write_text("{}")
    code = main(["-q", "--project", str(project), "import", str(checkout)])
    assert code == 2
    assert "variant" in one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in (project / "versions").iterdir()) == ["3.12.10"]


def test_stdin_cached_wheels_is_bounded(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Endless:
        def read(self, n: int) -> str:
            return "a" * n

    monkeypatch.setattr(sys, "stdin", Endless())
    assert main(["-q", "--project", str(project), "matrix", "--cached-wheels", "-"]) == 2
    assert "more than the" in one_line_error(capsys.readouterr().err)
