"""A throwaway runenv project for end-to-end tests, and what they read back from its build.

`make_project(root, pbs, deps)` writes a variant that pins the loopback PBS archive, ships a
tool and a module (copyFiles) and depends on packages of the loopback index (`cross_project`
one for all five platforms, `write_variant` any other config); `build` runs the CLI on it,
`cli_stderr` any command, checking its exit code and giving its stderr, `build_for_host` the
pipeline in-process; `archive_of`, `manifest_of`, `unpack` and `run_python` read the result,
and `catalogue_check` checks it as a verify job does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from runenv._cache import Cache
from runenv.cli import main
from runenv.config.load import load_variant
from runenv.pipeline.build import build_target
from runenv.pipeline.context import BuildOptions
from runenv.platforms import ALL_PLATFORMS, Platform, host_platform
from support.cli import run_main
from support.index import IndexServer
from support.pbs import PY_VERSION, foreign_pbs_archive

REPO = Path(__file__).resolve().parents[2]
PY_XY = "{}.{}".format(*sys.version_info[:2])
VARIANT = f"{PY_VERSION}-t"
SITE = f"lib/python{PY_XY}/site-packages"


SHARED = "[build]\ntimeout = 300\n"


def write_variant(root: Path, variant: str, config: str, *, shared: str = SHARED) -> Path:
    """`root/shared-config.toml` and `root/versions/<variant>/config.toml` (dedented); the
    variant's folder."""
    folder = root / "versions" / variant
    folder.mkdir(parents=True, exist_ok=True)
    (root / "shared-config.toml").write_text(shared)
    (folder / "config.toml").write_text(textwrap.dedent(config))
    return folder


def make_project(
    root: Path,
    pbs: tuple[Path, str],
    deps: list[str],
    *,
    extra: str = "",
    variant: str = VARIANT,
    platform: str = "linux-x64",
    copy_files: bool = True,
) -> Path:
    """A project whose variant pins the loopback PBS archive for `platform` and, unless
    `copy_files` is false, ships a tool and a module; `extra` is TOML appended to its config."""
    config = textwrap.dedent(
        f"""\
        platforms = ["{platform}"]
        [packages]
        dependencies = {json.dumps(deps)}
        [python.archives.{platform}]
        url = "{pbs[0].as_uri()}"
        sha256 = "{pbs[1]}"
        """
    )
    if copy_files:
        config += textwrap.dedent(
            """\
            [[packages.copyFiles]]
            from = "files/bin/"
            to = "bin/"
            [[packages.copyFiles]]
            from = "files/site/"
            to = "{site-packages}/"
            """
        )
    folder = write_variant(root, variant, config + extra)
    if copy_files:
        (folder / "files" / "bin").mkdir(parents=True)
        (folder / "files" / "site").mkdir(parents=True)
        tool = folder / "files" / "bin" / "rt-tool"
        tool.write_text('#!/bin/sh\necho "RT_TOOL $(dirname "$0")"\n')
        tool.chmod(0o755)
        (folder / "files" / "site" / "rtcopied.py").write_text('VALUE = "copied"\n')
    return root


def cross_project(root: Path, pbs: tuple[Path, str], deps: list[str], extra: str = "") -> Path:
    """A variant for all five platforms: the real host archive, header-only foreign ones."""
    archives = ""
    for plat in ALL_PLATFORMS:
        if plat is Platform.LINUX_X64:
            continue
        path, sha = foreign_pbs_archive(plat, root / "archives")
        archives += f'[python.archives.{plat.value}]\nurl = "{path.as_uri()}"\nsha256 = "{sha}"\n'
    make_project(root, pbs, deps, extra=archives + extra)
    config = root / "versions" / VARIANT / "config.toml"
    config.write_text(config.read_text().replace('platforms = ["linux-x64"]\n', ""))
    return root


def build_for_host(root: Path, variant: str, index_url: str) -> Path:
    """Build `variant` of `root` for this machine in-process into root/dist (its manifest)."""
    options = BuildOptions(dist=root / "dist", pydist=root / "pydist", default_index=index_url)
    host = host_platform()
    return build_target(load_variant(root, variant), host, options, Cache.default()).manifest


def build(root: Path, server: IndexServer, *args: str) -> int:
    return main(
        ["-q", "--project", str(root), "build", VARIANT, "--index-url", server.index_url, *args]
    )


def cli_stderr(root: Path, server: IndexServer, command: str, *args: str, code: int = 0) -> str:
    """`runenv -q COMMAND VARIANT --index-url SERVER ARGS` on `root`, in this process, which must
    exit `code`: what it wrote on stderr."""
    done = run_main(
        "-q", "--project", str(root), command, VARIANT, "--index-url", server.index_url, *args
    )
    assert done.returncode == code, done.stderr
    return done.stderr


def archive_of(root: Path) -> Path:
    return root / "dist" / f"runenv-{VARIANT}-linux-x64.tar.gz"


def manifest_of(root: Path) -> dict[str, object]:
    path = root / "dist" / f"runenv-{VARIANT}-linux-x64.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(archive), "-C", str(dest)], check=True)
    return dest


def run_python(runtime: Path, code: str) -> str:
    """What the runtime's own interpreter prints for `code` (it must succeed)."""
    return subprocess.run(
        [runtime / "bin" / "python3", "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def catalogue_check(manifest: Path) -> subprocess.CompletedProcess[str]:
    """`python -m runenv_catalogue check MANIFEST` from the catalogue's source alone, as a
    verify job runs it (nothing installed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "catalogue" / "src")}
    return subprocess.run(
        [sys.executable, "-m", "runenv_catalogue", "check", str(manifest)],
        capture_output=True,
        text=True,
        env=env,
        cwd=manifest.parent,
        timeout=300,
    )


def run_unpacked(root: Path, dest: Path, code: str) -> str:
    """What the host archive of `root`'s build, unpacked at `dest` (a path it was not built
    at), prints for `code` with its own interpreter."""
    return run_python(unpack(archive_of(root), dest), code)
