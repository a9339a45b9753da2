"""Arguments that could become options or sources (issue 22, item 9) and uv's git failures
(item 10): every external command gets `--` (or `--opt=value`) before values, a lock's git URL
must be one the config declares, and a build requirement is a requirement from an index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.errors import BuildError, LockError, SubprocessError
from runenv.fetch.wheels import Artifact, select_for_plan
from runenv.lock.pylock import read_lock
from runenv.platforms import Platform
from runenv.sources.build_env import RuntimeEnv
from runenv.sources.git import fetch_git
from support.pbs import PY_VERSION
from support.project import VARIANT, make_project

COMMIT = "e0548be" + "0" * 33


@pytest.mark.parametrize("url", ["--upload-pack=touch MARK", "-h"])
def test_git_clone_reads_a_hostile_lock_url_as_a_repository(tmp_path: Path, url: str) -> None:
    url = url.replace("MARK", str(tmp_path / "ran"))
    artifact = Artifact("evil", "1.0", f"evil-{COMMIT}.git", url, COMMIT, "git", "test")
    with pytest.raises(SubprocessError) as caught:
        fetch_git(artifact, Cache(tmp_path / "cache"), timeout=60, log_file=None)
    # Read as a repository that does not exist, never as an option (`-h` would print usage).
    assert f"'{url}' does not exist" in str(caught.value)
    assert "usage: git clone" not in str(caught.value)
    assert not (tmp_path / "ran").exists()


def _lock(path: Path, url: str) -> Path:
    path.write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n[[packages]]\nname = "rtgit"\n'
        f'version = "0.3"\nvcs = {{ type = "git", url = "{url}", commit-id = "{COMMIT}" }}\n'
    )
    return path


def test_a_lock_git_url_the_config_does_not_declare_is_refused(
    tmp_path: Path, pbs: tuple[Path, str]
) -> None:
    dep = "rtgit @ git+https://git.example.com/org/rtgit.git@e0548be"
    root = make_project(tmp_path / "p", pbs, [dep])
    plan = make_plan(load_variant(root, VARIANT), Platform("linux-x64"))
    good = read_lock(_lock(tmp_path / "good.toml", "https://git.example.com/org/rtgit.git"))
    assert [a.url for a in select_for_plan(good, plan).artifacts] == [
        "https://git.example.com/org/rtgit.git"
    ]
    for url in ("https://evil.example.com/org/rtgit.git", "--upload-pack=touch x"):
        lock = read_lock(_lock(tmp_path / "evil.toml", url))
        with pytest.raises(LockError, match="is not a git dependency of the config"):
            select_for_plan(lock, plan)


@pytest.mark.parametrize(
    ("requirement", "said"),
    [
        ("--index-url=http://127.0.0.1:9/simple", "is not a requirement"),
        ("-r /etc/passwd", "is not a requirement"),
        ("setuptools @ http://127.0.0.1:9/setuptools.whl", "names a URL"),
    ],
)
def test_a_build_requirement_that_is_an_option_or_a_url_is_refused(
    tmp_path: Path, requirement: str, said: str
) -> None:
    env = RuntimeEnv(
        Path(sys.executable),
        tmp_path / "env",
        indexes=(),
        default_index="http://127.0.0.1:9/simple",
        cache=Cache(tmp_path / "cache"),
        extra_environ={},
        timeout=60,
        log_file=None,
        what="build evil 1.0 from source",
    )
    with pytest.raises(BuildError, match=said) as caught:
        env.install([requirement, "wheel"])
    assert "build evil 1.0 from source" in str(caught.value)


def test_uv_failing_to_fetch_a_git_dependency_is_one_line_naming_it(
    tmp_path: Path, pbs: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from runenv.cli import main

    # A git server that refuses connections: 127.0.0.1 port 9 (discard) is closed here.
    probe = subprocess.run(["git", "ls-remote", "http://127.0.0.1:9/x.git"], capture_output=True)
    assert probe.returncode != 0
    dep = "rtgit @ git+http://user:secret@127.0.0.1:9/org/rtgit.git@main"
    root = make_project(tmp_path / "p", pbs, [dep])
    code = main(["-q", "--project", str(root), "lock", VARIANT, "--platform", "linux-x64"])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "git dependency rtgit (http://" in err[0] and "127.0.0.1:9/org/rtgit.git" in err[0]
    assert "secret" not in err[0]
    assert PY_VERSION in err[0] or VARIANT in err[0]
