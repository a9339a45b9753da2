"""The errors of the catalogue package: each is reported as one line."""

from __future__ import annotations

# The two the shared rules raise (`_shared.tar_rules`) are defined beside them.
from runenv_catalogue._shared.errors import CatalogueError as CatalogueError
from runenv_catalogue._shared.errors import UnsafeArchiveError as UnsafeArchiveError


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


class VenvError(CatalogueError):
    """A step of making the venv failed (exit 1); the venv was removed."""


class RequirementsNotMet(CatalogueError):
    """An installed-tree runtime does not satisfy the requirements file (exit 1)."""
