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


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def _fetch(root: Path, commit: str, cache: Cache) -> Path:
    """`fetch_git` of `root`'s `commit`, as a build fetches a locked git source."""
    artifact = Artifact("mod", "1.0", f"mod-{commit}.git", root.as_uri(), commit, "git", "test")
    return fetch_git(artifact, cache, timeout=60, log_file=None)


def test_a_checkout_is_at_its_commit_and_taken_again(
    cache: Cache, repo: tuple[Path, str, str]
) -> None:
    root, first, second = repo
    tree = _fetch(root, first, cache)
    assert tree == cache.section(GIT_SECTION) / first / "tree"
    assert (tree / "mod.py").read_text() == "VALUE = 1\n"
    # Taken again without cloning: the repository is gone, the checkout serves.
    shutil.rmtree(root / ".git")
    assert _fetch(root, first, cache) == tree
    # Another commit of a repository that is gone is a clone that fails, nothing kept.
    with pytest.raises(SubprocessError):
        _fetch(root, second, cache)
    kept = {p.name for p in cache.section(GIT_SECTION).iterdir()}
    assert kept == {first, f"{first}.lock", f"{second}.lock"}


def test_a_checkout_moved_off_its_commit_is_cloned_again(
    cache: Cache, repo: tuple[Path, str, str]
) -> None:
    root, first, second = repo
    tree = _fetch(root, first, cache)
    _git("checkout", "--quiet", "--detach", second, cwd=tree)  # someone moved it
    (tree / "mod.py").write_text("VALUE = 666\n")
    assert _fetch(root, first, cache) == tree and (tree / "mod.py").read_text() == "VALUE = 1\n"


def test_a_checkout_that_is_a_link_is_not_followed(
    tmp_path: Path, cache: Cache, repo: tuple[Path, str, str]
) -> None:
    root, first, _ = repo
    elsewhere = tmp_path / "elsewhere"
    _fetch(root, first, Cache(elsewhere))
    entry = cache.section(GIT_SECTION) / first
    entry.symlink_to(elsewhere / GIT_SECTION / first, target_is_directory=True)
    tree = _fetch(root, first, cache)
    assert not entry.is_symlink() and tree == entry / "tree"
    assert (elsewhere / GIT_SECTION / first / "tree" / "mod.py").is_file()  # left alone
