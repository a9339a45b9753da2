"""Git sources in the cache (`sources.git.fetch_git`): a real repository cloned at its locked
commit, taken again without a clone, and a checkout that is no longer that commit (or is a
link) cloned again rather than trusted."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.errors import SubprocessError
from runenv.fetch.wheels import Artifact
from runenv.sources.git import GIT_SECTION, fetch_git

_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def _git(*args: str | Path, cwd: Path) -> str:
    env = {**os.environ, **_ENV}
    done = subprocess.run(["git", *map(str, args)], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits: (folder, first commit, second commit)."""
    root = tmp_path / "repo"
    root.mkdir()
    _git("init", "--quiet", cwd=root)
    (root / "mod.py").write_text("VALUE = 1\n")
    _git("add", "mod.py", cwd=root)
    _git("commit", "--quiet", "-m", "one", cwd=root)
    first = _git("rev-parse", "HEAD", cwd=root)
    (root / "mod.py").write_text("VALUE = 2\n")
    _git("commit", "--quiet", "-am", "two", cwd=root)
    return root, first, _git("rev-parse", "HEAD", cwd=root)


def _artifact(root: Path, commit: str) -> Artifact:
    return Artifact("mod", "1.0", f"mod-{commit}.git", root.as_uri(), commit, "git", "test")


def test_a_checkout_is_at_its_commit_and_taken_again(
    tmp_path: Path, repo: tuple[Path, str, str]
) -> None:
    root, first, second = repo
    cache = Cache(tmp_path / "cache")
    tree = fetch_git(_artifact(root, first), cache, timeout=60, log_file=None)
    assert tree == cache.section(GIT_SECTION) / first / "tree"
    assert (tree / "mod.py").read_text() == "VALUE = 1\n"
    # Taken again without cloning: the repository is gone, the checkout serves.
    shutil.rmtree(root / ".git")
    assert fetch_git(_artifact(root, first), cache, timeout=60, log_file=None) == tree
    # Another commit of a repository that is gone is a clone that fails, nothing kept.
    with pytest.raises(SubprocessError):
        fetch_git(_artifact(root, second), cache, timeout=60, log_file=None)
    assert sorted(p.name for p in cache.section(GIT_SECTION).iterdir()) == [
        first,
        f"{first}.lock",
        f"{second}.lock",
    ]


def test_a_checkout_moved_off_its_commit_is_cloned_again(
    tmp_path: Path, repo: tuple[Path, str, str]
) -> None:
    root, first, second = repo
    cache = Cache(tmp_path / "cache")
    tree = fetch_git(_artifact(root, first), cache, timeout=60, log_file=None)
    _git("checkout", "--quiet", "--detach", second, cwd=tree)  # someone moved it
    (tree / "mod.py").write_text("VALUE = 666\n")
    again = fetch_git(_artifact(root, first), cache, timeout=60, log_file=None)
    assert again == tree and (tree / "mod.py").read_text() == "VALUE = 1\n"


def test_a_checkout_that_is_a_link_is_not_followed(
    tmp_path: Path, repo: tuple[Path, str, str]
) -> None:
    root, first, _ = repo
    cache = Cache(tmp_path / "cache")
    elsewhere = tmp_path / "elsewhere"
    fetch_git(_artifact(root, first), Cache(elsewhere), timeout=60, log_file=None)
    entry = cache.section(GIT_SECTION) / first
    entry.symlink_to(elsewhere / GIT_SECTION / first, target_is_directory=True)
    tree = fetch_git(_artifact(root, first), cache, timeout=60, log_file=None)
    assert not entry.is_symlink() and tree == entry / "tree"
    assert (elsewhere / GIT_SECTION / first / "tree" / "mod.py").is_file()  # left alone
