"""The exception hierarchy. Every error runenv raises on purpose is a `RunenvError`.

The CLI turns a `UsageError` (bad usage or configuration) into exit code 2 and any other
`RunenvError` (a failed build, fetch, lock...) into exit code 1, printing `str(error)`: each
message is one line that names the file, key or package at fault and what to do.
"""

from __future__ import annotations

import errno
from pathlib import Path


class RunenvError(Exception):
    """Base class of every error runenv reports to the user."""

    exit_code = 1


class UsageError(RunenvError):
    """Bad command-line usage or bad input: exit code 2."""

    exit_code = 2


class ConfigError(ValueError, UsageError):
    """A configuration file that cannot be read, parsed or validated."""

    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + message)


class FetchError(RunenvError):
    """A download that failed: network, HTTP status, timeout, or missing from the cache."""


class ChecksumError(FetchError):
    """Bytes whose sha256 is not the expected one. They are never cached nor used."""

    def __init__(self, what: str, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"{what}: sha256 mismatch: expected {expected}, got {got}")


class UnsafeArchiveError(RunenvError):
    """An archive entry that would escape the extraction directory."""


class LockError(RunenvError):
    """Resolution failed, or a lock is stale while `--locked` forbids re-locking."""


class BuildError(RunenvError):
    """A stage of a build failed (install, source build, check, pack)."""


class CheckError(BuildError):
    """The check of a built runtime found a module that does not import or a foreign binary."""


class SubprocessError(BuildError):
    """A command runenv ran exited non-zero, timed out, or could not start.

    The fields let a caller re-word the failure (lock.py does) without parsing the message:
    `returncode` is None when the command timed out or never ran, `output_tail` holds the last
    lines of its combined output, `log_file` the log that holds all of it.
    """

    def __init__(
        self,
        what: str,
        problem: str,
        *,
        returncode: int | None = None,
        timed_out: bool = False,
        output_tail: str = "",
        log_file: Path | None = None,
    ) -> None:
        self.what = what
        self.problem = problem
        self.returncode = returncode
        self.timed_out = timed_out
        self.output_tail = output_tail
        self.log_file = log_file
        where = f" (full log: {log_file})" if log_file else ""
        shown_tail = f"\n{output_tail}" if output_tail and not timed_out else ""
        super().__init__(f"{what}: {problem}{where}{shown_tail}")


_OS_HINTS = {
    errno.ENOSPC: "free some space (or point dist/, pydist/ or RUNENV_CACHE_DIR elsewhere) "
    "and run again",
    errno.EDQUOT: "free some space within your quota and run again",
    errno.EROFS: "the filesystem is read-only: use a writable folder",
    errno.EACCES: "check the folder's permissions",
    errno.EPERM: "check the folder's permissions",
}


def describe_os_error(exc: OSError, doing: str = "") -> str:
    """One line for an OSError: what failed, on which path, and what to do."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = _OS_HINTS.get(exc.errno or 0)
    lead = f"{doing}: " if doing else ""
    return f"{lead}{what}{where}" + (f" ({hint})" if hint else "")


class OSFailure(BuildError):
    """An operating-system error (disk full, permission denied...) during a build."""

    def __init__(self, exc: OSError, doing: str = "") -> None:
        self.errno = exc.errno
        super().__init__(describe_os_error(exc, doing))
