"""Commands runenv runs: a failure carries its exit code, timeout, output tail and log as fields."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runenv._subprocess import TAIL_LINES, run
from runenv.errors import SubprocessError

COUNT_AND_FAIL = "for i in range(40): print(i)\nraise SystemExit(3)"


def test_failure_carries_exit_code_output_tail_and_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(SubprocessError) as err:
        run([sys.executable, "-c", COUNT_AND_FAIL], what="count to 40", log_file=log)
    exc = err.value
    assert (exc.returncode, exc.timed_out, exc.log_file) == (3, False, log)
    assert exc.output_tail.splitlines() == [str(i) for i in range(40 - TAIL_LINES, 40)]
    lines = str(exc).splitlines()
    assert lines[0] == f"count to 40: failed with exit code 3 (full log: {log})"
    assert lines[1:] == exc.output_tail.splitlines()
    assert "\n0\n" in log.read_text() and "[exit code 3]" in log.read_text()


def test_timeout_is_a_field_not_a_phrase(tmp_path: Path) -> None:
    sleeper = "import time; print('started', flush=True); time.sleep(120)"
    with pytest.raises(SubprocessError) as err:
        run([sys.executable, "-c", sleeper], what="sleep", timeout=1)
    exc = err.value
    assert exc.timed_out and exc.returncode is None and exc.log_file is None
    assert str(exc) == "sleep: timed out after 1s (build.timeout)"


def test_a_command_that_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(SubprocessError) as err:
        run([tmp_path / "no-such-tool"], what="run a tool")
    exc = err.value
    assert exc.returncode is None and not exc.timed_out and exc.output_tail == ""
    assert str(exc).startswith(f"run a tool: cannot run {tmp_path / 'no-such-tool'}: ")
