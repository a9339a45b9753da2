"""What the catalogue takes from a manifest or a catalogue file, checked before use.

The same rules as runenv's own (`runenv._safe_paths`, `runenv._bounded`), kept here because
this package is stdlib-only:

- a path from a manifest is relative, has no `..` and no drive, and is walked component by
  component with `lstat` under the folder it names something in: a link component must lead
  inside that folder (`inside`), so an `interpreter` of `/usr/bin/python3` or `../../x` never
  names a program outside the runtime;
- a variant is a plain name (ASCII letters, digits, `.`, `_`, `+`, `-`; never a path);
- a JSON file is a regular file of bounded size, with no repeated key and bounded nesting.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any

MAX_JSON_BYTES = 64 << 20
MAX_DEPTH = 64
_DRIVE = re.compile(r"[A-Za-z]:", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*", re.ASCII)


class Refused(ValueError):
    """An input refused by these rules; `str()` says why, without naming the file."""


def relative(value: object) -> PurePosixPath:
    """`value` as a relative POSIX path: a non-empty string, not absolute, no drive, no
    backslash, no `..` component. Refused otherwise."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise Refused(f"{value!r} is not a relative path")
    if value.startswith("/") or "\\" in value or _DRIVE.match(value):
        raise Refused(f"{value!r} is not a relative path inside the runtime")
    path = PurePosixPath(value)
    if ".." in path.parts or not path.parts:
        raise Refused(f"{value!r} has a '..' component: it would leave the runtime")
    return path


def inside(root: Path, rel: PurePosixPath) -> Path:
    """The real path of `rel` under `root`, walked with `lstat`: Refused when a component is a
    link leading out of `root`, or the path does not exist."""
    base = root.resolve()
    current = base
    for part in rel.parts:
        step = current / part
        try:
            mode = step.lstat().st_mode
        except OSError:
            raise Refused(f"{rel} is not in the runtime") from None
        if stat.S_ISLNK(mode):
            try:
                step = step.resolve(strict=True)
            except (OSError, RuntimeError):
                raise Refused(f"{rel}: {part} is a broken link or a loop") from None
            if not step.is_relative_to(base):
                raise Refused(f"{rel}: {part} is a link that leads out of the runtime")
        current = step
    return current


def plain_name(value: object) -> str:
    """`value` if it can name a variant: a plain ASCII name, never a path."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise Refused(f"{value!r} is not a variant name (letters, digits, '.', '_', '+', '-')")
    return value


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in the regular file `path` (opened without blocking, so a FIFO is
    refused), at most `limit` bytes, no repeated key, at most `MAX_DEPTH` levels.

    OSError when it cannot be opened; Refused or ValueError (bad JSON) otherwise.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused("not a regular file")
        if st.st_size > limit:
            raise Refused(f"{st.st_size} bytes, more than the {limit} allowed")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"more than the {limit} bytes allowed")
    return loads(data.decode("utf-8"))


def loads(text: str) -> Any:
    """JSON with no repeated key and at most `MAX_DEPTH` levels (Refused otherwise)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique)
    except RecursionError:
        raise Refused(f"nested deeper than {MAX_DEPTH} levels") from None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    raise Refused(f"nested deeper than {MAX_DEPTH} levels")
                stack.append((child, depth + 1))
    return data


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Refused(f"key {key!r} appears twice in one object")
        result[key] = value
    return result
