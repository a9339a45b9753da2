"""A block's pip requirements file, read as pip reads it, for `runenv requirements`.

Only what `pip install --no-index --find-links <runtime>/packages/ -r FILE` can honour is
accepted: named requirements with specifiers, extras and markers. Options, includes, editables,
URLs and paths are refused in one line naming the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from runenv.errors import UsageError

# pip's own rules (pip._internal.req.req_file): a `#` at the start or after whitespace starts a
# comment; a line ending in a backslash continues on the next one.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDES = {
    "-r": "an include",
    "--requirement": "an include",
    "-c": "a constraints include",
    "--constraint": "a constraints include",
}
_EDITABLE = ("-e", "--editable")


@dataclass(frozen=True)
class Line:
    """One requirement of the file and the (first physical) line it is on."""

    number: int
    requirement: Requirement


def read_requirements(path: Path) -> list[Line]:
    """The requirements of a pip requirements file; UsageError (one line naming the file and
    the line) for anything `--no-index` from the runtime's packages cannot honour: options,
    includes, editables, URLs and paths, or text that is no requirement."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the requirements file ({exc.strerror or exc})"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the requirements file is not UTF-8 text") from None
    return [_requirement(path, number, body) for number, body in _logical_lines(text)]


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, text) of each non-empty line, continuations joined and
    comments removed as pip does it."""
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.endswith("\\") and not _COMMENT.match(raw):
            if not pending:
                first = number
            pending.append(raw[:-1])
            continue
        if _COMMENT.match(raw):
            raw = " " + raw  # a comment line ends a continuation, and stays a comment
        if pending:
            line, pending, number = "".join([*pending, raw]), [], first
        else:
            line = raw
        line = _COMMENT.sub("", line).strip()
        if line:
            yield number, line
    if pending:  # a file ending in a backslash
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            yield first, line


def _requirement(path: Path, number: int, text: str) -> Line:
    where = f"{path}:{number}"
    # pip splits a line at its first token that starts with `-`: the rest are options.
    tokens = text.split()
    at = next((i for i, t in enumerate(tokens) if t.startswith("-")), None)
    if at is not None:
        option = tokens[at].split("=", 1)[0]
        if option in _EDITABLE:
            raise UsageError(
                f"{where}: an editable requirement ({text}) installs from a source tree, which "
                "a block cannot do with --no-index from the runtime's packages: name the "
                "package and its version instead"
            )
        if option in _INCLUDES:
            raise UsageError(
                f"{where}: {_INCLUDES[option]} ({text}) is not followed: a block installs this "
                "one file; put the requirements it names in this file"
            )
        if option == "--hash":
            raise UsageError(
                f"{where}: the option --hash ({text}): pip's hash-checking mode is not "
                "followed here (the runtime's packages may hold wheels built from source, "
                "whose hashes no index publishes): check a copy of the file without --hash"
            )
        raise UsageError(
            f"{where}: the option {option} ({text}) has no place in a block's requirements: "
            "the block installs with --no-index --find-links <runtime>/packages/ only; "
            "remove the option"
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        if "://" in text or text.startswith((".", "/", "~")) or text.endswith(_ARCHIVES):
            raise UsageError(
                f"{where}: {text} is a URL or a path, which a block cannot install with "
                "--no-index from the runtime's packages: name the package and its version"
            ) from None
        why = str(exc).splitlines()[0]  # packaging adds the text and a caret on more lines
        raise UsageError(f"{where}: {text!r} is not a requirement ({why})") from None
    if req.url:
        raise UsageError(
            f"{where}: {text} installs from a URL, which a block cannot do with --no-index "
            f"from the runtime's packages: name {req.name} with its version instead"
        )
    return Line(number, req)


_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
