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
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.config.load import load_variant
from runenv.errors import BuildError
from runenv.pipeline.build import build_target
from runenv.pipeline.context import BuildOptions
from runenv.platforms import host_platform
from runenv.tree.binaries import identify
from support.index import IndexServer
from support.pbs import PY_VERSION
from support.project import make_project

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
    root = make_project(
        tmp_path / "proj",
        pbs,
        ["rtdep==1.0"],
        variant=VARIANT,
        platform=HOST.value,
        copy_files=False,
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

    # The signed files were unshared first: the installed images in the cache, which trees
    # hard-link, hold no signature.
    images = Cache.default().root / "images"
    assert images.is_dir()
    for path in images.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert not path.read_bytes().endswith(MARK), path

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


def test_a_cross_build_signs_the_foreign_platforms_binaries(
    tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS binaries built on Linux: the hook gets the Mach-O files, told the platform."""
    from support.project import VARIANT as CROSS_VARIANT
    from support.project import build, cross_project

    root = cross_project(tmp_path / "p", pbs, ["rtnative==1.0"])
    (root / "recorder.py").write_text(RECORDER)
    record = root / "record.json"
    monkeypatch.setenv("REC_OUT", str(record))
    target = "macosx-aarch64"
    assert build(root, pkg_server, "--platform", target, "--sign-command", _sign(root)) == 0
    seen = json.loads(record.read_text())
    assert seen["platform"] == target and seen["variant"] == CROSS_VARIANT
    tree = root / "pydist" / CROSS_VARIANT / target
    listed = sorted(Path(f).relative_to(seen["tree"]).as_posix() for f in seen["files"])
    assert listed == _binaries(tree)
    kinds = {identify(tree / name).format for name in listed}  # type: ignore[union-attr]
    assert kinds == {"Mach-O"} and any("rtnative" in name for name in listed)


# --- scripts/sign_runtime.py, the sign command CI passes ----------------------------------

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sign_runtime.py"
FAKE_OSSLSIGNCODE = """\
#!/usr/bin/env python3
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(args) + "\\n")
src, out = args[args.index("-in") + 1], args[args.index("-out") + 1]
shutil.copyfile(src, out)
with open(out, "ab") as fh:
    fh.write(b"AUTHENTICODE")
"""


def _script(tmp_path: Path, platform: str, files: list[Path], env: dict[str, str]) -> str:
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(listing)],
        capture_output=True,
        text=True,
        env={**env, "RUNENV_SIGN_PLATFORM": platform},
        check=True,
    )
    return out.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="the Linux path of the script")
def test_ci_sign_script_signs_windows_binaries_on_linux_and_skips_without_keys(
    tmp_path: Path,
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "osslsigncode"
    fake.write_text(FAKE_OSSLSIGNCODE)
    fake.chmod(0o755)
    files = [tmp_path / n for n in ("python.exe", "python312.dll", "_ssl.pyd", "notes.so")]
    for f in files:
        f.write_bytes(b"MZ" + f.name.encode())
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WINDOWS_", "MACOS_"))}
    base["PATH"] = f"{tools}{os.pathsep}{base['PATH']}"
    base["FAKE_LOG"] = str(tmp_path / "calls.jsonl")

    # No keys: a GitHub notice, nothing touched.
    said = _script(tmp_path, "windows-x64", files, base)
    assert said.startswith("::notice::windows-x64: not signed: the repository has no ")
    assert not (tmp_path / "calls.jsonl").exists()

    keys = {**base, "WINDOWS_CERTIFICATE_PFX": "Y2VydA==", "WINDOWS_CERTIFICATE_PASSWORD": "pw"}
    said = _script(tmp_path, "windows-x64", files, keys)
    assert "windows-x64: signed 3 binaries" in said
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [Path(c[c.index("-in") + 1]).name for c in calls] == [
        "python.exe",
        "python312.dll",
        "_ssl.pyd",
    ]
    for call in calls:
        assert call[:2] == ["sign", "-pkcs12"] and "-ts" in call and "sha256" in call
        assert "pw" not in call  # the password is read from a file
    assert all(f.read_bytes().endswith(b"AUTHENTICODE") for f in files[:3])
    assert files[3].read_bytes() == b"MZnotes.so"  # not a Windows binary name: left alone
    assert "nothing to sign" in _script(tmp_path, "linux-x64", files, keys)
