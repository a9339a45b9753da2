"""The check stage, on every build: each native binary and each installed wheel fits the platform.

A cross build cannot run its interpreter, so this is its check; a native build runs it too.
Binaries are recognised by their headers (ELF, Mach-O thin and fat/universal2, PE), never by
their names, so a planted `.so` of the wrong architecture is caught wherever it sits.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import BinaryIO

from packaging.tags import Tag, parse_tag

from runenv.config.plan import Plan
from runenv.errors import CheckError

# (format, architecture) each platform's binaries must be.
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "x86", 40: "arm"}
_MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "x86", 12: "arm"}
_PE_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "x86"}
_EXPECTED_FORMAT = {"linux": "ELF", "macos": "Mach-O", "windows": "PE"}

# Windows launcher templates that pip, setuptools and distlib ship as data on every platform.
_LAUNCHER_TEMPLATE_DIRS = ("pip/_vendor/distlib", "setuptools", "installer/_scripts", "distlib")


@dataclass(frozen=True)
class Binary:
    """What a file's header says it is: a format and the architectures it holds."""

    format: str
    archs: tuple[str, ...]


def identify(path: str | Path) -> Binary | None:
    """The binary format and architectures of `path`, or None if it is not a native binary."""
    try:
        with open(path, "rb") as fh:  # noqa: PTH123 - a str from scandir, no Path to parse
            head = fh.read(64)
            if head[:4] == b"\x7fELF" and len(head) >= 20:
                order = "<" if head[5] == 1 else ">"
                (machine,) = struct.unpack(order + "H", head[18:20])
                return Binary("ELF", (_ELF_MACHINES.get(machine, f"machine {machine}"),))
            if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") and len(head) >= 8:
                (cpu,) = struct.unpack("<I", head[4:8])
                return Binary("Mach-O", (_MACHO_CPUS.get(cpu, f"cpu {cpu:#x}"),))
            if head[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") and len(head) >= 8:
                return _fat(fh, head)
            if head[:2] == b"MZ" and len(head) >= 64:
                (offset,) = struct.unpack("<I", head[60:64])
                fh.seek(offset)
                pe = fh.read(6)
                if pe[:4] == b"PE\0\0" and len(pe) == 6:
                    (machine,) = struct.unpack("<H", pe[4:6])
                    return Binary("PE", (_PE_MACHINES.get(machine, f"machine {machine:#x}"),))
    except OSError:
        return None
    return None


def _fat(fh: BinaryIO, head: bytes) -> Binary | None:
    """A universal (fat) Mach-O; Java class files share the magic but not a small arch count."""
    (count,) = struct.unpack(">I", head[4:8])
    if not 0 < count < 30:
        return None
    entry = 32 if head[3] == 0xBF else 20
    fh.seek(8)
    table = fh.read(entry * count)
    if len(table) < entry * count:
        return None
    archs = []
    for i in range(count):
        (cpu,) = struct.unpack(">I", table[i * entry : i * entry + 4])
        archs.append(_MACHO_CPUS.get(cpu, f"cpu {cpu:#x}"))
    return Binary("Mach-O", tuple(archs))


# Python loads these as source or bytecode, never as native code: not opened (they are most
# of a tree's files: 0.4 s of the check on the reference workload).
_NOT_NATIVE = (".py", ".pyc")


def _files(root: Path) -> Iterator[tuple[str, str]]:
    """(path, `/`-separated path relative to `root`) of every regular file under `root` that
    could be a native binary (links not followed). Strings, not Paths: ~4,000 files a tree."""
    stack = [(os.fspath(root), "")]
    while stack:
        top, prefix = stack.pop()
        with os.scandir(top) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(_NOT_NATIVE):
                    yield entry.path, prefix + entry.name


def _is_launcher_template(rel: str, binary: Binary) -> bool:
    return (
        binary.format == "PE"
        and rel.endswith(".exe")
        and any(f"/{d}/" in f"/{rel}" for d in _LAUNCHER_TEMPLATE_DIRS)
    )


def audit_binaries(root: Path, plan: Plan) -> list[str]:
    """Problems with native binaries under `root`: one line per file that does not fit."""
    info = plan.platform.info
    want_format = _EXPECTED_FORMAT[info.os]
    problems = []
    for path, rel in _files(root):
        binary = identify(path)
        if binary is None:
            continue
        if _is_launcher_template(rel, binary):
            continue
        if binary.format != want_format or info.arch not in binary.archs:
            problems.append(
                f"{rel}: {binary.format} for {'+'.join(binary.archs)}, "
                f"but {plan.platform.value} needs {want_format} for {info.arch}"
            )
    return sorted(problems)


def installed_wheel_tags(site_packages: Path) -> dict[str, list[Tag]]:
    """The tags each installed distribution's `WHEEL` file declares, by dist-info name."""
    result: dict[str, list[Tag]] = {}
    for wheel_file in sorted(site_packages.glob("*.dist-info/WHEEL")):
        headers = HeaderParser().parsestr(wheel_file.read_text(encoding="utf-8"))
        tags = [t for value in headers.get_all("Tag") or [] for t in parse_tag(value)]
        result[wheel_file.parent.name] = tags
    return result


def audit_wheel_tags(site_packages: Path, plan: Plan) -> list[str]:
    """Problems with installed wheels: one line per distribution no tag of which fits."""
    info = plan.platform.info
    accepted = set(info.wheel_tags(plan.python_version, plan.glibc, plan.macos))
    if info.os == "linux":
        # A wheel built from source on a native runner is tagged linux_<arch>: it was built
        # for this platform. PyPI refuses such wheels, so none comes from an index.
        accepted |= {
            Tag(t.interpreter, t.abi, f"linux_{info.arch}")
            for t in info.wheel_tags(plan.python_version, plan.glibc, plan.macos)
        }
    problems = []
    for dist, tags in installed_wheel_tags(site_packages).items():
        if tags and not accepted.intersection(tags):
            shown = ".".join(sorted({str(t) for t in tags}))
            problems.append(
                f"{dist}: wheel tags {shown} do not fit {plan.platform.value} "
                f"(Python {plan.python_version}, {_floor(plan)})"
            )
    return problems


def _floor(plan: Plan) -> str:
    if plan.platform.info.os == "linux":
        return f"glibc {plan.glibc[0]}.{plan.glibc[1]}"
    if plan.macos:
        return f"macOS {plan.macos[0]}.{plan.macos[1]}"
    return "win_amd64"


def audit_tree(root: Path, plan: Plan) -> None:
    """Fail the build, naming each file, if any binary or wheel does not fit the platform."""
    problems = audit_binaries(root, plan)
    site = root / plan.site_packages
    if site.is_dir():
        problems += audit_wheel_tags(site, plan)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckError(
            f"audit for {plan.platform.value} failed: " + "; ".join(problems[:3]) + more
        )
