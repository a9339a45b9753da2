"""The errors of the catalogue package: each is reported as one line."""

from __future__ import annotations


class CatalogueError(Exception):
    """An error reported as one line; `exit_code` is the CLI's exit status for it."""

    exit_code = 1


class UsageError(CatalogueError):
    """An unknown variant or platform: exit code 2."""

    exit_code = 2


class ChecksumMismatch(CatalogueError):
    """Bytes that are not the catalogue's: never unpacked."""


class DownloadError(CatalogueError):
    """An archive that could not be read: unreachable URL, HTTP error, missing file."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry  # a transient failure worth another attempt


class UnsafeArchiveError(CatalogueError):
    """An archive entry that would land outside the runtime's folder."""
