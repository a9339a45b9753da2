"""scripts/standin_pbs.py as the README runs it: by an interpreter given only the standard
library, it writes the five archives in the mirror layout and their pins; runenv unpacks each,
the host's runs from where it lands, the others carry the right platform's interpreter header."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from runenv.fetch.extract import extract_tar
from runenv.platforms import ALL_PLATFORMS, host_platform
from runenv.tree.binaries import identify
from support.pbs import PBS_TAG, SCRIPT

BASE_URL = "https://mirror.example/pbs"
FORMATS = {"linux": "ELF", "macos": "Mach-O", "windows": "PE"}


# It writes a whole runtime (the host's archive, the pbs fixture's work) and runs it: end to end.
@pytest.mark.slow
def test_script_writes_five_archives_and_their_pins(tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    # -S: no site-packages at all, so the script can only import the standard library.
    args = [str(SCRIPT), str(out), "--version", "3.12.10", "--base-url", BASE_URL]
    done = subprocess.run(
        [sys.executable, "-S", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pins = tomllib.loads((out / "pins.toml").read_text())["python"]["archives"]
    assert sorted(pins) == sorted(p.value for p in ALL_PLATFORMS)
    host = host_platform()
    for plat in ALL_PLATFORMS:
        info = plat.info
        name = f"cpython-3.12.10+{PBS_TAG}-{info.pbs_triple}-install_only_stripped.tar.gz"
        archive = out / PBS_TAG / name
        assert pins[plat.value]["url"] == f"{BASE_URL}/{PBS_TAG}/{name}"
        assert pins[plat.value]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        tree = extract_tar(archive, tmp_path / "unpacked" / plat.value)
        interpreter = tree / info.interpreter("3.12.10")
        assert (tree / info.site_packages(f"{sys.version_info[0]}.{sys.version_info[1]}")).is_dir()
        found = identify(interpreter.resolve())
        assert found is not None, plat
        assert (found.format, found.archs) == (FORMATS[info.os], (info.arch,)), plat
        if plat is host:
            ran = subprocess.run(
                [str(interpreter), "-c", "import json, sys; print(sys.prefix)"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert Path(ran.stdout.strip()) == tree
        else:
            assert interpreter.stat().st_size < 4096  # a header, nothing that runs
