"""Git sources: a checkout of a locked commit, kept in the cache's `git` section.

The checkout is made in a temp folder and renamed into place (`_cache_entry.Entry`), and taken
again only while it is a plain folder whose `HEAD` is still the locked commit.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from runenv._cache import Cache, is_plain_dir
from runenv._cache_entry import Entry
from runenv._subprocess import run
from runenv.errors import BuildError

if TYPE_CHECKING:
    from runenv.fetch.wheels import Artifact

GIT_SECTION = "git"
_TREE = "tree"


def fetch_git(artifact: Artifact, cache: Cache, *, timeout: float, log_file: Path | None) -> Path:
    """A checkout of the artifact's repository at its locked commit, kept in the cache."""
    commit = artifact.commit
    entry = Entry(cache.entry_path(GIT_SECTION, commit, sharded=False))
    what = f"fetch {artifact.name} from {artifact.url} at {commit[:12]}"

    def clone(stage: Path) -> Path:
        tree = stage / _TREE
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        # `--` before values: a URL starting with `-` is a repository, never an option.
        run(["git", "clone", "--quiet", "--no-checkout", "--", artifact.url, tree], what=what,
            env=env, timeout=timeout, log_file=log_file)  # fmt: skip
        run(["git", "-C", tree, "checkout", "--quiet", "--detach", commit, "--"],
            what=what, env=env, timeout=timeout, log_file=log_file)  # fmt: skip
        if _head(tree) != commit:
            raise BuildError(f"{what}: the checkout is not at the locked commit")
        return entry.path / _TREE

    return entry.get_or_make(lambda folder: _checkout_at(folder, commit), clone)


def _checkout_at(folder: Path, commit: str) -> Path | None:
    """The checkout in `folder` if it is a plain folder still at `commit`, else None."""
    tree = folder / _TREE
    if not (is_plain_dir(tree) and is_plain_dir(tree / ".git")):
        return None
    return tree if _head(tree) == commit else None


def _head(tree: Path) -> str | None:
    """The detached `HEAD` of a checkout (a regular file, never a link), or None."""
    head = tree / ".git" / "HEAD"
    try:
        if not stat.S_ISREG(head.lstat().st_mode):
            return None
        return head.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
