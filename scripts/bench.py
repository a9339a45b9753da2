"""Benchmark runenv against the reference method (pip, one package at a time) and uv by hand.

Run it from a checkout, with runenv installed in the running Python (`pip install -e .`):

    python scripts/bench.py [--runs 3] [--python /path/to/python3.12] [--out docs/]

It needs a CPython 3.12 to make the runtime from (default: `python3.12` on PATH, else the newest
3.12 under pyenv), `tar` and `gzip`, and PyPI; never GitHub. Everything it makes lives in a
temp folder it removes at the end (`--keep` keeps it). About 3 minutes per run (round) on 2 cores.

What it does, all in one run on one machine, with one package set (the `3.12.10` variant's
requirements, from PyPI or `--index-url`) and one PBS archive:

1. Builds stand-in PBS archives for the five platforms once (`scripts/standin_pbs.py`, with the
   given 3.12: the host one is a relocatable copy of it), serves them on 127.0.0.1 (a local
   mirror, stopped at the end or after `--server-lifetime` seconds), and makes a throwaway project:
   `shared-config.toml` + `versions/3.12.10/` with the archives pinned (pins.toml appended).
   Its locks are brought up to date once, untimed: a checked-out project has its lock committed.
2. Times, `--runs` times each, interleaved (one of each per round, so machine and network noise
   hit all alike):
   - runenv **cold**: empty runenv cache (uv's cache is inside it), no outputs, lock kept;
   - runenv **cold + lock**: the same with the host's lock deleted first (so it locks too);
   - runenv **warm**: caches full, `dist/` and `pydist/` removed;
   - runenv **no-op**: nothing changed; the CLI's wall time, end to end, as a subprocess;
   - runenv **cold, five platforms** (`--platform all`), against one platform cold;
   - **reference method**: the runtime's own pip (bootstrapped untimed with ensurepip, then
     upgraded) runs `pip download REQ -d wheels/` once per requirement, in turn, then
     `pip install --no-index --find-links wheels/ REQS`, then `tar czf` of the runtime;
     empty pip cache (a fresh PIP_CACHE_DIR) each run;
   - **uv by hand**: `uv pip install --no-config --python RUNTIME/bin/python3 REQS` with a fresh
     UV_CACHE_DIR, then `tar czf` of the runtime;
   - `tar czf` of runenv's own tree (`pydist/3.12.10/<host>`), and the archive sizes;
   - the **consumer** (issue 24): `python -m runenv_catalogue install` of runenv's archive from
     a `file://` catalogue into an empty cache, against `tar xzf` of the same archive into an
     empty folder, the trees compared file by file (`--skip` every other group to run it
     alone: its figures are kept apart in the results, under `consumer` or `consumer_atls`).
   The baselines start from the runtime already unpacked (untimed); runenv's figures include
   fetching, verifying and unpacking it, its audit and its import check.
3. Writes `OUT/benchmarks.json` (every raw timing), `OUT/benchmarks.md` (targets with pass/fail,
   ratios first, then seconds, sizes, runenv's stages, the machine) and `OUT/benchmarks.png`
   (matplotlib if importable, else a built-in PNG writer).

`--render-only` re-renders the Markdown and PNG from an existing `OUT/benchmarks.json`.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import hashlib
import http.server
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runenv.platforms import platform_for

REPO = Path(__file__).resolve().parents[1]
VARIANT = "3.12.10"  # the workload's variant; `--workload atls` rebinds it
PBS_VERSION = "3.12.10"  # the Python version the stand-in PBS archives claim to be
WORKLOADS: dict[str, dict[str, Any]] = {
    "3.12.10": {
        "variant": "3.12.10",
        "imports": ["pandas", "scipy.stats", "sklearn.ensemble"],
    },
    # torch 2.7.0 with CUDA and ImmuneBuilder: about 3 GB of wheels. The reference system's
    # start-up measure also imports openmm, pdbfixer, anarci, transformers and Bio; those the
    # variant does not ship are left out of the import (and named in the results).
    "atls": {
        "variant": "3.12.10-atls",
        "imports": [
            "ImmuneBuilder",
            "torch",
            "openmm",
            "pdbfixer",
            "anarci",
            "transformers",
            "Bio",
        ],
    },
}
STEP_TIMEOUT = 1200.0  # seconds, for any one command
GROUPS = ("runenv", "lock", "all", "reference", "uv", "uvbc", "consumer")
ISSUE_TARGETS = "issue 13"

_T0 = time.monotonic()


class BenchError(Exception):
    """A setup step or a measured command failed: one line, exit 1."""


def log(message: str) -> None:
    elapsed = int(time.monotonic() - _T0)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


# --- commands ------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    stdout: str
    stderr: list[tuple[float, str]]  # (seconds since start, line)
    max_rss: int = 0  # bytes: the largest resident set of the command or any process it waited for
    peak_tree_rss: int = 0  # bytes: the largest sum of its process group's RSS, sampled
    own_rss: int = 0  # bytes: the command's own peak resident set (VmHWM), children excluded
    cpu: float = 0.0  # seconds of CPU (user + system) of the command and what it waited for


def group_rss(pgid: int) -> int:
    """The summed resident set (bytes) of every process in process group `pgid`, now."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # Fields after the ")" closing the command name: state ppid pgrp ... (rss is 24th).
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page
    return total


