"""The sign hook of `runenv build`: a command that records what it was given and marks every
file it signs. It gets every binary of the tree, after the check and before the pack (the
archive and manifest hold the signed bytes); a failing one fails the build, nothing published."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.audit import identify
from runenv.build import BuildOptions, build_target
from runenv.config import load_variant
from runenv.errors import BuildError
from runenv.platforms import host_platform
from support.index import IndexServer
from support.pbs import PY_VERSION

HOST = host_platform()
VARIANT = f"{PY_VERSION}-signed"
MARK = b"\0signed-by-the-test\0"

RECORDER = """\
import ast, json, os, sys
from pathlib import Path
listed = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
for name in listed:
    with open(name, "ab") as fh:
        fh.write(ast.literal_eval(os.environ["REC_MARK"]))
Path(os.environ["REC_OUT"]).write_text(json.dumps({
    "argv": sys.argv[1:],
    "files": listed,
    "tree": os.environ["RUNENV_SIGN_TREE"],
    "platform": os.environ["RUNENV_SIGN_PLATFORM"],
    "variant": os.environ["RUNENV_SIGN_VARIANT"],
}))
sys.exit(int(os.environ.get("REC_EXIT", "0")))
"""


@pytest.fixture
def project(tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer) -> Path:
    root = tmp_path / "proj"
    folder = root / "versions" / VARIANT
    folder.mkdir(parents=True)
    (root / "shared-config.toml").write_text("[build]\ntimeout = 300\n")
    (folder / "config.toml").write_text(
        textwrap.dedent(f"""\
        platforms = ["{HOST.value}"]
        [packages]
        dependencies = ["rtdep==1.0"]
        [python.archives.{HOST.value}]
        url = "{pbs[0].as_uri()}"
        sha256 = "{pbs[1]}"
        """)
    )
    (root / "recorder.py").write_text(RECORDER)
    return root


@pytest.fixture(autouse=True)
def _mark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REC_MARK", repr(MARK))


def _options(root: Path, index: str, sign: str | None) -> BuildOptions:
    return BuildOptions(
        dist=root / "dist", pydist=root / "pydist", default_index=index, sign_command=sign
    )


def _sign(root: Path) -> str:
    return shlex.join([sys.executable, str(root / "recorder.py")])


def _binaries(tree: Path) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink() and identify(path) is not None:
                found.append(path.relative_to(tree).as_posix())
    return sorted(found)


def test_the_sign_command_gets_every_binary_before_the_pack(
    project: Path, pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = project / "record.json"
    monkeypatch.setenv("REC_OUT", str(record))
    vc = load_variant(project, VARIANT)
    signed = _options(project, pkg_server.index_url, _sign(project))
    result = build_target(vc, HOST, signed, Cache.default())
    seen = json.loads(record.read_text())
    assert seen["platform"] == HOST.value and seen["variant"] == VARIANT
    assert len(seen["argv"]) == 1  # the list file, after the command's own arguments
    tree = Path(seen["tree"])
    listed = sorted(Path(f).relative_to(tree).as_posix() for f in seen["files"])
    assert all(Path(f).is_absolute() for f in seen["files"])
    # Every binary of the published tree (which is the signed tree), and nothing else.
    assert listed and listed == _binaries(result.tree)
    assert any(name.startswith("bin/python") for name in listed) or "python.exe" in listed

    # The archive holds the signed bytes, and the manifest hashes that archive.
    manifest = json.loads(result.manifest.read_text())
    with tarfile.open(result.archive) as tf:
        for name in listed:
            member = tf.extractfile(name)
            assert member is not None and member.read().endswith(MARK), name
    assert manifest["sha256"] == hashlib.sha256(result.archive.read_bytes()).hexdigest()

    # Signing is part of the build hash: the same signed build is up to date, an unsigned
    # one is not (it would otherwise keep the signed archive, or the other way round).
    again = build_target(vc, HOST, signed, Cache.default())
    assert again.up_to_date
    plain = _options(project, pkg_server.index_url, None)
    unsigned = build_target(vc, HOST, plain, Cache.default())
    assert not unsigned.up_to_date and unsigned.build_hash != result.build_hash


def test_a_failing_sign_command_fails_the_build_with_nothing_published(
    project: Path, pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REC_OUT", str(project / "record.json"))
    vc = load_variant(project, VARIANT)
    good = build_target(vc, HOST, _options(project, pkg_server.index_url, None), Cache.default())
    before = {p.name: p.read_bytes() for p in (good.archive, good.manifest)}
    tree_before = sorted(p.relative_to(good.tree).as_posix() for p in good.tree.rglob("*"))

    monkeypatch.setenv("REC_EXIT", "3")
    signed = _options(project, pkg_server.index_url, _sign(project))
    with pytest.raises(BuildError, match=r"sign command .*exit code 3"):
        build_target(vc, HOST, signed, Cache.default())
    assert {p.name: p.read_bytes() for p in (good.archive, good.manifest)} == before
    assert sorted(p.relative_to(good.tree).as_posix() for p in good.tree.rglob("*")) == tree_before
    assert not any(p.name.endswith(".part001") for p in good.archive.parent.iterdir())

    # From the CLI: one line, exit 1; a first build that fails leaves no archive at all.
    (project / "dist").rename(project / "dist.old")
    cmd = [sys.executable, "-m", "runenv", "-q", "--project", str(project), "build", VARIANT]
    env = {**os.environ, "RUNENV_INDEX_URL": pkg_server.index_url}
    out = subprocess.run(
        [*cmd, "--sign-command", _sign(project)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 1, out.stderr
    assert "sign command" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not list((project / "dist").glob("runenv-*.tar.gz"))
    assert not list((project / "dist").glob("runenv-*.json"))
