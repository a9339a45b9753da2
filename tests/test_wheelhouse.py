"""The wheelhouse layout, used exactly as the reference system's consumer uses it.

A runtime built with `[runtime] layout = "wheelhouse"` is unpacked at a new path and a block
venv is made from it by the consumer's steps (venv with `<root>/bin` first on PATH, then
`pip install --no-index --find-links <root>/packages/` with PYTHONHOME/PYTHONPATH/VIRTUAL_ENV set),
in a clean environment with the machine's pip configuration shut out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from runenv.cli import main
from support.index import IndexServer
from support.project import SITE, VARIANT, archive_of, build, make_project, manifest_of, unpack

WHEELHOUSE = '\n[runtime]\nlayout = "wheelhouse"\nenv = { RT_FLAVOUR = "blocks" }\n'


def consumer_env(root: Path, venv: Path | None = None) -> dict[str, str]:
    """The environment of the consumer's step 1 (no venv) or steps 2-3: nothing from this
    machine's pip or Python configuration."""
    env = {
        "PATH": f"{root / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PIP_CONFIG_FILE": os.devnull,
        "RT_FLAVOUR": "blocks",
    }
    if venv is not None:
        env.update(
            PYTHONHOME=str(root),
            PYTHONPATH=str(root / "bin" / "python_stdlib"),
            VIRTUAL_ENV=str(venv),
            PATH=f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        )
    return env


def block_venv(root: Path, block: Path, requirements: str) -> subprocess.CompletedProcess[str]:
    """Steps 1-2 for a block in `block`: the venv, then its requirements from packages/."""
    block.mkdir(parents=True)
    (block / "requirements.txt").write_text(requirements)
    subprocess.run(
        ["python", "-m", "venv", "./venv"], cwd=block, env=consumer_env(root), check=True
    )
    venv = block / "venv"
    return subprocess.run(
        ["python", "-m", "pip", "install", "--timeout", "600", "--requirement",
         "requirements.txt", "--find-links", f"{root}/packages/", "--no-index"],
        cwd=block, env=consumer_env(root, venv), capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, pbs: tuple[Path, str]) -> Path:
    return make_project(tmp_path / "proj", pbs, ["rtpure==1.0", "rtnative==1.0"], extra=WHEELHOUSE)


def test_wheelhouse_runtime_serves_block_venvs_at_a_new_path(
    project: Path, pkg_server: IndexServer, tmp_path: Path
) -> None:
    assert build(project, pkg_server) == 0
    manifest = manifest_of(project)
    assert manifest["layout"] == "wheelhouse"
    assert manifest["bin_dir"] == "bin" and manifest["wheelhouse"] == "packages"
    wheels = sorted(str(p["wheel"]) for p in manifest["packages"])  # type: ignore[union-attr]
    assert [w.split("-")[0] for w in wheels] == ["rtdep", "rtnative", "rtpure"]
    check = manifest["check"]
    # rtcopied: copyFiles put it in the runtime's site-packages, appended after the venv's
    assert check["block_modules"] == ["rtcopied", "rtdep", "rtnative", "rtpure"]  # type: ignore[index]
    with tarfile.open(archive_of(project)) as tf:
        names = set(tf.getnames())
    # Exactly the locked set, as wheels; nothing installed into the runtime's site-packages.
    assert {n for n in names if n.startswith("packages/")} == {f"packages/{w}" for w in wheels}
    assert not any("rtpure" in n for n in names if not n.startswith("packages/"))
    assert "bin/python" in names and "bin/rt-tool" in names

    root = unpack(archive_of(project), tmp_path / "elsewhere" / "rt")
    block = tmp_path / "block"
    done = block_venv(root, block, "rtpure==1.0  # its dependency rtdep comes along\n")
    assert done.returncode == 0, done.stdout + done.stderr
    ran = subprocess.run(
        ["python", "-c", "import os, sys, rtpure, rtdep; "
         f"sys.path.append({str(root / SITE)!r}); import rtcopied; "
         "print(rtdep.VALUE, rtcopied.VALUE, os.environ['RT_FLAVOUR'], sys.prefix)"],
        cwd=block, env=consumer_env(root, block / "venv"), capture_output=True, text=True,
    )  # fmt: skip
    assert ran.stdout.split() == ["rtdep", "1.0", "copied", "blocks", str(block / "venv")], (
        ran.stderr
    )
    # The block installs only what it names: rtnative is in the wheelhouse, not in its venv.
    absent = subprocess.run(
        ["python", "-c", "import rtnative"], cwd=block, env=consumer_env(root, block / "venv")
    )
    assert absent.returncode != 0

    # A requirement the wheelhouse cannot satisfy fails as the consumer sees it.
    missing = block_venv(root, tmp_path / "block2", "rtpure==2.0\n")
    assert missing.returncode != 0
    assert "No matching distribution found for rtpure==2.0" in missing.stderr


