"""Every command runenv runs goes through `run`: logged, bounded in time, its output kept.

On failure the error carries the tail of the output and, when a log file is in use, its path,
so the user sees why without scrolling through a whole build log.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from runenv.errors import SubprocessError

logger = logging.getLogger(__name__)

TAIL_LINES = 25


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> str:
    """Run `cmd`, return its combined stdout and stderr; raise `SubprocessError` on failure.

    `what` says in a few words what the command does, for the error message. `env` is added
    to the environment; a None value removes that variable.
    """
    argv = [os.fspath(c) for c in cmd]
    shown = shlex.join(argv)
    logger.debug("running: %s", shown)
    full_env = None
    if env is not None:
        full_env = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
        for key in (k for k, v in env.items() if v is None):
            full_env.pop(key, None)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.output)
        _log(log_file, shown, out, f"timed out after {timeout:g}s")
        raise SubprocessError(
            what,
            f"timed out after {timeout:g}s (build.timeout)",
            timed_out=True,
            output_tail=_tail(out),
            log_file=log_file,
        ) from None
    except OSError as exc:
        raise SubprocessError(what, f"cannot run {argv[0]}: {exc.strerror}") from None
    _log(log_file, shown, proc.stdout, f"exit code {proc.returncode}")
    if proc.returncode != 0:
        raise SubprocessError(
            what,
            f"failed with exit code {proc.returncode}",
            returncode=proc.returncode,
            output_tail=_tail(proc.stdout),
            log_file=log_file,
        )
    return proc.stdout


def _tail(output: str) -> str:
    return "\n".join(output.rstrip().splitlines()[-TAIL_LINES:])


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _log(log_file: Path | None, shown: str, output: str, status: str) -> None:
    logger.debug("%s -> %s", shown, status)
    if log_file is None:
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {shown}\n{output}{'' if output.endswith(chr(10)) or not output else chr(10)}")
        fh.write(f"[{status}]\n\n")
