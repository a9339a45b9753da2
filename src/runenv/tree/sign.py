"""The sign stage: the user's sign command over every binary of a runtime tree.

runenv signs nothing itself (the keys, the tools and the notary are the user's); it runs the
command given by `runenv build --sign-command CMD` or `$RUNENV_SIGN_COMMAND` after the check
and before the pack, so the signed files are the ones the archive holds and the manifest
hashes. CMD is split like a POSIX shell line (no shell runs it) and gets one more argument: a
file listing the absolute path of every binary of the tree (ELF, Mach-O, PE: recognised by
their headers, as the audit recognises them; links are not followed), one per line, UTF-8.
Its environment also has `RUNENV_SIGN_PLATFORM`, `RUNENV_SIGN_VARIANT` and `RUNENV_SIGN_TREE`.
A command that fails fails the build, and nothing is published.

Signing rewrites files in place, and a tree's files may be hard links into runenv's cache of
installed images (`_images`): every file of the tree gets its own inode first
(`_images.unshare_tree`), so nothing the command writes reaches the cache or another tree.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from runenv._subprocess import run
from runenv.errors import UsageError
from runenv.install.images import unshare_tree
from runenv.tree.binaries import identify

SIGN_ENV = "RUNENV_SIGN_COMMAND"
# Notarization waits on Apple's notary service, which takes minutes (sometimes many): the
# command gets an hour, not the per-command `build.timeout`.
SIGN_TIMEOUT = 3600.0


def sign_command_from(value: str | None) -> str | None:
    """The sign command from `--sign-command` or `$RUNENV_SIGN_COMMAND`; None: no signing."""
    command = value if value is not None else os.environ.get(SIGN_ENV)
    if not command or not command.strip():
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--sign-command {command!r}: cannot split it ({exc})") from None
    if not argv:
        raise UsageError(f"--sign-command {command!r}: names no command")
    return command.strip()


def binaries(tree: Path) -> list[Path]:
    """Every binary file of `tree` (not following links), sorted by path."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not path.is_symlink() and identify(path) is not None:
                found.append(path)
    return found


def sign_tree(
    command: str,
    tree: Path,
    *,
    platform: str,
    variant: str,
    log_file: Path | None = None,
    timeout: float = SIGN_TIMEOUT,
) -> list[Path]:
    """Run `command` over every binary of `tree`; return them. SubprocessError if it fails."""
    files = binaries(tree)
    # The command may write any file of the tree (a bundle's signature folder, a stapled
    # ticket, or by mistake anything): every file gets its own inode first, not only the
    # binaries, so nothing it does reaches the image cache or another tree sharing it.
    unshare_tree(tree)
    with tempfile.TemporaryDirectory(prefix="runenv-sign-") as tmp:
        listing = Path(tmp) / "binaries.txt"  # outside the tree: it must not be packed
        listing.write_text("".join(f"{f.resolve()}\n" for f in files), encoding="utf-8")
        run(
            [*shlex.split(command), listing],
            what=f"{variant} {platform}: sign command `{command}`",
            env={
                "RUNENV_SIGN_PLATFORM": platform,
                "RUNENV_SIGN_VARIANT": variant,
                "RUNENV_SIGN_TREE": str(tree.resolve()),
            },
            timeout=timeout,
            log_file=log_file,
        )
    return files