def test_check_runs_the_consumer_steps_without_the_machines_pip_config(
    project: Path, pkg_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build(project, pkg_server) == 0
    assert main(["-q", "--project", str(project), "check", VARIANT]) == 0
    tree = project / "pydist" / VARIANT / "linux-x64"
    # A wheelhouse missing a wheel, with this machine's pip pointing at a folder that has it:
    # the check must not find it there.
    leak = tmp_path / "leak"
    leak.mkdir()
    wheel = next((tree / "packages").glob("rtdep-*.whl"))
    shutil.move(wheel, leak / wheel.name)
    monkeypatch.setenv("PIP_FIND_LINKS", str(leak))
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"[global]\nfind-links = {leak}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    assert main(["-q", "--project", str(project), "check", VARIANT]) == 1


def test_json_config_defaults_to_wheelhouse_and_toml_to_installed(
    tmp_path: Path, pbs: tuple[Path, str]
) -> None:
    from runenv.config.load import load_variant
    from runenv.config.schema import Layout

    toml = make_project(tmp_path / "a", pbs, ["rtpure==1.0"])
    assert load_variant(toml, VARIANT).layout is Layout.INSTALLED
    json_project = tmp_path / "b"
    folder = json_project / "versions" / VARIANT
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"packages": {"dependencies": ["rtpure==1.0"]}}')
    assert load_variant(json_project, VARIANT).layout is Layout.WHEELHOUSE
    (folder / "config.json").write_text(
        '{"packages": {"dependencies": ["rtpure==1.0"]}, "runtime": {"layout": "installed"}}'
    )
    assert load_variant(json_project, VARIANT).layout is Layout.INSTALLED


def test_cross_built_wheelhouses_have_bin_python_on_windows_and_macos(
    tmp_path: Path, pbs: tuple[Path, str], pkg_server: IndexServer
) -> None:
    from support.pbs import PY_VERSION
    from support.project import cross_project

    nodot = "".join(PY_VERSION.split(".")[:2])
    root = cross_project(tmp_path / "p", pbs, ["rtpure==1.0", "rtnative==1.0"], WHEELHOUSE)
    args = ["--platform", "windows-x64", "--platform", "macosx-aarch64"]
    assert build(root, pkg_server, *args) == 0
    win = root / "pydist" / VARIANT / "windows-x64"
    # bin\python.exe with the DLLs it loads beside it; the stdlib stays at the root (getpath).
    dlls = ["python3.dll", f"python{nodot}.dll", "vcruntime140.dll", "vcruntime140_1.dll"]
    shipped = sorted(p.name for p in (win / "bin").iterdir() if p.is_file() and p.name != "rt-tool")
    assert shipped == sorted(["python.exe", "pythonw.exe", *dlls])
    assert not (win / "bin" / "python_stdlib").exists()  # copyFiles' site-packages stay there
    assert (win / "bin" / "python.exe").read_bytes() == (win / "python.exe").read_bytes()
    assert (win / "Lib" / "os.py").is_file() and not (win / "bin" / "Lib").exists()
    wheels = sorted(p.name for p in (win / "packages").iterdir())
    assert any(w.startswith("rtnative-1.0-") and w.endswith("win_amd64.whl") for w in wheels)
    assert any(w.startswith("rtwin-") for w in wheels)  # rtpure's Windows-only dependency
    mac = root / "pydist" / VARIANT / "macosx-aarch64"
    assert os.readlink(mac / "bin" / "python") == "python3"
    assert any(p.name.endswith("macosx_11_0_arm64.whl") for p in (mac / "packages").iterdir())
    manifest = json.loads((root / "dist" / f"runenv-{VARIANT}-windows-x64.json").read_text())
    assert manifest["layout"] == "wheelhouse"
    # Recorded for the native runner's verify job, which runs the consumer's steps there.
    assert manifest["check"]["block_modules"] == [
        "rtcopied",
        "rtdep",
        "rtnative",
        "rtpure",
        "rtwin",
    ]


