"""The errors the shared rules raise: the catalogue package's own base and its unsafe-archive
error (`runenv_catalogue._errors` adds the rest). runenv turns them into its `RunenvError`s
where it calls the rules."""

from __future__ import annotations


class CatalogueError(Exception):
    """An error reported as one line; `exit_code` is the CLI's exit status for it."""

    exit_code = 1


class UnsafeArchiveError(CatalogueError):
    """An archive entry that would land outside the runtime's folder."""
