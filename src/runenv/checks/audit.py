"""The check stage, on every build: each native binary and each installed wheel fits the platform.

A cross build cannot run its interpreter, so this is its check; a native build runs it too.
Binaries are recognised by their headers (ELF, Mach-O thin and fat/universal2, PE), never by
their names, so a planted `.so` of the wrong architecture is caught wherever it sits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

from packaging.tags import Tag, parse_tag

from runenv.config.plan import Plan
from runenv.errors import CheckError
from runenv.tree.binaries import Binary, identify

# The format each platform's binaries must be.
_EXPECTED_FORMAT = {"linux": "ELF", "macos": "Mach-O", "windows": "PE"}

# Windows launcher templates that pip, setuptools and distlib ship as data on every platform.
_LAUNCHER_TEMPLATE_DIRS = ("pip/_vendor/distlib", "setuptools", "installer/_scripts", "distlib")


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