def test_what_needs_a_left_out_package_is_left_out_too(tmp_path: Path) -> None:
    """prodigy-prot needs freesasa, which has no wheel for Python 3.12 and may not be built:
    a wheelhouse holding prodigy-prot alone could not install it."""
    from runenv.fetch.wheels import Artifact, needing_left_out
    from runenv.platforms import Platform
    from support.dists import write_wheel

    def wheel(name: str, *requires: str) -> Artifact:
        lines = "".join(f"Requires-Dist: {r}\n" for r in requires)
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{lines}"
        path = write_wheel(tmp_path, name.replace("-", "_"), "1.0", {"m.py": b""}, metadata=meta)
        return Artifact(name, "1.0", path.name, path.as_uri(), "0" * 64, "wheel")

    wheels = [
        wheel("prodigy", "freesasa>=2.2"),
        wheel("uses-prodigy", "prodigy"),  # at any depth
        wheel("on-windows-only", "freesasa; sys_platform == 'win32'"),  # marker: not here
        wheel("with-extra", "freesasa; extra == 'sasa'"),  # only with the extra
        wheel("fine", "numpy"),
    ]
    files = {a.filename: tmp_path / a.filename for a in wheels}
    gone = needing_left_out(wheels, files, {"freesasa": "no wheel"}, Platform.LINUX_X64, "3.12.10")
    assert gone == {
        "prodigy": "needs freesasa, which is left out on linux-x64",
        "uses-prodigy": "needs prodigy, which is left out on linux-x64",
    }


def test_catalogue_check_of_a_wheelhouse_runs_the_consumer_steps(
    project: Path, pkg_server: IndexServer, tmp_path: Path
) -> None:
    """CI's verify job (`python -m runenv_catalogue check MANIFEST`) on a wheelhouse: the whole
    wheelhouse installed into a block venv offline, its modules imported there; this machine's
    pip configuration never helps it."""
    import sys

    from support.dists import write_wheel

    assert build(project, pkg_server) == 0
    manifest = project / "dist" / f"runenv-{VARIANT}-linux-x64.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "catalogue" / "src")
    cmd = [sys.executable, "-m", "runenv_catalogue", "check", str(manifest)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ok:" in done.stdout and "4 modules imported" in done.stdout, done.stdout

    # A manifest naming a wheel its wheelhouse lacks, with this machine's pip pointing at it.
    leak = tmp_path / "leak"
    write_wheel(leak, "ghost", "1.0", {"ghost.py": b""})
    data = json.loads(manifest.read_text())
    data["packages"].append({"name": "ghost", "version": "1.0", "wheel": "ghost-1.0.whl"})
    manifest.write_text(json.dumps(data))
    leaky = {**env, "PIP_FIND_LINKS": str(leak)}
    done = subprocess.run(cmd, env=leaky, capture_output=True, text=True)
    assert done.returncode == 1
    assert "No matching distribution found for ghost==1.0" in done.stderr, done.stderr
