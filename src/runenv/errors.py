"""The exception hierarchy. Every error runenv raises on purpose is a `RunenvError`.

The CLI turns a `UsageError` (bad usage or configuration) into exit code 2 and any other
`RunenvError` (a failed build, fetch, lock...) into exit code 1, printing `str(error)`: each
message is one line that names the file, key or package at fault and what to do.
"""

from __future__ import annotations

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
