"""Running commands: `run` times a measured one, `call` runs a setup step through runenv's own
subprocess helper, and `clean_env` is the environment both give them.

A measured command needs what `runenv._subprocess.run` does not give: its time from spawn to
exit alone, its stderr lines time-stamped as they come (runenv's stages are cut at them), its
stdout apart, and its memory (`wait4`, the process group sampled). Everything else, untimed,
goes through runenv's helper, so a failing setup step reads like a failing build step.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.log import BenchError
from benchmarks.trash import TRASH
from runenv._subprocess import run as runenv_run
from runenv.errors import SubprocessError

STEP_TIMEOUT = 1200.0  # seconds, for any one command


@dataclass
class Run:
    """One timed command: its seconds, output, time-stamped stderr, memory and CPU."""

    seconds: float
    stdout: str
    stderr: list[tuple[float, str]]  # (seconds since start, line)
    max_rss: int = 0  # bytes: the largest resident set of the command or any process it waited for
    peak_tree_rss: int = 0  # bytes: the largest sum of its process group's RSS, sampled
    own_rss: int = 0  # bytes: the command's own peak resident set (VmHWM), children excluded
    cpu: float = 0.0  # seconds of CPU (user + system) of the command and what it waited for


def group_rss(pgid: int) -> int:
    """The summed resident set (bytes) of every process in process group `pgid`, now."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # Fields after the ")" closing the command name: state ppid pgrp ... (rss is 24th).
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page
    return total


def own_peak_rss(pid: int) -> int:
    """The peak resident set (bytes) of process `pid` alone (`VmHWM`), or 0 if unreadable."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) * 1024
    return 0


def run(
    cmd: Sequence[object],
    *,
    env: dict[str, str],
    what: str,
    cwd: Path | None = None,
    timeout: float = STEP_TIMEOUT,
) -> Run:
    """Run `cmd`, timing it from spawn to exit; stderr lines are time-stamped as they come.

    Memory: `wait4` gives the peak RSS of the largest single process (the command's, or any
    child's it waited for, as `/usr/bin/time` reports it); on Linux the process group's summed
    RSS is also sampled every 0.25 s, so parallel workers show too, and so is the command's
    own peak (`VmHWM`, monotonic: its last sample before exit is its peak, within 0.25 s of
    growth), which tells runenv's memory from that of the processes it runs (the import
    check's interpreter importing torch is the runtime's memory, not runenv's).
    """
    argv = [str(c) for c in cmd]
    TRASH.settle()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    out: list[str] = []
    err: list[tuple[float, str]] = []
    waited: list[tuple[int, Any]] = []
    peak = [0, 0]  # the group's summed RSS, the command's own VmHWM
    done = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append((time.perf_counter() - start, line.rstrip("\n")))

    def reap() -> None:
        _pid, status, usage = os.wait4(proc.pid, 0)
        waited.append((status, usage))
        done.set()

    def sample() -> None:
        if not Path("/proc/self/stat").exists():
            return
        while not done.wait(0.25):
            peak[0] = max(peak[0], group_rss(proc.pid))
            peak[1] = max(peak[1], own_peak_rss(proc.pid))

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    reaper = threading.Thread(target=reap, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    for t in (*readers, reaper, sampler):
        t.start()
    if not done.wait(timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        done.wait()
        proc.returncode = -9
        raise BenchError(f"{what}: no answer after {timeout:.0f} s: {' '.join(argv)}") from None
    seconds = time.perf_counter() - start
    status, usage = waited[0]
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here: Popen must not wait for it again
    for t in (*readers, sampler):
        t.join(timeout=30)
    if code:
        tail = " | ".join(line for _, line in err[-6:]) or "".join(out)[-500:]
        raise BenchError(f"{what} failed (exit {code}): {' '.join(argv)}: {tail}")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, "".join(out), err, usage.ru_maxrss * unit, peak[0], peak[1], cpu)


def call(
    cmd: Sequence[object], *, env: dict[str, str], what: str, timeout: float = STEP_TIMEOUT
) -> str:
    """Run an untimed step with exactly `env` (runenv's helper adds to the environment: every
    variable `env` leaves out is removed); its stdout and stderr, together. One line on failure."""
    gone: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    try:
        return runenv_run([str(c) for c in cmd], what=what, env=gone | env, timeout=timeout)
    except SubprocessError as exc:
        tail = " | ".join(exc.output_tail.splitlines()[-6:])
        raise BenchError(f"{what}: {exc.problem}: {' '.join(map(str, cmd))}: {tail}") from None


def succeeds(cmd: Sequence[object], *, env: dict[str, str], what: str) -> bool:
    """Whether `cmd` runs and exits 0 (a probe: its failure is an answer, not an error)."""
    try:
        call(cmd, env=env, what=what, timeout=60)
    except BenchError:
        return False
    return True


# Settings that only say how to reach the index (certificates, proxies, timeouts): kept.
TRANSPORT = frozenset(
    {
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_PROXY",
        "PIP_TIMEOUT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_RETRIES",
        "PIP_TRUSTED_HOST",
        "UV_NATIVE_TLS",
        "UV_HTTP_TIMEOUT",
        "UV_INSECURE_HOST",
        "UV_HTTP_RETRIES",
        "UV_REQUEST_TIMEOUT",
    }
)


def clean_env(*, runtime: bool = False) -> dict[str, str]:
    """The environment, less every setting that would change what a tool fetches or where.

    For the runtimes' own interpreters (`runtime`), also less PYTHON* (PYTHONPATH, ...).
    """
    drop = ("PIP_", "UV_", "RUNENV_", *(("PYTHON",) if runtime else ()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) or k in TRANSPORT}
    # No pip.conf either: a machine's config may add local indexes, find-links or constraints.
    env["PIP_CONFIG_FILE"] = os.devnull
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = ",".join(x for x in (env.get(key), "127.0.0.1", "localhost") if x)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    return env


def first_line(cmd: Sequence[object]) -> str:
    """The first line a tool prints (its `--version`, say), or `?` if it fails."""
    try:
        text = call(cmd, env=dict(os.environ), what=str(cmd[0]), timeout=60).strip()
    except BenchError:
        return "?"
    return text.splitlines()[0] if text else "?"
