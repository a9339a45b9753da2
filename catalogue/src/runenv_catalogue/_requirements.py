"""Requirements files checked against a runtime's installed distributions, standard library only.

A block venv on an installed-tree runtime installs nothing: it sees the runtime's packages, so
each requirement must already be met there. This module reads the PEP 508 requirements a
requirements file may hold (name, extras, version specifiers, environment markers; `--hash`
options are ignored) and checks them, with what they pull in, against the runtime's
distributions: versions by PEP 440 (`_versions`), markers against the runtime's own marker
environment (`_markers`), following `packaging` (what pip uses) where it matters. What it
cannot check (other options, includes, URLs, paths, `-e`) is refused, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runenv_catalogue._markers import check_marker, evaluate_marker
from runenv_catalogue._names import NAME, canonical_name
from runenv_catalogue._provision import UsageError
from runenv_catalogue._versions import (
    InvalidVersion,
    Version,
    check_specifier,
    specifier_contains,
)

_SPEC = re.compile(r"\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,;()]+)\s*")
_HASH = re.compile(r"\s--hash(?:=|\s+)\S+")


@dataclass(frozen=True)
class Requirement:
    """One requirement of a requirements file: `name[extras] specifiers ; marker`."""

    text: str  # as written (without comment and --hash), for messages
    name: str
    extras: tuple[str, ...]
    specifiers: tuple[tuple[str, str], ...]
    marker: str | None

    @property
    def key(self) -> str:
        return canonical_name(self.name)


def parse_requirement(text: str, *, allow_url: bool = False) -> Requirement:
    """A PEP 508 requirement; ValueError says what is wrong with it. A URL requirement
    (`name @ url`) is refused unless `allow_url` (a distribution's own requirement: only its
    name and marker count then)."""
    line = text.strip()
    m = NAME.match(line)
    if not m:
        raise ValueError("not a requirement (a project name first)")
    name, rest = m.group(), line[m.end() :].lstrip()
    extras: tuple[str, ...] = ()
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise ValueError("unclosed [extras]")
        raw = [e.strip() for e in rest[1:close].split(",") if e.strip()]
        if not all(NAME.fullmatch(e) for e in raw):
            raise ValueError("bad extra name")
        extras = tuple(canonical_name(e) for e in raw)
        rest = rest[close + 1 :].lstrip()
    if rest.startswith("@"):
        if not allow_url:
            raise ValueError("a URL requirement")
        url_marker = re.split(r"\s;", rest, maxsplit=1)
        spec_text, marker = "", url_marker[1] if len(url_marker) > 1 else ""
    else:
        spec_text, _, marker = rest.partition(";")
    spec_text = spec_text.strip()
    if spec_text.startswith("(") and spec_text.endswith(")"):
        spec_text = spec_text[1:-1]
    specifiers: list[tuple[str, str]] = []
    if spec_text.strip():
        for piece in spec_text.split(","):
            sm = _SPEC.fullmatch(piece)
            if sm is None:
                raise ValueError(f"bad version specifier {piece.strip()!r}")
            try:
                check_specifier(sm[1], sm[2])
            except InvalidVersion as exc:
                raise ValueError(f"bad version specifier {piece.strip()!r} ({exc})") from None
            specifiers.append((sm[1], sm[2]))
    marker = marker.strip()
    if marker:
        check_marker(marker)
    return Requirement(line, name, extras, tuple(specifiers), marker or None)


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of a requirements file; UsageError (one line naming the file and line)
    for what cannot be checked against installed packages: options, includes, `-e`, URLs and
    paths. Comments, blank lines, continuations and `--hash` options are fine."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{path}: cannot read the requirements file ({reason})") from None
    found: list[Requirement] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith("-"):
            raise UsageError(
                f"{where}: {line.split()[0]}: options, includes and -e lines cannot be checked "
                "against an installed runtime's packages: list requirements only"
            )
        try:
            found.append(parse_requirement(_HASH.sub("", " " + line)))
        except ValueError as exc:
            raise UsageError(
                f"{where}: {line!r}: {exc}: write name[extras] specifiers ; marker"
            ) from None
    return found


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, line) with `\\` continuations joined and comments dropped."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            yield start, line
    line = re.sub(r"(^|\s)#.*$", "", pending).strip()
    if line:
        yield start, line


@dataclass(frozen=True)
class Installed:
    """One installed distribution: its version, its requirements and its extras."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()


def unmet(
    requirements: Sequence[Requirement],
    installed: Mapping[str, Installed],
    env: Mapping[str, str],
) -> list[str]:
    """Why each requirement (and what it pulls in: dependencies, requested extras) is not met
    by `installed` (canonical name -> distribution), one phrase each; [] when all are met."""
    problems: list[str] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[Requirement, str | None]] = [
        (r, None) for r in requirements if r.marker is None or evaluate_marker(r.marker, env)
    ]  # a requirement whose marker does not hold here is not needed here
    while todo:
        req, parent = todo.pop(0)
        by = f" (needed by {parent})" if parent else ""
        dist = installed.get(req.key)
        if dist is None:
            problems.append(f"{req.text}: {req.name} is not in the runtime{by}")
            continue
        try:
            version = Version.parse(dist.version)
            ok = all(specifier_contains(op, spec, version) for op, spec in req.specifiers)
        except InvalidVersion:  # a legacy version: only === can match it
            ok = all(op == "===" and spec == dist.version for op, spec in req.specifiers)
        if not ok:
            problems.append(f"{req.text}: the runtime has {dist.name} {dist.version}{by}")
            continue
        provided = {canonical_name(e) for e in dist.extras}
        extras = tuple(sorted(e for e in req.extras if e in provided))  # pip ignores others
        if (req.key, extras) in seen:
            continue
        seen.add((req.key, extras))
        for line in dist.requires:
            try:
                sub = parse_requirement(line, allow_url=True)
            except ValueError:
                problems.append(f"{dist.name} {dist.version} requires {line!r}, unreadable")
                continue
            if sub.marker is None or any(
                evaluate_marker(sub.marker, env, e) for e in ("", *extras)
            ):
                todo.append((sub, f"{dist.name} {dist.version}"))
    return problems
