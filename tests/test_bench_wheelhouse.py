"""The wheelhouse benchmark's pure parts (`python -m benchmarks wheelhouse`): the verdicts, the
table, the reference's commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from benchmarks import wheelhouse_report as report
from benchmarks.scenarios import wheelhouse
from benchmarks.targets import ratio


def entry(runs: list[float], **extra: object) -> dict[str, object]:
    return {"runs": runs, "parts": {}, "notes": [], "load": [3.5, 4.25], **extra}


def result_of(measurements: dict[str, dict[str, object]], runs: int = 3) -> dict[str, object]:
    return {
        "argv": "--runs 3",
        "machine": {
            "date": "2026-12-03 00:00 UTC",
            "runenv_commit": "abc1234",
            "cores": 2,
            "cpu": "test cpu",
            "memory_gb": 8.0,
            "load_start": "9.31 / 7.68 / 4.09",
            "load_end": "2.00 / 3.00 / 4.00",
        },
        "workloads": {
            "3.12.10": {
                "variant": "3.12.10",
                "locked": 10,
                "runs": runs,
                "measurements": measurements,
            }
        },
    }


def test_verdict_is_met_at_the_target_and_missed_above_it() -> None:
    assert report.verdict(0.3, 0.3) == "met"
    assert report.verdict(0.29, 0.3) == "met"
    assert report.verdict(0.31, 0.3) == "missed"
    assert report.verdict(None, 0.1) == "n/a"
    assert report.verdict(2.0, None) == ""
    assert ratio(3.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(3.0, 12.0) == 0.25


def test_rows_take_medians_and_judge_cold_and_warm_against_their_own_targets() -> None:
    result = result_of(
        {
            # medians: runenv cold 10, reference cold 40 -> 0.25x (met, <= 0.3x)
            "runenv_cold": entry([10.0, 99.0, 9.0], archive_bytes=[100, 100, 100]),
            "reference_cold": entry([40.0, 41.0, 1.0], archive_bytes=[400, 401, 402]),
            # medians: runenv warm 5, reference warm 20 -> 0.25x (missed, > 0.1x)
            "runenv_warm": entry([5.0, 5.0, 6.0]),
            "reference_warm": entry([20.0, 19.0, 30.0]),
            "runenv_installed": entry([8.0], archive_bytes=[300]),
            "block_venv": entry([4.0, 4.0, 4.0]),
            "block_venv_reference": entry([8.0, 8.0, 8.0]),
        }
    )
    rows = {r["what"].split(" (")[0]: r for r in report.rows(result)}
    cold = rows["3.12.10: cold build"]
    assert (cold["runenv"], cold["reference"], cold["ratio"]) == (10.0, 40.0, 0.25)
    assert (cold["target"], cold["verdict"]) == (0.3, "met")
    warm = rows["3.12.10: warm build"]
    assert (warm["ratio"], warm["target"], warm["verdict"]) == (0.25, 0.1, "missed")
    wheelhouse = rows["3.12.10: archive bytes, wheelhouse layout"]
    assert (wheelhouse["runenv"], wheelhouse["reference"]) == (100.0, 401.0)
    assert rows["3.12.10: archive bytes, installed layout"]["ratio"] == pytest.approx(300 / 401)
    assert rows["3.12.10: block venv"]["ratio"] == 0.5
    assert rows["3.12.10: block venv"]["verdict"] == ""


def test_a_missing_measurement_reads_n_a_not_a_pass() -> None:
    result = result_of({"runenv_cold": entry([10.0])}, runs=1)
    cold, warm = report.rows(result)[:2]
    assert cold["ratio"] is None and cold["verdict"] == "n/a"
    assert warm["verdict"] == "n/a"
    assert "block venv" not in " ".join(r["what"] for r in report.rows(result))


def test_markdown_has_the_table_the_load_and_the_rounds() -> None:
    result = result_of(
        {
            "runenv_cold": entry([10.0, 12.0, 11.0], archive_bytes=[123_400_000] * 3),
            "reference_cold": entry([40.0, 41.0, 42.0], archive_bytes=[200_000_000] * 3),
            "runenv_warm": entry([5.0, 5.0, 5.0]),
            "reference_warm": entry([20.0, 20.0, 20.0]),
        }
    )
    result["workloads"]["3.12.10"]["measurements"]["reference_warm"]["parts"] = {
        "tar | gzip -9": [7.0, 9.0, 8.0]
    }
    result["notes"] = ["A note on the method."]
    text = report.markdown(result)
    # A `|` inside a cell is escaped, or it would split the row.
    assert "| 20.0 s | 3.5-4.2 | tar \\| gzip -9 8.0 |" in text
    lines = text.splitlines()
    assert "| measurement | runenv | reference method | ratio | target | met/missed |" in lines
    assert (
        "| 3.12.10: cold build (3 rounds, medians) | 11.0 s | 41.0 s | 0.27x | <= 0.3x | met |"
        in lines
    )
    assert (
        "| 3.12.10: warm build (3 rounds, medians) | 5.00 s | 20.0 s | 0.25x | <= 0.1x | missed |"
        in lines
    )
    assert (
        "| 3.12.10: archive bytes, wheelhouse layout | 123.4 MB | 200.0 MB | 0.62x |  |  |" in lines
    )
    assert "| 3.12.10: archive bytes, installed layout | n/a | 200.0 MB | n/a |  |  |" in lines
    assert "**2 cores**" in text and "9.31 / 7.68 / 4.09 at the start" in text
    assert "| runenv cold | 10.0 / 12.0 / 11.0 | 11.0 s | 3.5-4.2 |  |" in lines
    assert "A note on the method." in lines
    assert "`python -m benchmarks wheelhouse --runs 3`" in text


def test_download_commands_one_per_locked_package_with_the_wheels_platforms(tmp_path: Path) -> None:
    base = "https://files.example/"
    lock = {
        "packages": [
            {
                "name": "torch",
                "version": "2.7.0",
                "wheels": [{"url": base + "torch-2.7.0-cp312-cp312-manylinux_2_28_x86_64.whl"}],
            },
            {
                "name": "six",
                "version": "1.17.0",
                "wheels": [{"url": base + "six-1.17.0-py2.py3-none-any.whl"}],
            },
            {
                "name": "freesasa",
                "version": "2.2.1",
                "sdist": {"url": base + "freesasa-2.2.1.tar.gz"},
            },
            {
                "name": "pdbfixer",
                "version": "1.12.0",
                "wheels": [{"url": base + "pdbfixer-1.12.0-py3-none-any.whl"}],
            },
        ]
    }
    dest, cache = tmp_path / "packages", tmp_path / "cache"
    cmds = wheelhouse.download_commands(lock, {"pdbfixer"}, dest, cache)
    assert len(cmds) == 4
    for cmd in cmds:
        assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
        assert "--no-deps" in cmd and cmd[cmd.index("-d") + 1] == str(dest)
        assert cmd[cmd.index("--cache-dir") + 1] == str(cache)
    torch, six, freesasa, pdbfixer = cmds
    assert torch[-1] == "torch==2.7.0"
    assert "--only-binary=:all:" in torch and "--python-version=3.12" in torch
    platforms = [a for a in torch if a.startswith("--platform=")]
    assert platforms == ["--platform=manylinux2014_x86_64", "--platform=manylinux_2_28_x86_64"]
    assert [a for a in six if a.startswith("--platform=")] == ["--platform=manylinux2014_x86_64"]
    # No wheel in the lock, or built from source by runenv: the reference ships the sdist.
    assert "--no-binary=:all:" in freesasa and freesasa[-1] == "freesasa==2.2.1"
    assert "--no-binary=:all:" in pdbfixer and "--only-binary=:all:" not in pdbfixer


def test_reference_env_shuts_out_this_machines_pip_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv(
        "PIP_TIMEOUT", "5"
    )  # a transport setting the main benchmark keeps: dropped here
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    env = wheelhouse.reference_env()
    assert [k for k in env if k.startswith("PIP_")] == ["PIP_CONFIG_FILE"]
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert "PYTHONPATH" not in env


def test_notes_say_how_much_of_the_cold_build_the_check_took() -> None:
    parts = {"fetching": [2.0, 2.0, 2.0], "checking and packing": [30.0, 32.0, 34.0]}
    download = "pip download (one per package)"
    result = result_of(
        {
            "runenv_cold": {**entry([40.0, 40.0, 40.0]), "parts": parts},
            "reference_cold": {**entry([50.0] * 3), "parts": {download: [27.0, 28.0, 29.0]}},
            "reference_warm": {**entry([45.0] * 3), "parts": {download: [25.0, 26.0, 24.0]}},
        }
    )
    text = "\n".join(report.notes(result))
    assert "'checking and packing' took 32.0 s (80%)" in text
    assert "steps 1-2 alone" not in text  # no block venv was measured: nothing to compare
    assert "downloads took 28.0 s cold and 25.0 s with pip's cache kept" in text
