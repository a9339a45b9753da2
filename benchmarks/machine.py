"""The machine a benchmark runs on: its platform, its tools (a CPython 3.12, uv), and what the
results record of it (CPU, memory, load, runenv's commit)."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
from pathlib import Path

from benchmarks import REPO
from benchmarks.log import BenchError
from benchmarks.runner import call, first_line
from runenv.platforms import platform_for


def host_key() -> str:
    """This machine's platform key, as runenv names it (`sys.platform-machine` if none)."""
    found = platform_for(sys.platform, platform.machine())
    return found.value if found else f"{sys.platform}-{platform.machine()}"


def find_python312(given: str | None) -> Path:
    """The interpreter to make the runtime of: --python, python3.12 on PATH, or pyenv's."""
    candidates: list[Path] = []
    if given:
        candidates.append(Path(given))
    else:
        on_path = shutil.which("python3.12")
        if on_path:
            candidates.append(Path(on_path))
        pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        candidates += sorted(pyenv.glob("versions/3.12*/bin/python3.12"), reverse=True)
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"
    for cand in candidates:
        try:
            out = call([cand, "-c", probe], env=dict(os.environ), what="python3.12", timeout=60)
        except BenchError:
            continue
        words = out.split(maxsplit=1)
        if words and words[0] == "3.12":
            return Path(words[1].strip())
    where = (
        f"{given} is not a working Python 3.12"
        if given
        else ("no python3.12 on PATH or under pyenv (~/.pyenv/versions/3.12*)")
    )
    raise BenchError(f"{where}: pass --python /path/to/python3.12 (pyenv, python.org, or apt)")


def find_uv() -> str:
    """uv's binary: the one runenv depends on, else uv on PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        from uv import find_uv_bin

        return str(find_uv_bin())
    found = shutil.which("uv")
    if not found:
        raise BenchError("uv not found: install runenv (pip install -e .), which depends on it")
    return found


def compile_runenv(env: dict[str, str]) -> None:
    """runenv's own modules get their bytecode, as pip writes it when it installs runenv from a
    wheel (and Python on first import of an editable install): a machine that sets
    PYTHONDONTWRITEBYTECODE, as these do, would have every runenv command compile runenv's
    modules from source again, 0.17 s of each build's start that no user pays."""
    found = call(
        [sys.executable, "-c", "import runenv, os; print(os.path.dirname(runenv.__file__))"],
        env=env,
        what="runenv's location",
    )
    package = found.strip()
    call([sys.executable, "-m", "compileall", "-q", package], env=env, what="compileall runenv")


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo or sysctl give it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        return first_line(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor() or "?"


def memory_gb() -> float | None:
    """The machine's memory in GB (None where it cannot be read)."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None


def git_state() -> str:
    """runenv's commit, and which files under src/ differ from it."""
    head = first_line(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    try:
        status = call(
            ["git", "-C", REPO, "status", "--porcelain", "--", "src"],
            env=dict(os.environ),
            what="git status",
        )
    except BenchError:
        status = ""
    dirty = status.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