def own_peak_rss(pid: int) -> int:
    """The peak resident set (bytes) of process `pid` alone (`VmHWM`), or 0 if unreadable."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) * 1024
    return 0


def run(
    cmd: Sequence[object],
    *,
    env: dict[str, str],
    what: str,
    cwd: Path | None = None,
    timeout: float = STEP_TIMEOUT,
) -> Run:
    """Run `cmd`, timing it from spawn to exit; stderr lines are time-stamped as they come.

    Memory: `wait4` gives the peak RSS of the largest single process (the command's, or any
    child's it waited for, as `/usr/bin/time` reports it); on Linux the process group's summed
    RSS is also sampled every 0.25 s, so parallel workers show too, and so is the command's
    own peak (`VmHWM`, monotonic: its last sample before exit is its peak, within 0.25 s of
    growth), which tells runenv's memory from that of the processes it runs (the import
    check's interpreter importing torch is the runtime's memory, not runenv's).
    """
    argv = [str(c) for c in cmd]
    TRASH.settle()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    out: list[str] = []
    err: list[tuple[float, str]] = []
    waited: list[tuple[int, Any]] = []
    peak = [0, 0]  # the group's summed RSS, the command's own VmHWM
    done = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append((time.perf_counter() - start, line.rstrip("\n")))

    def reap() -> None:
        _pid, status, usage = os.wait4(proc.pid, 0)
        waited.append((status, usage))
        done.set()

    def sample() -> None:
        if not Path("/proc/self/stat").exists():
            return
        while not done.wait(0.25):
            peak[0] = max(peak[0], group_rss(proc.pid))
            peak[1] = max(peak[1], own_peak_rss(proc.pid))

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    reaper = threading.Thread(target=reap, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    for t in (*readers, reaper, sampler):
        t.start()
    if not done.wait(timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        done.wait()
        proc.returncode = -9
        raise BenchError(f"{what}: no answer after {timeout:.0f} s: {' '.join(argv)}") from None
    seconds = time.perf_counter() - start
    status, usage = waited[0]
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here: Popen must not wait for it again
    for t in (*readers, sampler):
        t.join(timeout=30)
    if code:
        tail = " | ".join(line for _, line in err[-6:]) or "".join(out)[-500:]
        raise BenchError(f"{what} failed (exit {code}): {' '.join(argv)}: {tail}")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, "".join(out), err, usage.ru_maxrss * unit, peak[0], peak[1], cpu)


# Settings that only say how to reach the index (certificates, proxies, timeouts): kept.
TRANSPORT = frozenset(
    {
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_PROXY",
        "PIP_TIMEOUT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_RETRIES",
        "PIP_TRUSTED_HOST",
        "UV_NATIVE_TLS",
        "UV_HTTP_TIMEOUT",
        "UV_INSECURE_HOST",
        "UV_HTTP_RETRIES",
        "UV_REQUEST_TIMEOUT",
    }
)


def clean_env(*, runtime: bool = False) -> dict[str, str]:
    """The environment, less every setting that would change what a tool fetches or where.

    For the runtimes' own interpreters (`runtime`), also less PYTHON* (PYTHONPATH, ...).
    """
    drop = ("PIP_", "UV_", "RUNENV_", *(("PYTHON",) if runtime else ()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) or k in TRANSPORT}
    # No pip.conf either: a machine's config may add local indexes, find-links or constraints.
    env["PIP_CONFIG_FILE"] = os.devnull
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = ",".join(x for x in (env.get(key), "127.0.0.1", "localhost") if x)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    return env


class Trash:
    """Trees the measurements are done with, moved aside instead of removed.

    On a filesystem without a journal (this machine's ext4), ext4 does not reuse an inode freed
    in the last minute (six while its inode table is not written back), and it walks past every
    such inode on each file it creates (`recently_deleted()` in fs/ext4/ialloc.c). Removing a
    previous measurement's 10,000-file tree just before a timed build made that build spend 3-5 s
    more in the kernel (sys 7-10 s against 3 s): one measurement billed for the clean-up of the
    one before. So, during the measurements, a tree is renamed into `work/trash/` (no inode
    freed); the trash is removed at the end, or earlier if the disk runs low, and then the next
    timed command waits until the freed inodes are a minute old (`settle`).
    """

    LOW_DISK = 40 << 30  # bytes free below which the trash is emptied (the torch-sized trees)
    QUIET = 65.0  # seconds after a removal, written back by sync, before a timed command

    def __init__(self) -> None:
        self.root: Path | None = None
        self.count = 0
        self.removed_at: float | None = None

    def discard(self, path: Path) -> None:
        if not (path.is_symlink() or path.exists()):
            return
        if self.root is None or path.is_symlink() or path.is_file():
            self.remove(path)
            return
        self.root.mkdir(exist_ok=True)
        self.count += 1
        try:
            path.rename(self.root / str(self.count))
        except OSError:  # another filesystem
            self.remove(path)
            return
        if shutil.disk_usage(self.root).free < self.LOW_DISK:
            self.empty()

    def remove(self, path: Path) -> None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        self.removed_at = time.monotonic()

    def empty(self) -> None:
        if self.root is not None and self.root.exists():
            log("emptying the trash (disk low)")
            self.remove(self.root)

    def settle(self) -> None:
        """Wait, if needed, until the last removal's freed inodes no longer slow file creation."""
        if self.removed_at is None:
            return
        os.sync()
        left = self.QUIET - (time.monotonic() - self.removed_at)
        if left > 0:
            log(f"waiting {left:.0f} s for the inodes freed by a removal to age (see Trash)")
            time.sleep(left)
        self.removed_at = None


TRASH = Trash()


def rmtree(path: Path) -> None:
    TRASH.discard(path)


def copy_tree(src: Path, dst: Path) -> None:
    rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def first_line(cmd: Sequence[object]) -> str:
    try:
        out = subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


# --- setup ---------------------------------------------------------------------------------


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
            out = subprocess.run(
                [str(cand), "-c", probe], capture_output=True, text=True, timeout=60, check=False
            )
        except OSError:
            continue
        words = out.stdout.split(maxsplit=1)
        if out.returncode == 0 and words and words[0] == "3.12":
            return Path(words[1].strip())
    where = (
        f"{given} is not a working Python 3.12"
        if given
        else ("no python3.12 on PATH or under pyenv (~/.pyenv/versions/3.12*)")
    )
    raise BenchError(f"{where}: pass --python /path/to/python3.12 (pyenv, python.org, or apt)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path, lifetime: float) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) until the block ends or `lifetime` passes."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Setup:
    work: Path
    project: Path
    host: str
    requirements: list[str]
    lock_file: Path
    lock_bytes: bytes
    bare_runtime: Path  # python/ unpacked from the stand-in host archive
    pip_runtime: Path  # the same, with pip
    uv: str
    index_url: str | None
    info: dict[str, Any]
    imports: list[str]  # the start-up measure's modules
    install_lock: bool  # uv by hand installs the locked versions, not the requirements

    def runenv(self, *args: object) -> list[object]:
        extra = ["--index-url", self.index_url] if self.index_url else []
        return [sys.executable, "-m", "runenv", "--project", self.project, *args, *extra]

    def outputs(self) -> list[Path]:
        return [self.project / "dist", self.project / "pydist"]


def find_uv() -> str:
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
    found = run(
        [sys.executable, "-c", "import runenv, os; print(os.path.dirname(runenv.__file__))"],
        env=env,
        what="runenv's location",
    )
    package = found.stdout.strip()
    run([sys.executable, "-m", "compileall", "-q", package], env=env, what="compileall runenv")


def prepare(args: argparse.Namespace, work: Path, base_url: str, mirror: Path) -> Setup:
    env = clean_env()
    py312 = find_python312(args.python)
    log(f"runtime made of {py312}")
    host = host_key()
    probe = run([sys.executable, "-m", "runenv", "--version"], env=env, what="runenv --version")
    runenv_version = probe.stdout.strip()
    compile_runenv(env)

    log("writing the stand-in PBS archives (five platforms)")
    run(
        [
            py312,
            REPO / "scripts" / "standin_pbs.py",
            mirror,
            "--version",
            PBS_VERSION,
            "--base-url",
            base_url,
        ],
        env=clean_env(runtime=True),
        what="standin_pbs.py",
        timeout=900,
    )
    pins_text = (mirror / "pins.toml").read_text(encoding="utf-8")
    pins = tomllib.loads(pins_text)["python"]["archives"]
    if host not in pins:
        raise BenchError(f"this machine ({host}) is not one of runenv's platforms")
    host_archive = mirror.joinpath(*pins[host]["url"].split("/")[-2:])

    # The throwaway project: shared config + the variant, its archives pinned to the mirror.
    project = work / "project"
    project.mkdir()
    for name in ("shared-config.toml", "shared-config.json"):
        if not (args.project / name).exists():
            continue
        shutil.copy2(args.project / name, project / name)
    variant_dir = project / "versions" / VARIANT
    shutil.copytree(args.project / "versions" / VARIANT, variant_dir)
    config = variant_dir / "config.toml"
    text = config.read_text(encoding="utf-8")
    if args.variant_toml:  # e.g. "[build]\ncompileBytecode = false", said in the results
        text = text.rstrip("\n") + "\n\n" + args.variant_toml.replace("\\n", "\n") + "\n"
    config.write_text(
        text.rstrip("\n") + "\n\n# stand-in PBS archives, "
        "served on 127.0.0.1 by scripts/bench.py\n" + pins_text,
        encoding="utf-8",
    )
    setup_env = env | {"RUNENV_CACHE_DIR": str(work / "cache-setup")}
    plan = json.loads(
        run(
            [
                sys.executable,
                "-m",
                "runenv",
                "--project",
                project,
                "config",
                VARIANT,
                "--platform",
                host,
                "--json",
            ],
            env=setup_env,
            what="runenv config",
        ).stdout
    )
    requirements = list(plan["requirements"])
    log(f"packages: {' '.join(requirements)}; bringing the locks up to date (untimed)")
    extra = ["--index-url", args.index_url] if args.index_url else []
    run(
        [
            sys.executable,
            "-m",
            "runenv",
            "--project",
            project,
            "lock",
            VARIANT,
            "--platform",
            "all",
            *extra,
        ],
        env=setup_env,
        what="runenv lock",
    )
    rmtree(work / "cache-setup")
    lock_file = variant_dir / f"pylock.{host}.toml"

    log("unpacking the host runtime; bootstrapping pip into a copy (untimed)")
    bare = work / "runtime-bare"
    bare.mkdir()
    renv = clean_env(runtime=True)
    run(["tar", "xzf", host_archive, "-C", bare], env=renv, what="tar xzf")
    bare_python = bare / "python" / "bin" / "python3"
    runtime_version = run(
        [bare_python, "-c", "import ssl, sys, zlib; print(sys.version.split()[0])"],
        env=renv,
        what="runtime smoke test",
    ).stdout.strip()
    with_pip = work / "runtime-pip"
    copy_tree(bare, with_pip)
    pip_python = with_pip / "python" / "bin" / "python3"
    has_pip = (
        subprocess.run(
            [str(pip_python), "-m", "pip", "--version"], capture_output=True, env=renv, check=False
        ).returncode
        == 0
    )
    if not has_pip:
        # The stand-in leaves ensurepip out of the stdlib; real PBS archives ship it (and pip).
        stdlib = run(
            [py312, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            env=renv,
            what="stdlib path",
        ).stdout.strip()
        xy = run(
            [pip_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            env=renv,
            what="runtime version",
        ).stdout.strip()
        dest = with_pip / "python" / "lib" / f"python{xy}" / "ensurepip"
        if not dest.exists():
            shutil.copytree(Path(stdlib) / "ensurepip", dest)
        run([pip_python, "-m", "ensurepip", "--default-pip"], env=renv, what="ensurepip")
    pip_cache = work / "pip-cache-setup"
    run(
        [pip_python, "-m", "pip", "install", "--upgrade", "pip", *extra],
        env=renv | {"PIP_CACHE_DIR": str(pip_cache)},
        what="pip upgrade",
    )
    rmtree(pip_cache)
    pip_version = run(
        [pip_python, "-m", "pip", "--version"], env=renv, what="pip --version"
    ).stdout.split()[1]
    uv = find_uv()

    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host_platform": host,
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "python_running_runenv": sys.version.split()[0],
        "runtime_python": f"{runtime_version} (stand-in for {PBS_VERSION}, made of {py312})",
        "runenv": runenv_version,
        "runenv_commit": git_state(),
        "uv": first_line([uv, "--version"]),
        "pip": pip_version,
        "tar": first_line(["tar", "--version"]),
        "gzip": first_line(["gzip", "--version"]),
        "variant": VARIANT,
        "requirements": requirements,
        "variant_toml_appended": args.variant_toml or "",
        "locked_packages": lock_file.read_text(encoding="utf-8").count("[[packages]]"),
        "index": args.index_url or "https://pypi.org/simple (default)",
        "python_mirror": "stand-in PBS archives on 127.0.0.1 (pinned by sha256)",
    }
    return Setup(
        work,
        project,
        host,
        requirements,
        lock_file,
        lock_file.read_bytes(),
        bare,
        with_pip,
        uv,
        args.index_url,
        info,
        list(WORKLOADS[args.workload]["imports"]),
        args.workload == "atls",
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        return first_line(["sysctl", "-n", "machdep.cpu.brand_string"])
    return platform.processor() or "?"


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None


def git_state() -> str:
    head = first_line(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


# --- the measurements ----------------------------------------------------------------------


# runenv's progress messages ("VARIANT PLATFORM: fetching ...") mark where each stage starts;
# a stage lasts until the next message (the last one until the process exits), and is named
# after its message, numbers and versions left out ("installing 10 wheels" -> "installing").
def stage_label(message: str) -> str:
    words = []
    for word in message.split():
        if word[:1].isdigit() or word.startswith("(") or word == "Python":
            break
        words.append(word)
    return " ".join(words) or message


def stage_times(result: Run) -> dict[str, float]:
    marks = [(0.0, "start-up")]
    for t, line in result.stderr:
        prefix, sep, message = line.partition(": ")
        if sep and prefix.startswith(VARIANT + " ") and " " not in prefix[len(VARIANT) + 1 :]:
            marks.append((t, stage_label(message)))
    ends = [t for t, _ in marks[1:]] + [result.seconds]
    stages: dict[str, float] = {}
    for (t, label), end in zip(marks, ends, strict=True):
        stages[label] = stages.get(label, 0.0) + end - t
    return stages


class Recorder:
    """Every timing, by measurement: total seconds per run and named parts per run."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def add(
        self,
        name: str,
        seconds: float,
        parts: dict[str, float] | None = None,
        *,
        memory: Run | None = None,
        **extra: Any,
    ) -> None:
        entry = self.data.setdefault(name, {"runs": [], "parts": {}, "notes": [], "load": []})
        entry["runs"].append(round(seconds, 3))
        if memory is not None:
            entry.setdefault("max_rss_mb", []).append(round(memory.max_rss / 1e6, 1))
            entry.setdefault("peak_group_rss_mb", []).append(round(memory.peak_tree_rss / 1e6, 1))
            entry.setdefault("own_rss_mb", []).append(round(memory.own_rss / 1e6, 1))
        entry["load"].append(load_now())
        for key, value in (parts or {}).items():
            entry["parts"].setdefault(key, []).append(round(value, 3))
        entry.update(extra)

    def note(self, name: str, text: str) -> None:
        notes = self.data[name]["notes"]
        if text not in notes:
            notes.append(text)


def load_now() -> float | None:
    """The 1-minute load average when a measurement ends: other work on the machine shows."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def runenv_build(s: Setup, platform_arg: str, cache: Path, what: str) -> Run:
    env = clean_env() | {"RUNENV_CACHE_DIR": str(cache)}
    return run(s.runenv("build", VARIANT, "--platform", platform_arg), env=env, what=what)


def check_state(result: Run, expected: str, rec: Recorder, name: str) -> None:
    states = [line.split(":", 1)[0] for line in result.stdout.splitlines() if ":" in line]
    if any(state != expected for state in states):
        rec.note(name, f"expected '{expected}', runenv said: {result.stdout.strip()!r}")
        log(f"WARNING: {name}: expected '{expected}', got {result.stdout.strip()!r}")


def relocked(result: Run) -> bool:
    return any(": locking" in line for _, line in result.stderr)


def measure_runenv(s: Setup, rec: Recorder, i: int) -> None:
    """Cold (lock kept), then tar czf of its tree, then warm, then no-op, on one cache."""
    cache = s.work / f"cache-runenv-{i}"
    rmtree(cache)
    for path in s.outputs():
        rmtree(path)
    cold = runenv_build(s, s.host, cache, "runenv cold build")
    rec.add("runenv_cold", cold.seconds, stage_times(cold), memory=cold)
    check_state(cold, "built", rec, "runenv_cold")
    if relocked(cold):
        rec.note("runenv_cold", "re-locked: the committed lock was not fresh")
    log(f"run {i}: runenv cold {cold.seconds:.1f} s")

    tree = s.project / "pydist" / VARIANT / s.host
    archive = s.project / "dist" / f"runenv-{VARIANT}-{s.host}.tar.gz"
    rec.add(
        "runenv_archive", 0.0, archive_bytes=archive.stat().st_size, tree_bytes=tree_bytes(tree)
    )
    measure_startup(s, rec, i, archive)
    # The torch-sized tree is not tarred again here: uv by hand's tar czf is its comparison.
    if not s.install_lock:
        out = s.work / "tree.tar.gz"
        tar = run(["tar", "czf", out, "-C", tree, "."], env=clean_env(), what="tar czf")
        rec.add(
            "tar_czf_runenv_tree",
            tar.seconds,
            archive_bytes=out.stat().st_size,
            tree_bytes=tree_bytes(tree),
            runenv_archive_bytes=archive.stat().st_size,
        )
        out.unlink()
        log(f"run {i}: tar czf of runenv's tree {tar.seconds:.1f} s")

    for path in s.outputs():
        rmtree(path)
    warm = runenv_build(s, s.host, cache, "runenv warm build")
    rec.add("runenv_warm", warm.seconds, stage_times(warm), memory=warm)
    check_state(warm, "built", rec, "runenv_warm")
    log(f"run {i}: runenv warm {warm.seconds:.1f} s")

    noop = runenv_build(s, s.host, cache, "runenv no-op build")
    rec.add("runenv_noop", noop.seconds, memory=noop)
    check_state(noop, "up to date", rec, "runenv_noop")
    log(f"run {i}: runenv no-op {noop.seconds:.2f} s")
    rmtree(cache)


def measure_runenv_lock(s: Setup, rec: Recorder, i: int) -> None:
    """Cold, with the host lock deleted: it locks, then builds."""
    cache = s.work / f"cache-lock-{i}"
    for path in s.outputs():
        rmtree(path)
    s.lock_file.unlink()
    try:
        result = runenv_build(s, s.host, cache, "runenv cold build with locking")
    finally:
        s.lock_file.write_bytes(s.lock_bytes)  # the next builds use the committed lock again
        rmtree(cache)
    rec.add("runenv_cold_lock", result.seconds, stage_times(result), memory=result)
    check_state(result, "built", rec, "runenv_cold_lock")
    log(f"run {i}: runenv cold + lock {result.seconds:.1f} s")


def measure_runenv_all(s: Setup, rec: Recorder, i: int) -> None:
    cache = s.work / f"cache-all-{i}"
    for path in s.outputs():
        rmtree(path)
    try:
        result = runenv_build(s, "all", cache, "runenv cold build of all platforms")
    finally:
        rmtree(cache)
    rec.add("runenv_cold_all", result.seconds, memory=result)
    check_state(result, "built", rec, "runenv_cold_all")
    for path in s.outputs():
        rmtree(path)
    log(f"run {i}: runenv cold, all five platforms {result.seconds:.1f} s")


def measure_reference(s: Setup, rec: Recorder, i: int) -> None:
    """The runtime's own pip: one `pip download` per package, `pip install --no-index`, tar."""
    d = s.work / f"reference-{i}"
    rmtree(d)
    runtime = d / "python"
    copy_tree(s.pip_runtime / "python", runtime)
    env = clean_env(runtime=True) | {"PIP_CACHE_DIR": str(d / "pip-cache")}
    python = runtime / "bin" / "python3"
    wheels = d / "wheels"
    extra = ["--index-url", s.index_url] if s.index_url else []
    # Each part is the sum of its commands' own times (`Run.seconds`: a `Trash.settle` wait
    # before a command is not in it).
    downloads = sum(
        run(
            [python, "-m", "pip", "download", req, "-d", wheels, *extra],
            env=env,
            what=f"pip download {req}",
        ).seconds
        for req in s.requirements
    )
    installed = run(
        [python, "-m", "pip", "install", "--no-index", "--find-links", wheels, *s.requirements],
        env=env,
        what="pip install",
    )
    out = d / "runtime.tar.gz"
    packed = run(["tar", "czf", out, "-C", runtime, "."], env=env, what="tar czf")
    parts = {
        "pip download (one call per package)": downloads,
        "pip install --no-index": installed.seconds,
        "tar czf": packed.seconds,
    }
    total = sum(parts.values())
    rec.add(
        "reference",
        total,
        parts,
        archive_bytes=out.stat().st_size,
        tree_bytes=tree_bytes(runtime),
        downloaded=sorted(p.name for p in wheels.iterdir()),
    )
    rmtree(d)
    log(f"run {i}: reference method {total:.1f} s")


def uv_by_hand(s: Setup, rec: Recorder, i: int, *, bytecode: bool) -> None:
    """`uv pip install --python RUNTIME` into the unpacked runtime, then tar.

    With `bytecode`, `--compile-bytecode` too: runenv ships bytecode, so that is like for like.
    The torch-sized workload installs the variant's locked versions (`--no-deps`), so both
    tools install the same files; the reference workload gives uv the requirements, as a user
    would.
    """
    name = "uv_by_hand_bytecode" if bytecode else "uv_by_hand"
    d = s.work / f"{name}-{i}"
    rmtree(d)
    runtime = d / "python"
    copy_tree(s.bare_runtime / "python", runtime)
    env = clean_env(runtime=True) | {"UV_CACHE_DIR": str(d / "uv-cache")}
    python = runtime / "bin" / "python3"
    extra = ["--default-index", s.index_url] if s.index_url else []
    reqs: list[object] = list(s.requirements)
    if s.install_lock:
        reqs = ["--no-deps", "-r", locked_requirements(s)]
    flags = ["--compile-bytecode"] if bytecode else []
    installed = run(
        [s.uv, "pip", "install", "--no-config", *flags, "--python", python, *reqs, *extra],
        env=env,
        what="uv pip install",
    )
    rmtree(d / "uv-cache")  # not part of the runtime; frees disk before the tar (untimed)
    out = d / "runtime.tar.gz"
    packed = run(["tar", "czf", out, "-C", runtime, "."], env=env, what="tar czf")
    install = "uv pip install" + (" --compile-bytecode" if bytecode else "")
    total = installed.seconds + packed.seconds
    rec.add(
        name,
        total,
        {install: installed.seconds, "tar czf": packed.seconds},
        memory=installed,
        archive_bytes=out.stat().st_size,
        tree_bytes=tree_bytes(runtime),
    )
    rmtree(d)
    log(f"run {i}: {LABELS[name]} {total:.1f} s")


def locked_requirements(s: Setup) -> Path:
    """The host lock as `name==version` lines, for uv by hand to install with `--no-deps`.

    Not `uv pip install -r pylock.toml`: the lock requires Python >= 3.12.10 and the stand-in
    runtime is an older 3.12, which uv (rightly) refuses; runenv is given the same runtime.
    """
    path = s.work / "requirements-locked.txt"
    packages = tomllib.loads(s.lock_file.read_text(encoding="utf-8"))["packages"]
    path.write_text("".join(f"{p['name']}=={p['version']}\n" for p in packages), encoding="utf-8")
    return path


def measure_uv(s: Setup, rec: Recorder, i: int) -> None:
    uv_by_hand(s, rec, i, bytecode=False)


def measure_uv_bytecode(s: Setup, rec: Recorder, i: int) -> None:
    uv_by_hand(s, rec, i, bytecode=True)


def make_writable(root: Path, writable: bool) -> None:
    """Add or take away every write bit under `root` (a read-only install, then cleanup)."""
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files, None]:
            path = Path(dirpath, name) if name else Path(dirpath)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | 0o200 if writable else mode & ~0o222)


def count_pyc(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.pyc"))


STARTUP_UNPACKS = 5
"""Fresh unpacks per start-up measure: each gives a first and a second import, a pair. The
ratio is the median of every pair's own ratio over all rounds: on these machines one pair
alone moved from 0.65x to 1.6x (twelve pairs by hand, both imports 0.85-1.6 s, mean 1.07x),
and a pair shares the machine's speed of its moment, where medians of firsts and of seconds
taken apart do not."""


def measure_startup(s: Setup, rec: Recorder, i: int, archive: Path) -> None:
    """First against second `import ...` from fresh, read-only unpacks of runenv's archive.

    PYTHONDONTWRITEBYTECODE=1 is set explicitly (and every other PYTHON* setting dropped), so
    a runtime without bytecode would compile in memory on every start, as on a shared
    read-only install. The .pyc files are counted before and after: none may appear. Each of
    `STARTUP_UNPACKS` unpacks gives one pair; the medians are what is recorded.
    """
    renv = clean_env(runtime=True)
    env = renv | {"PYTHONDONTWRITEBYTECODE": "1"}
    probe = (
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
        "if importlib.util.find_spec(m.split('.')[0])))"
    )
    firsts: list[float] = []
    seconds: list[float] = []
    code = ""
    for k in range(STARTUP_UNPACKS):
        d = s.work / f"startup-{i}-{k}"
        rmtree(d)
        d.mkdir()
        run(["tar", "xzf", archive, "-C", d], env=renv, what="tar xzf (start-up)")
        found = sorted(d.glob("**/bin/python3"), key=lambda p: len(p.parts))
        if not found:
            raise BenchError(f"no bin/python3 in {archive.name}")
        python = found[0]
        if not code:  # what the archive has is the same in every unpack: asked once
            wanted = s.imports
            present = run(
                [python, "-c", probe, *wanted], env=env, what="find_spec", cwd=d
            ).stdout.split()
            absent = [m for m in wanted if m not in present]
            if not present:
                raise BenchError(f"none of {', '.join(wanted)} is in {archive.name}")
            statement = "import " + ", ".join(present)
            # Each import in turn; one that fails (a dependency the variant cannot ship) is
            # named on stdout and the rest still run, so the timing covers what does load.
            code = "".join(
                f"try:\n import {m}\nexcept ImportError as e:\n print({m!r}, e)\n" for m in present
            )
        make_writable(d, False)
        try:
            before = count_pyc(d)
            first = run([python, "-c", code], env=env, what=f"first {statement}", cwd=d)
            second = run([python, "-c", code], env=env, what=f"second {statement}", cwd=d)
            written = count_pyc(d) - before
        finally:
            make_writable(d, True)
            rmtree(d)
        firsts.append(first.seconds)
        seconds.append(second.seconds)
        if written:
            rec.note("startup_first", f"{written} .pyc files were written despite the settings")
    failed = first.stdout.strip().splitlines()
    rec.add(
        "startup_first",
        statistics.median(firsts),
        statement=statement,
        absent=absent,
        pyc=before,
        failed=failed,
        unpacks=firsts,
    )
    rec.add("startup_second", statistics.median(seconds), statement=statement, unpacks=seconds)
    pairs = rec.data["startup_first"].setdefault("pairs", [])
    pairs.extend([round(f, 3), round(x, 3)] for f, x in zip(firsts, seconds, strict=True))
    log(
        f"run {i}: start-up first {statistics.median(firsts):.2f} s, second "
        f"{statistics.median(seconds):.2f} s (medians of {STARTUP_UNPACKS} unpacks; "
        f"{statement}; {before} .pyc in the archive)"
    )


# The catalogue package's CLI with a catalogue of the bench's own (its `main` takes one).
CONSUMER = (
    "import sys; from pathlib import Path; from runenv_catalogue import Catalogue; "
    "from runenv_catalogue.__main__ import main; "
    "sys.exit(main(sys.argv[2:], Catalogue.load(Path(sys.argv[1]))))"
)


def consumer_catalogue(s: Setup) -> tuple[Path, Path]:
    """runenv's archive of the workload (built once, untimed, if no round built it yet) and a
    catalogue.json naming it by a `file://` URL, as `runenv catalogue` lists it."""
    archive = s.project / "dist" / f"runenv-{VARIANT}-{s.host}.tar.gz"
    manifest_path = archive.with_name(f"runenv-{VARIANT}-{s.host}.json")
    if not (archive.exists() and manifest_path.exists()):
        log("building runenv's archive for the consumer measure (untimed)")
        runenv_build(s, s.host, s.work / "cache-consumer", "runenv build (for the consumer)")
        rmtree(s.work / "cache-consumer")
    kept = s.work / "consumer" / archive.name  # later rounds' builds do not replace it
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, kept)
        shutil.copy2(manifest_path, kept.parent / manifest_path.name)
    m = json.loads((kept.parent / manifest_path.name).read_text(encoding="utf-8"))
    entry = {
        "url": kept.as_uri(),
        "sha256": m["sha256"],
        "size": m["size"],
        "python_version": m["python_version"],
        "interpreter": m["interpreter"],
        "site_packages": m["site_packages"],
        "packages": [{"name": p["name"], "version": p["version"]} for p in m["packages"]],
    }
    catalogue = kept.parent / "catalogue.json"
    doc = {"schema_version": 1, "version": "bench", "variants": {VARIANT: {s.host: entry}}}
    catalogue.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return kept, catalogue


def tree_listing(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[Any, ...]]:
    """Every path under `root`: its kind, permission bits, mtime (not a symlink's) and its
    content's sha256 or its link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel in skip:
                continue
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("symlink", str(path.readlink()))
            elif path.is_dir():
                out[rel] = ("dir", oct(st.st_mode & 0o7777), int(st.st_mtime))
            else:
                with path.open("rb") as f:  # the torch-sized tree has files of 1 GB and more
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                out[rel] = ("file", oct(st.st_mode & 0o7777), int(st.st_mtime), digest)
    return out


def measure_consumer(s: Setup, rec: Recorder, i: int) -> None:
    """`runenv_catalogue install` from a `file://` catalogue into an empty cache, against
    `tar xzf` of the same archive into an empty folder; which goes first alternates by round.
    The two trees are compared file by file (the install's `.provisioned` marker aside)."""
    archive, catalogue = consumer_catalogue(s)
    cache, folder = s.work / f"consumer-cache-{i}", s.work / f"consumer-tar-{i}"
    for path in (cache, folder):
        rmtree(path)
    env = clean_env() | {"PYTHONPATH": str(REPO / "catalogue" / "src")}
    install = [sys.executable, "-c", CONSUMER, catalogue, "install", VARIANT]

    def consumer() -> None:
        result = run([*install, "--cache-dir", cache], env=env, what="runenv_catalogue install")
        rec.add("consumer_install", result.seconds, memory=result)
        rec.data["consumer_install"].setdefault("cpu", []).append(round(result.cpu, 2))
        log(f"run {i}: runenv_catalogue install {result.seconds:.2f} s")

    def tar() -> None:
        folder.mkdir()
        result = run(["tar", "xzf", archive, "-C", folder], env=clean_env(), what="tar xzf")
        rec.add("consumer_tar_xzf", result.seconds, memory=result)
        rec.data["consumer_tar_xzf"].setdefault("cpu", []).append(round(result.cpu, 2))
        log(f"run {i}: tar xzf {result.seconds:.2f} s")

    for step in (consumer, tar) if i % 2 else (tar, consumer):
        step()
    installed = next(p for p in cache.iterdir() if p.is_dir())
    ours, theirs = tree_listing(installed, frozenset({".provisioned"})), tree_listing(folder)
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    rec.add(
        "consumer_trees",
        0.0,
        identical=[*rec.data.get("consumer_trees", {}).get("identical", []), not differ],
        entries=len(theirs),
        archive_bytes=archive.stat().st_size,
        tree_bytes=tree_bytes(folder),
    )
    if differ:
        rec.note("consumer_trees", f"round {i}: {len(differ)} paths differ, first {differ[:3]}")
        log(f"WARNING: run {i}: the trees differ in {len(differ)} paths: {differ[:3]}")
    for path in (cache, folder):
        rmtree(path)


MEASURES: dict[str, Callable[[Setup, Recorder, int], None]] = {
    "runenv": measure_runenv,
    "lock": measure_runenv_lock,
    "all": measure_runenv_all,
    "reference": measure_reference,
    "uv": measure_uv,
    "uvbc": measure_uv_bytecode,
    "consumer": measure_consumer,
}


# --- results -------------------------------------------------------------------------------

LABELS = {
    "runenv_cold": "runenv cold (lock committed)",
    "runenv_cold_lock": "runenv cold + locking",
    "runenv_warm": "runenv warm (caches full)",
    "runenv_noop": "runenv no-op",
    "runenv_cold_all": "runenv cold, 5 platforms",
    "reference": "reference method (pip)",
    "uv_by_hand": "uv by hand",
    "uv_by_hand_bytecode": "uv by hand --compile-bytecode",
    "tar_czf_runenv_tree": "tar czf of runenv's tree",
}


def summarize(data: dict[str, dict[str, Any]]) -> None:
    for entry in data.values():
        runs = entry["runs"]
        entry["median"] = round(statistics.median(runs), 3)
        entry["min"] = min(runs)
        entry["max"] = max(runs)
        entry["parts_median"] = {
            k: round(statistics.median(v), 3) for k, v in entry["parts"].items()
        }


def median(data: dict[str, dict[str, Any]], name: str) -> float | None:
    entry = data.get(name)
    return entry["median"] if entry else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def peak_mb(data: dict[str, dict[str, Any]], key: str, *names: str) -> float | None:
    """The largest memory figure (`max_rss_mb` or `peak_group_rss_mb`) over runs of `names`."""
    values = [v for n in names for v in data.get(n, {}).get(key, [])]
    return max(values) if values else None


# The figures issue 13 reported before this round (not measured by this script's schema 1).
ISSUE13_BEFORE = {
    "startup_312": "4.17 s first / 0.83-0.91 s second (about 4.8x)",
    "startup_atls": "9.0 s first / 2.5-3.0 s second (about 3.3x)",
    "atls": "109 s with wheels cached, 3.2 GB archive of a 5.4 GB tree, peak RSS 845 MB",
}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets, then issue 7's (kept as informational), each with pass/fail."""
    data = result["measurements"]
    atls = result.get("atls", {}).get("measurements", {})
    prev = result.get("previous", {}).get("medians", {})
    cold, ref = median(data, "runenv_cold"), median(data, "reference")
    uv, uvbc = median(data, "uv_by_hand"), median(data, "uv_by_hand_bytecode")
    lock, warm = median(data, "runenv_cold_lock"), median(data, "runenv_warm")
    tar = data.get("tar_czf_runenv_tree", {})
    size = ratio(tar.get("runenv_archive_bytes"), tar.get("archive_bytes"))
    startup, atls_startup = startup_ratio(data), startup_ratio(atls)
    atls_rss = peak_mb(atls, "max_rss_mb", "runenv_cold", "runenv_warm")
    atls_own = peak_mb(atls, "own_rss_mb", "runenv_cold", "runenv_warm")
    atls_group = peak_mb(atls, "peak_group_rss_mb", "runenv_cold", "runenv_warm")
    atls_uv = median(atls, "uv_by_hand_bytecode")
    atls_uv_label = "uv by hand --compile-bytecode"
    if atls_uv is None:
        atls_uv, atls_uv_label = median(atls, "uv_by_hand"), "uv by hand (no bytecode)"
    rss = peak_mb(data, "max_rss_mb", "runenv_cold", "runenv_warm", "runenv_cold_lock")
    own = peak_mb(data, "own_rss_mb", "runenv_cold", "runenv_warm", "runenv_cold_lock")

    def before(a: str, b: str) -> float | None:
        return ratio(prev.get(a), prev.get(b))

    # (what, value, unit, limit, is a target, value before this round)
    rows: list[tuple[str, float | None, str, float | None, bool, float | None]] = [
        ("warm build / uv by hand --compile-bytecode", ratio(warm, uvbc), "x", 0.25, True, None),
        (
            "warm build / uv by hand (no bytecode)",
            ratio(warm, uv),
            "x",
            0.25,
            True,
            before("runenv_warm", "uv_by_hand"),
        ),
        ("cold build / uv by hand --compile-bytecode", ratio(cold, uvbc), "x", 0.4, True, None),
        (
            "cold build / uv by hand (no bytecode)",
            ratio(cold, uv),
            "x",
            0.4,
            True,
            before("runenv_cold", "uv_by_hand"),
        ),
        ("start-up: first / second import (3.12.10)", startup, "x", 1.2, True, 4.17 / 0.87),
        ("start-up: first / second import (atls)", atls_startup, "x", 1.2, True, 9.0 / 2.75),
        ("atls: runenv peak RSS (its own process)", atls_own, " MB", 1000.0, True, 845.0),
        (
            "atls: peak RSS of the largest process (the import check's runtime)",
            atls_rss,
            " MB",
            None,
            False,
            None,
        ),
        ("atls: runenv peak RSS (process group, sampled)", atls_group, " MB", None, False, None),
        (
            f"atls: cold / {atls_uv_label}",
            ratio(median(atls, "runenv_cold"), atls_uv),
            "x",
            None,
            False,
            None,
        ),
        (
            f"atls: warm / {atls_uv_label}",
            ratio(median(atls, "runenv_warm"), atls_uv),
            "x",
            None,
            False,
            None,
        ),
        ("3.12.10: runenv peak RSS (its own process)", own, " MB", None, False, None),
        ("3.12.10: runenv peak RSS (largest process)", rss, " MB", None, False, None),
        (
            "cold build / reference method",
            ratio(cold, ref),
            "x",
            0.3,
            False,
            before("runenv_cold", "reference"),
        ),
        ("no-op rebuild", median(data, "runenv_noop"), " s", 1.0, False, prev.get("runenv_noop")),
        (
            "5 platforms / 1 platform (cold)",
            ratio(median(data, "runenv_cold_all"), cold),
            "x",
            3.0,
            False,
            before("runenv_cold_all", "runenv_cold"),
        ),
        (
            "archive size / tar czf of the same tree",
            size,
            "x",
            1.0,
            False,
            result.get("previous", {}).get("size_ratio"),
        ),
        (
            "cold + locking / reference method",
            ratio(lock, ref),
            "x",
            0.3,
            False,
            before("runenv_cold_lock", "reference"),
        ),
        (
            "cold + locking / uv by hand (no bytecode)",
            ratio(lock, uv),
            "x",
            0.6,
            False,
            before("runenv_cold_lock", "uv_by_hand"),
        ),
        (
            "warm build / reference method",
            ratio(warm, ref),
            "x",
            None,
            False,
            before("runenv_warm", "reference"),
        ),
    ]
    # The measurements behind each row, for the load average shown beside it.
    main_keys = {
        "warm build / uv by hand --compile-bytecode": ("runenv_warm", "uv_by_hand_bytecode"),
        "warm build / uv by hand (no bytecode)": ("runenv_warm", "uv_by_hand"),
        "cold build / uv by hand --compile-bytecode": ("runenv_cold", "uv_by_hand_bytecode"),
        "cold build / uv by hand (no bytecode)": ("runenv_cold", "uv_by_hand"),
        "start-up: first / second import (3.12.10)": ("startup_first", "startup_second"),
        "3.12.10: runenv peak RSS (largest process)": ("runenv_cold", "runenv_warm"),
        "3.12.10: runenv peak RSS (its own process)": ("runenv_cold", "runenv_warm"),
        "cold build / reference method": ("runenv_cold", "reference"),
        "no-op rebuild": ("runenv_noop",),
        "warm build / reference method": ("runenv_warm", "reference"),
    }
    atls_keys = ("runenv_cold", "runenv_warm", "uv_by_hand", "uv_by_hand_bytecode")
    # An atls section from an earlier run than the main figures says so in its `caveat`.
    atls_mark = " (earlier run: see its section)" if result.get("atls", {}).get("caveat") else ""
    out = []
    for name, value, unit, limit, target, old in rows:
        is_atls = "atls" in name
        keys = ("startup_first", "startup_second") if "first / second" in name else atls_keys
        source, used = (atls, keys) if is_atls else (data, main_keys.get(name, ()))
        loads = [x for k in used for x in source.get(k, {}).get("load", []) if x is not None]
        if limit is None:
            goal, ok = "", None
        elif name == "no-op rebuild":
            goal, ok = f"< {limit:g}{unit}", None if value is None else value < limit
        else:
            goal, ok = f"<= {limit:g}{unit}", None if value is None else value <= limit
        if "first / second" in name and value is not None:
            pyc = (atls if "atls" in name else data).get("startup_first", {}).get("pyc")
            if pyc == 0:  # no bytecode shipped: both imports compile, the ratio says nothing
                goal, ok = f"<= {limit:g}{unit}, no bytecode shipped", None
        out.append(
            {
                "what": name + (atls_mark if is_atls else ""),
                "value": value,
                "unit": unit,
                "goal": goal,
                "pass": ok,
                "target": target,
                "before": old,
                "load": f"{min(loads):.1f}-{max(loads):.1f}" if loads else "",
            }
        )
    return out


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == " MB":
        return f"{value:,.0f} MB"
    return f"{value:.2f}{unit}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def load_range(entry: dict[str, Any]) -> str:
    loads = [x for x in entry.get("load", []) if x is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else ""


def mem_cell(entry: dict[str, Any]) -> str:
    if not entry.get("max_rss_mb"):
        return ""
    own = max(entry.get("own_rss_mb") or [0]) or None
    cell = f"{max(entry['max_rss_mb']):,.0f} / {max(entry['peak_group_rss_mb']):,.0f}"
    return (f"{own:,.0f} / " if own else "n/a / ") + cell


def seconds_table(
    data: dict[str, dict[str, Any]], labels: dict[str, str], prev: dict[str, float]
) -> list[str]:
    lines = [
        "| what | median | min | max | before | load (1 min) "
        "| peak RSS MB (runenv / largest / group) | parts (median s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, label in labels.items():
        entry = data.get(key)
        if not entry:
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in entry["parts_median"].items())
        old = f"{prev[key]:.2f}" if key in prev else ""
        lines.append(
            f"| {label} | {entry['median']:.2f} | {entry['min']:.2f} | {entry['max']:.2f} | "
            f"{old} | {load_range(entry)} | {mem_cell(entry)} | {parts} |"
        )
    return lines


def write_markdown(result: dict[str, Any], path: Path) -> None:
    data, info, runs = result["measurements"], result["machine"], result["runs"]
    previous = result.get("previous", {})
    prev = previous.get("medians", {})
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python scripts/bench.py --runs {runs}` on {info['date']} "
        f"(the whole script took {result['wall_seconds'] / 60:.1f} min). Each figure is the "
        f"median of {runs} runs (min..max), all from one run of the script on one machine, "
        f"with one package set and one PBS archive. Raw timings: "
        f"[benchmarks.json](benchmarks.json). Targets from {ISSUE_TARGETS}; the figures "
        f"*before* are the previous run of this script ({previous.get('date', 'n/a')}, runenv "
        f"{previous.get('runenv_commit', '?')}: no bytecode, no images) and, for start-up and "
        "the torch-sized workload, the figures issue 13 reported.",
        "",
        "The machine's 2 cores are shared with other engineers' builds and tests: the 1-minute "
        "load average at the end of each measurement is recorded beside it (a load of 2 means "
        "the cores were already busy). Measurements are interleaved (one of each per round), so "
        "the noise hits all alike, but single figures can move by 20-30 %.",
        "",
        "![runenv against uv by hand and the reference method, before and now](benchmarks.png)",
        "",
        "## Targets (issue 13)",
        "",
        "| ratio | measured | before | target | result | load (1 min) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in result["targets"]:
        if row["target"]:
            lines.append(
                f"| {row['what']} | {fmt_value(row['value'], row['unit'])} | "
                f"{fmt_value(row.get('before'), row['unit'])} | {row['goal']} | "
                f"{verdict(row['pass'])} | {row.get('load', '')} |"
            )
    lines += [
        "",
        "Also measured (issue 7's targets, kept for comparison, and informational ratios):",
        "",
        "| ratio | measured | before | for comparison |",
        "|---|---:|---:|---:|",
    ]
    for row in result["targets"]:
        if not row["target"]:
            note = f"{row['goal']} ({verdict(row['pass'])})" if row["goal"] else ""
            lines.append(
                f"| {row['what']} | {fmt_value(row['value'], row['unit'])} | "
                f"{fmt_value(row.get('before'), row['unit'])} | {note} |"
            )
    lines += per_round_lines(data)
    lines += consumer_lines(result)
    if result.get("analysis"):
        lines += ["", "## Reading the figures", "", result["analysis"].strip()]
    lines += ["", f"## Seconds ({VARIANT_312}: {' '.join(info['requirements'])})", ""]
    lines += seconds_table(data, LABELS, prev)
    notes = [f"{LABELS.get(k, k)}: {n}" for k, e in data.items() for n in e.get("notes", [])]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    lines += startup_lines(data, ISSUE13_BEFORE["startup_312"])
    tar, ref, uv, uvbc = (
        data.get(k, {})
        for k in ("tar_czf_runenv_tree", "reference", "uv_by_hand", "uv_by_hand_bytecode")
    )
    lines += [
        "",
        "## Archive sizes",
        "",
        "| archive | bytes | / tar czf of runenv's tree | before |",
        "|---|---:|---:|---:|",
    ]
    base = tar.get("archive_bytes")
    prev_sizes = previous.get("archive_bytes", {})
    for key, label, value in (
        (
            "runenv",
            "runenv's archive (`dist/runenv-3.12.10-HOST.tar.gz`, bytecode)",
            tar.get("runenv_archive_bytes"),
        ),
        ("tree", "`tar czf` of the same tree (`pydist/3.12.10/HOST`)", base),
        ("reference", "reference method's `tar czf` (pip, .pyc files)", ref.get("archive_bytes")),
        ("uv", "uv by hand's `tar czf` (no bytecode)", uv.get("archive_bytes")),
        ("uvbc", "uv by hand --compile-bytecode, `tar czf`", uvbc.get("archive_bytes")),
    ):
        if value:
            rel = f"{value / base:.3f}" if base else "n/a"
            old = f"{prev_sizes[key]:,}" if key in prev_sizes else ""
            lines.append(f"| {label} | {value:,} | {rel} | {old} |")
    if tar.get("tree_bytes"):
        lines.append(f"\nrunenv's tree holds {tar['tree_bytes']:,} bytes of files.")
    lines += [
        "",
        "## Where runenv's time goes",
        "",
        "Stages are cut at runenv's progress messages and named after them (median "
        "seconds): each lasts from its message to the next one, the last to the exit; "
        "`start-up` is from the process start to the first message.",
        "",
    ]
    for key in ("runenv_cold", "runenv_cold_lock", "runenv_warm"):
        entry = data.get(key)
        if entry and entry["parts_median"]:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in entry["parts_median"].items())
            lines.append(f"- {LABELS[key]}, {entry['median']:.2f} s: {parts}")
    lines += atls_lines(result.get("atls"))
    lines += ["", "## Method", "", METHOD.strip(), "", "## Machine", "", "| | |", "|---|---|"]
    for key, value in info.items():
        shown = " ".join(value) if isinstance(value, list) else value
        lines.append(f"| {key} | {shown} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


CONSUMER_TARGET = 0.5  # install / tar xzf of the same archive (issue 24)
CONSUMER_RSS_TARGET = 300.0  # MB, the consumer's peak on the atls archive (issue 24)


def cpu_cell(ours: dict[str, Any], tar: dict[str, Any]) -> str:
    """The median CPU seconds (user + system) of both: the work each did, whatever the load."""
    if not ours.get("cpu") or not tar.get("cpu"):
        return "n/a"
    return f"{statistics.median(ours['cpu']):.2f} / {statistics.median(tar['cpu']):.2f}"


def consumer_lines(result: dict[str, Any]) -> list[str]:
    """Issue 24's section: the catalogue's install against `tar xzf`, per workload."""
    found = [(w, result[k]) for w, k in CONSUMER_KEYS.items() if result.get(k)]
    if not found:
        return []
    lines = [
        "",
        "## Installing a runtime from the catalogue (issue 24)",
        "",
        "`python -m runenv_catalogue install VARIANT` (this checkout's catalogue package) from "
        "a `file://` catalogue into an empty cache: read once, hashed, inflated on every core, "
        "staged and renamed, marker last; against `tar xzf` of the same archive into an empty "
        "folder (gzip inflates on one core, tar writes beside it). Which of the two runs first "
        "alternates by round; each round's trees are compared file by file (kind, mode, mtime, "
        "content or link target). The ratio is the median of the rounds' own ratios. CPU is "
        "user + system seconds from `wait4` (tar's includes its gzip), the work done whatever "
        "the load. Peak RSS is `ru_maxrss` of the process (`wait4`, what `/usr/bin/time -v` "
        "reports).",
        "",
        "| workload | date | cores | install, median s (min-max) | tar xzf, median s "
        "(min-max) | install / tar xzf (rounds) | target | result | CPU s, install / tar "
        "(medians) | install peak RSS | trees identical to tar's | archive / tree bytes, "
        "entries |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for workload, found_result in found:
        data, info = found_result["measurements"], found_result["machine"]
        ours, tar = data.get("consumer_install"), data.get("consumer_tar_xzf")
        trees = data.get("consumer_trees", {})
        if not ours or not tar:
            continue
        each = [a / b for a, b in zip(ours["runs"], tar["runs"], strict=False) if b]
        value = statistics.median(each) if each else None
        rss = max(ours.get("max_rss_mb") or [0])
        rss_goal = f", RSS <= {CONSUMER_RSS_TARGET:.0f} MB" if workload == "atls" else ""
        ok = value is not None and value <= CONSUMER_TARGET
        if workload == "atls":
            ok = ok and rss <= CONSUMER_RSS_TARGET
        identical = trees.get("identical") or []
        same = f"{sum(identical)} of {len(identical)} rounds" if identical else "n/a"
        lines.append(
            f"| {info.get('variant', workload)} | {info['date']} | {info.get('cores', '?')} | "
            f"{ours['median']:.2f} ({ours['min']:.2f}-{ours['max']:.2f}) | "
            f"{tar['median']:.2f} ({tar['min']:.2f}-{tar['max']:.2f}) | "
            f"{fmt_value(value, 'x')} ({', '.join(f'{r:.2f}x' for r in each)}) | "
            f"<= {CONSUMER_TARGET:g}x{rss_goal} | {verdict(ok if value is not None else None)} | "
            f"{cpu_cell(ours, tar)} | {rss:,.0f} MB | {same} | {trees.get('archive_bytes', 0):,} / "
            f"{trees.get('tree_bytes', 0):,}, {trees.get('entries', 0):,} |"
        )
        notes = [n for e in data.values() for n in e.get("notes", [])]
        if notes:
            lines.append(f"\nNotes ({workload}): " + "; ".join(notes))
    # What the figures mean, written by hand into the results file after a run.
    for workload, found_result in found:
        if found_result.get("analysis"):
            lines += ["", f"**{workload}.** " + found_result["analysis"].strip()]
    return lines


VARIANT_312 = "3.12.10"


def pair_ratios(first: dict[str, Any]) -> list[float]:
    """Each start-up pair's own first / second ratio, sorted (none in older results)."""
    return sorted(f / x for f, x in first.get("pairs") or [] if x)


def startup_ratio(data: dict[str, dict[str, Any]]) -> float | None:
    """First / second import: the median of the pairs' own ratios (`STARTUP_UNPACKS`), or for
    results written before pairs were kept, the ratio of the medians."""
    each = pair_ratios(data.get("startup_first", {}))
    if each:
        return statistics.median(each)
    return ratio(median(data, "startup_first"), median(data, "startup_second"))


def per_round_lines(data: dict[str, dict[str, Any]]) -> list[str]:
    """Each round's own ratios: rounds run back to back, so they share the machine's load."""
    pairs = [
        ("cold / uv --compile-bytecode", "runenv_cold", "uv_by_hand_bytecode"),
        ("cold / uv", "runenv_cold", "uv_by_hand"),
        ("warm / uv --compile-bytecode", "runenv_warm", "uv_by_hand_bytecode"),
        ("warm / uv", "runenv_warm", "uv_by_hand"),
        ("start-up first / second", "startup_first", "startup_second"),
    ]
    out = []
    for label, a, b in pairs:
        if a in data and b in data:
            each = [x / y for x, y in zip(data[a]["runs"], data[b]["runs"], strict=False) if y]
            out.append(f"{label}: {', '.join(f'{r:.2f}x' for r in each)}")
    if not out:
        return []
    return ["", "Ratios round by round (same round, similar load): " + "; ".join(out) + "."]


def pairs_note(first: dict[str, Any]) -> str:
    each = pair_ratios(first)
    if not each:
        return ""
    return f" (median of {len(each)} pairs' ratios, {each[0]:.2f}x-{each[-1]:.2f}x)"


def startup_lines(data: dict[str, dict[str, Any]], before: str) -> list[str]:
    first, second = data.get("startup_first"), data.get("startup_second")
    if not first or not second:
        return []
    absent = first.get("absent") or []
    lines = [
        "",
        f"Start-up, from a fresh read-only unpack of runenv's archive with "
        f"`PYTHONDONTWRITEBYTECODE=1` ({first.get('pyc', '?'):,} `.pyc` files in the archive): "
        f'`python3 -c "{first["statement"]}"` took {first["median"]:.2f} s the first time '
        f"({first['min']:.2f}-{first['max']:.2f}) and {second['median']:.2f} s the second "
        f"({second['min']:.2f}-{second['max']:.2f}): "
        f"{startup_ratio(data) or 0:.2f}x{pairs_note(first)}. Before: {before}.",
    ]
    if first.get("failed"):
        lines.append(
            "Imported but failing (each import is tried in turn, so the others still load): "
            + "; ".join(first["failed"])
            + "."
        )
    if absent:
        lines.append(
            f"Not in this variant, so left out of the import: {', '.join(absent)} (the "
            "reference system's atls set ships them; this project's atls variant does not)."
        )
    return lines


ATLS_LABELS = {
    "runenv_cold": "runenv cold (empty cache)",
    "runenv_warm": "runenv warm (caches full)",
    "runenv_noop": "runenv no-op",
    "uv_by_hand_bytecode": "uv by hand --compile-bytecode (locked versions), tar czf",
    "uv_by_hand": "uv by hand (locked versions, no bytecode), tar czf",
}


def atls_lines(atls: dict[str, Any] | None) -> list[str]:
    if not atls:
        return []
    data = atls["measurements"]
    info = atls["machine"]
    lines = [
        "",
        f"## Torch-sized workload (`{info['variant']}`, linux-x64)",
        "",
        f"`python scripts/bench.py --workload atls --runs {atls['runs']}` on {info['date']} "
        f"({atls['wall_seconds'] / 60:.1f} min): the shipped variant's lock "
        f"({info.get('locked_packages', '?')} packages: torch 2.7.0 with its CUDA wheels, "
        "ImmuneBuilder), from PyPI, on the same stand-in PBS. Before (issue 13): "
        f"{ISSUE13_BEFORE['atls']}.",
    ]
    if atls.get("caveat"):
        lines += ["", f"**{atls['caveat'].strip()}**"]
    appended = str(info.get("variant_toml_appended") or "").replace("\\n", " ").replace("\n", " ")
    lines += [
        "",
        (
            f"The benchmark's copy of the variant adds: `{appended}`."
            if appended
            else "The benchmark builds the shipped variant as it is (only the Python pins added)."
        ),
        "",
    ]
    lines += seconds_table(data, ATLS_LABELS, {})
    arch = data.get("runenv_archive", {})
    uvbc, uv = data.get("uv_by_hand_bytecode", {}), data.get("uv_by_hand", {})
    lines += ["", "| archive | bytes | tree bytes |", "|---|---:|---:|"]
    for label, entry in (
        ("runenv's archive (bytecode)", arch),
        ("uv by hand --compile-bytecode, `tar czf`", uvbc),
        ("uv by hand, `tar czf`", uv),
    ):
        if entry.get("archive_bytes"):
            lines.append(f"| {label} | {entry['archive_bytes']:,} | {entry['tree_bytes']:,} |")
    notes = [f"{ATLS_LABELS.get(k, k)}: {n}" for k, e in data.items() for n in e.get("notes", [])]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    lines += startup_lines(data, ISSUE13_BEFORE["startup_atls"])
    for key in ("runenv_cold", "runenv_warm"):
        entry = data.get(key)
        if entry and entry["parts_median"]:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in entry["parts_median"].items())
            lines.append(f"- {ATLS_LABELS[key]}, {entry['median']:.2f} s: {parts}")
    return lines


METHOD = """
- **runenv cold**: `python -m runenv build 3.12.10 --platform <host>` with a fresh, empty
  `RUNENV_CACHE_DIR` (uv's cache is inside it) and no `dist/` or `pydist/`. The lock is kept:
  a checked-out project has `pylock.<platform>.toml` committed (the script brings the copied
  locks up to date once, untimed). Includes fetching the interpreter from the 127.0.0.1 mirror,
  verifying and unpacking it, downloading and verifying every wheel, installing, compiling
  bytecode, the audit, the import check from a moved tree, packing and the manifest. runenv's
  own modules have their bytecode (`compileall`, once, before any measurement), as pip's
  install of runenv writes it, even where `PYTHONDONTWRITEBYTECODE` is set.
- **runenv cold + locking**: the same, with the host's lock deleted first.
- **runenv warm**: the same command again with the caches of the cold run, outputs removed
  (its images of installed wheels and of the interpreter are linked, not installed).
- **runenv no-op**: the same command once more, nothing changed (end-to-end CLI wall time).
- **runenv cold, 5 platforms**: `--platform all`, fresh cache, no outputs.
- **reference method**: the unpacked runtime's own pip (bootstrapped with ensurepip and upgraded,
  untimed), a fresh `PIP_CACHE_DIR`, then `pip download REQ -d wheels/` once per requirement in
  turn, `pip install --no-index --find-links wheels/ REQS`, `tar czf` of the runtime. pip also
  byte-compiles, as it does by default.
- **uv by hand**: `uv pip install --no-config --python RUNTIME/bin/python3 REQS` with a fresh
  `UV_CACHE_DIR` (uv's default link mode), then `tar czf` of the runtime (uv's cache is removed
  untimed in between). **uv by hand --compile-bytecode** is the same with `--compile-bytecode`:
  runenv now ships bytecode, so that is the like-for-like baseline (same kind of tree, similar
  archive size); the one without is what the earlier rounds measured against. For the
  torch-sized workload uv installs the variant's locked versions with `--no-deps` (a
  `name==version` list made from `pylock.linux-x64.toml`), so both install the same files.
- **start-up**: runenv's archive from the cold build is unpacked into a fresh folder, every write
  bit is removed, and `python3 -c "import ..."` runs twice with `PYTHONDONTWRITEBYTECODE=1` set
  explicitly (every other `PYTHON*` variable removed); the `.pyc` files are counted before and
  after (none may appear). The script runs as root here, which ignores write bits: the
  environment variable is what keeps the tree unwritten, and the count shows it did. Five
  unpacks a round, each a pair of a first and a second import; the ratio is the median of all
  pairs' own ratios (a single pair moves by ±30 % on these machines).
- **peak RSS**: *runenv* is runenv's own process (`VmHWM` from `/proc/PID/status`, sampled
  every 0.25 s: it only grows, so its last sample is its peak), without the processes it runs;
  *largest* is `ru_maxrss` from `wait4` on runenv's process: the largest resident
  set of runenv or of any process it waited for (what `/usr/bin/time -v` reports: with torch,
  the import check's interpreter, which is the runtime's own memory); *group* is
  the sum of the RSS of every process in runenv's process group, sampled every 0.25 s from
  `/proc` (parallel workers counted together; a short peak between samples can be missed).
- The baselines start from the runtime already unpacked (untimed); neither checks anything.
- All timings are wall-clock seconds of the commands as subprocesses. One round runs each
  measurement once, in the order above (tar czf of runenv's tree after its cold build); rounds
  repeat `--runs` times, so network and machine noise spread over all of them alike.
"""


# --- the chart -----------------------------------------------------------------------------

COLOURS = {
    "runenv": (46, 110, 180),
    "reference": (214, 120, 40),
    "uv": (120, 80, 160),
    "tar": (130, 130, 130),
}


ChartRow = tuple[str, float, float, float, str, float | None]

CHART_LABELS = {
    **LABELS,
    "startup_first": "start-up: first import",
    "startup_second": "start-up: second import",
}


def chart_rows(data: dict[str, dict[str, Any]], prev: dict[str, float]) -> list[ChartRow]:
    """(label, median, min, max, colour kind, median before this round or None) per bar."""
    rows = []
    for key, label in CHART_LABELS.items():
        entry = data.get(key)
        if entry:
            kind = (
                "runenv"
                if key.startswith(("runenv", "startup"))
                else "reference"
                if key == "reference"
                else "uv"
                if key.startswith("uv_by_hand")
                else "tar"
            )
            rows.append((label, entry["median"], entry["min"], entry["max"], kind, prev.get(key)))
    return rows


def target_lines(data: dict[str, dict[str, Any]]) -> list[tuple[float, str]]:
    lines = []
    uvbc = median(data, "uv_by_hand_bytecode")
    if uvbc:
        lines.append((0.25 * uvbc, "warm target 0.25x uv-bc"))
        lines.append((0.4 * uvbc, "cold target 0.4x uv-bc"))
    return lines


def write_chart(result: dict[str, Any], path: Path, *, renderer: str = "auto") -> str:
    data = result["measurements"]
    prev = result.get("previous", {}).get("medians", {})
    rows = chart_rows(data, prev)
    title = (
        f"runenv {VARIANT_312} ({len(result['machine']['requirements'])} packages), "
        f"median of {result['runs']} runs, seconds, pale bars: before"
    )
    if renderer in ("auto", "matplotlib"):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            if renderer == "matplotlib":
                raise
        else:
            fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6), dpi=100)
            ys = list(range(len(rows)))[::-1]
            for y, (_label, med, lo, hi, kind, old) in zip(ys, rows, strict=True):
                colour = tuple(c / 255 for c in COLOURS[kind])
                if old is not None:
                    ax.barh(y + 0.3, old, color=colour, alpha=0.35, height=0.25)
                ax.barh(y - 0.05, med, color=colour, height=0.45)
                ax.errorbar(
                    med,
                    y - 0.05,
                    xerr=[[med - lo], [hi - med]],
                    fmt="none",
                    ecolor="black",
                    capsize=3,
                    lw=1,
                )
                ax.text(
                    hi + 0.5,
                    y,
                    f"{med:.1f} s" if med >= 1 else f"{med:.2f} s",
                    va="center",
                    fontsize=9,
                )
            for (x, label), style in zip(sorted(target_lines(data)), ("--", ":"), strict=False):
                ax.axvline(x, color="crimson", ls=style, lw=1.2, label=f"{label} ({x:.1f} s)")
            if target_lines(data):
                ax.legend(loc="lower right", fontsize=9)
            ax.set_yticks(ys, [r[0] for r in rows])
            ax.set_xlabel("seconds")
            ax.set_title(title, fontsize=10)
            top = max(max(r[3], r[5] or 0) for r in rows)
            ax.set_xlim(0, top * 1.15)
            fig.tight_layout()
            fig.savefig(path)
            plt.close(fig)
            return "matplotlib"
    write_png_chart(rows, target_lines(data), title, path)
    return "built-in"


# A 5x7 bitmap font (upper case, digits, a little punctuation): 7 rows of 5 bits per glyph.
_FONT = {
    "A": "0E 11 11 11 1F 11 11",
    "B": "1E 11 11 1E 11 11 1E",
    "C": "0E 11 10 10 10 11 0E",
    "D": "1C 12 11 11 11 12 1C",
    "E": "1F 10 10 1E 10 10 1F",
    "F": "1F 10 10 1E 10 10 10",
    "G": "0E 11 10 17 11 11 0F",
    "H": "11 11 11 1F 11 11 11",
    "I": "0E 04 04 04 04 04 0E",
    "J": "07 02 02 02 02 12 0C",
    "K": "11 12 14 18 14 12 11",
    "L": "10 10 10 10 10 10 1F",
    "M": "11 1B 15 15 11 11 11",
    "N": "11 11 19 15 13 11 11",
    "O": "0E 11 11 11 11 11 0E",
    "P": "1E 11 11 1E 10 10 10",
    "Q": "0E 11 11 11 15 12 0D",
    "R": "1E 11 11 1E 14 12 11",
    "S": "0F 10 10 0E 01 01 1E",
    "T": "1F 04 04 04 04 04 04",
    "U": "11 11 11 11 11 11 0E",
    "V": "11 11 11 11 11 0A 04",
    "W": "11 11 11 15 15 15 0A",
    "X": "11 11 0A 04 0A 11 11",
    "Y": "11 11 11 0A 04 04 04",
    "Z": "1F 01 02 04 08 10 1F",
    "0": "0E 11 13 15 19 11 0E",
    "1": "04 0C 04 04 04 04 0E",
    "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E",
    "4": "02 06 0A 12 1F 02 02",
    "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E",
    "7": "1F 01 02 04 08 08 08",
    "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C",
    " ": "00 00 00 00 00 00 00",
    ".": "00 00 00 00 00 0C 0C",
    ",": "00 00 00 00 0C 04 08",
    ":": "00 0C 0C 00 0C 0C 00",
    "-": "00 00 00 1F 00 00 00",
    "/": "00 01 02 04 08 10 00",
    "(": "02 04 08 08 08 04 02",
    ")": "08 04 02 02 02 04 08",
    "'": "04 04 08 00 00 00 00",
    "+": "00 04 04 1F 04 04 00",
    "=": "00 00 1F 00 1F 00 00",
    "<": "02 04 08 10 08 04 02",
    ">": "08 04 02 01 02 04 08",
    "%": "18 19 02 04 08 13 03",
    "_": "00 00 00 00 00 00 1F",
}


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.px = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int]) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(rgb) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.w + x0) * 3
            self.px[start : start + len(row)] = row

    def text(self, x: int, y: int, s: str, rgb: tuple[int, int, int], scale: int = 2) -> int:
        for ch in s.upper():
            glyph = _FONT.get(ch, _FONT["_"])
            for r, bits in enumerate(int(b, 16) for b in glyph.split()):
                for c in range(5):
                    if bits & (0x10 >> c):
                        self.rect(
                            x + c * scale,
                            y + r * scale,
                            x + (c + 1) * scale,
                            y + (r + 1) * scale,
                            rgb,
                        )
            x += 6 * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )

        def chunk(kind: bytes, body: bytes) -> bytes:
            return (
                struct.pack(">I", len(body))
                + kind
                + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
            )

        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def write_png_chart(
    rows: list[ChartRow],
    lines: list[tuple[float, str]],
    title: str,
    path: Path,
) -> None:
    """A horizontal bar chart (median bars, min..max whiskers, pale bars for the figures
    before) with zlib and struct only."""
    scale, row_h, left, right, top = 2, 40, 380, 110, 96
    width, height = 1100, top + row_h * len(rows) + 60
    c = _Canvas(width, height)
    black, grey, red = (0, 0, 0), (200, 200, 200), (200, 30, 50)
    c.text(20, 20, title, black, 2 if len(title) * 12 < width - 40 else 1)
    top_value = max(max(r[3], r[5] or 0) for r in rows) * 1.05
    plot_w = width - left - right

    def x_of(v: float) -> int:
        return left + round(v / top_value * plot_w)

    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if top_value / s <= 8)
    tick = 0
    bottom = top + row_h * len(rows)
    while tick <= top_value:
        x = x_of(tick)
        c.rect(x, top - 5, x + 1, bottom, grey)
        c.text(x - 6 * len(str(tick)), bottom + 8, str(tick), black, scale)
        tick += step
    c.text(left + plot_w // 2 - 42, bottom + 30, "seconds", black, scale)
    for n, (label, med, lo, hi, kind, old) in enumerate(rows):
        y = top + n * row_h
        c.text(left - 10 - 12 * len(label), y + 12, label, black, scale)
        if old is not None:
            pale = tuple(255 - (255 - v) * 2 // 5 for v in COLOURS[kind])
            c.rect(left, y + 3, x_of(old), y + 11, (pale[0], pale[1], pale[2]))
        c.rect(left, y + 13, x_of(med), y + row_h - 5, COLOURS[kind])
        mid = y + 13 + (row_h - 18) // 2
        c.rect(x_of(lo), mid - 1, x_of(hi) + 1, mid + 1, black)
        for v in (lo, hi):
            c.rect(x_of(v), mid - 7, x_of(v) + 2, mid + 7, black)
        value = f"{med:.1f} S" if med >= 1 else f"{med:.2f} S"
        c.text(x_of(hi) + 8, y + 12, value, black, scale)
    for n, (v, name) in enumerate(sorted(lines)):
        x = x_of(v)
        label = f"{name} ({v:.1f} s)"
        for y in range(top - 5, bottom, 8):
            c.rect(x, y, x + 2, y + 4, red)
        c.text(x - 6 * len(label), top - 46 + 20 * (n % 2), label, red, scale)
    c.rect(left, top - 5, left + 1, bottom, black)
    path.write_bytes(c.png())


# --- main ----------------------------------------------------------------------------------


def render(result: dict[str, Any], out: Path, renderer: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    used = write_chart(result, out / "benchmarks.png", renderer=renderer)
    write_markdown(result, out / "benchmarks.md")
    log(f"wrote {out / 'benchmarks.md'}, {out / 'benchmarks.png'} ({used} chart)")


def previous_of(old: dict[str, Any]) -> dict[str, Any]:
    """The medians and sizes of an earlier run, kept to show beside the new figures."""
    data = old["measurements"]
    tar = data.get("tar_czf_runenv_tree", {})
    sizes = {
        "runenv": tar.get("runenv_archive_bytes"),
        "tree": tar.get("archive_bytes"),
        "reference": data.get("reference", {}).get("archive_bytes"),
        "uv": data.get("uv_by_hand", {}).get("archive_bytes"),
    }
    return {
        "date": old["machine"]["date"],
        "runenv_commit": old["machine"].get("runenv_commit"),
        "runs": old["runs"],
        "medians": {k: e["median"] for k, e in data.items() if "median" in e},
        "archive_bytes": {k: v for k, v in sizes.items() if v},
        "size_ratio": ratio(sizes["runenv"], sizes["tree"]),
    }


def merge_results(path: Path, new: dict[str, Any], workload: str) -> dict[str, Any]:
    """The results file with this run in it: a 3.12.10 run replaces the main figures (the
    replaced ones become `previous` if there is none yet) and keeps `atls`; an atls run goes
    under `atls`, the rest kept."""
    old: dict[str, Any] = {}
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
    if workload == "atls":
        if not old:
            raise BenchError(
                f"{path} has no 3.12.10 results to add the atls ones to: run that first"
            )
        return old | {"atls": new}
    result = dict(new)
    if old.get("previous"):
        result["previous"] = old["previous"]
    elif old.get("measurements"):
        result["previous"] = previous_of(old)
    for key in ("atls", "analysis", *CONSUMER_KEYS.values()):
        if key in old:
            result[key] = old[key]
    return result


# Where a workload's consumer measurements go in the results (`measure_consumer`).
CONSUMER_KEYS = {"3.12.10": "consumer", "atls": "consumer_atls"}


def split_consumer(data: dict[str, dict[str, Any]], info: dict[str, Any], runs: int) -> Any:
    """The consumer's measurements, taken out of `data`, as a result of their own (None if
    there were none): they are merged apart from the build's, so either can be re-run alone."""
    taken = {k: data.pop(k) for k in list(data) if k.startswith("consumer_")}
    if not taken:
        return None
    return {"runs": runs, "machine": info, "measurements": taken}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--python", help="a CPython 3.12 to make the runtime of")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where results go")
    parser.add_argument(
        "--project",
        type=Path,
        default=REPO,
        help="the project whose shared-config and 3.12.10 variant to use",
    )
    parser.add_argument("--index-url", help="package index for every tool (default: PyPI)")
    parser.add_argument(
        "--variant-toml",
        help="TOML appended to the throwaway copy of the variant's config.toml (recorded)",
    )
    parser.add_argument(
        "--workload",
        choices=tuple(WORKLOADS),
        default="3.12.10",
        help="3.12.10 (pandas, scipy, scikit-learn; the default) or atls (torch with CUDA, "
        "about 3 GB of wheels: runenv cold and warm against uv by hand, merged into "
        "OUT/benchmarks.json under 'atls')",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=GROUPS,
        help="leave a group of measurements out (repeatable)",
    )
    parser.add_argument("--work", type=Path, help="work folder (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--server-lifetime",
        type=float,
        default=7200.0,
        help="seconds after which the loopback mirror stops (7200)",
    )
    parser.add_argument("--chart", choices=("auto", "matplotlib", "built-in"), default="auto")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render OUT/benchmarks.md and .png from OUT/benchmarks.json",
    )
    args = parser.parse_args(argv)
    global VARIANT
    VARIANT = WORKLOADS[args.workload]["variant"]
    out: Path = args.out.resolve()
    args.project = args.project.resolve()
    if args.render_only:
        result = json.loads((out / "benchmarks.json").read_text(encoding="utf-8"))
        result["targets"] = targets(result)
        render(result, out, args.chart)
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if sys.platform == "win32":
        raise BenchError("the baselines use tar and gzip: run the benchmark on Linux or macOS")
    for tool in ("tar", "gzip"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found on PATH")
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="runenv-bench-", dir=args.work))
    else:
        work = Path(tempfile.mkdtemp(prefix="runenv-bench-"))
    log(f"work folder {work}")
    TRASH.root = work / "trash"
    started = time.monotonic()
    rec = Recorder()
    # The torch-sized workload: runenv cold/warm/no-op (with start-up) and uv by hand only.
    offered = ("runenv", "uvbc", "uv", "consumer") if args.workload == "atls" else GROUPS
    groups = [g for g in offered if g not in args.skip]
    try:
        mirror = work / "mirror"
        mirror.mkdir()
        with serve(mirror, args.server_lifetime) as base_url:
            setup = prepare(args, work, base_url, mirror)
            # The setup removed files behind the trash's back (pip's upgrade uninstalls the
            # old pip, the stand-in script's temp folder): the first measurement waits as after
            # any removal. Without it round 1's runenv cold took 11.5 s against 7.1-7.8 s.
            TRASH.removed_at = time.monotonic()
            for i in range(1, args.runs + 1):
                log(f"round {i}/{args.runs}: {', '.join(groups)}")
                for group in groups:
                    MEASURES[group](setup, rec, i)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summarize(rec.data)
    consumer = split_consumer(rec.data, setup.info, args.runs)
    run_result = {
        "schema": 2,
        "runs": args.runs,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": setup.info,
        "measurements": rec.data,
    }
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "benchmarks.json"
    if groups == ["consumer"]:  # the consumer alone: the other figures stay as they were
        if not results_file.exists():
            raise BenchError(f"{results_file} has no build results to add the consumer's to")
        result = json.loads(results_file.read_text(encoding="utf-8"))
    else:
        result = merge_results(results_file, run_result, args.workload)
    if consumer is not None:
        consumer["wall_seconds"] = round(time.monotonic() - started, 1)
        result[CONSUMER_KEYS[args.workload]] = consumer
    result["targets"] = targets(result)
    (out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    render(result, out, args.chart)
    for row in result["targets"]:
        print(
            f"{row['what']:<42} {fmt_value(row['value'], row['unit']):>9}  {row['goal']:<8} "
            f"{'' if row['pass'] is None else 'pass' if row['pass'] else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
