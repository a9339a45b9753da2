"""Bounded reads: how runenv and the catalogue read a file a user, a checkout or a manifest
hands them.

A read takes only a regular file (a FIFO, a device or a folder is refused in one line instead
of blocking, reading without end or being skipped), at most `limit` bytes (checked before the
bytes are read, so a 2 GB file costs a stat, not 4 GB of memory); a JSON document is refused
when a key repeats (json would keep the last silently) or when it nests deeper than
`MAX_DEPTH` (which would otherwise be a RecursionError, here or in whatever walks the data
later). Each failure is a `Refused` whose text is the reason alone: the caller names the file
and says what to do.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_DEPTH = 64  # tables and arrays inside each other; real configs and manifests use 4 or 5


class Refused(ValueError):
    """An input refused by these rules; `str()` says why, without naming the file."""


def read_bytes(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, if it holds at most `limit` of them.

    OSError as `open` raises it when the file cannot be opened; Refused when it is not a
    regular file or is too large. It is opened without blocking, so a FIFO is refused, not
    waited on.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"not a regular file (a {_kind(st.st_mode)}): give a plain file")
        if st.st_size > limit:
            raise Refused(f"{st.st_size} bytes, more than the {limit} allowed")
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while read
        raise Refused(f"more than the {limit} bytes allowed")
    return data


def loads_json(text: str | bytes) -> Any:
    """JSON with no repeated key in any object and at most `MAX_DEPTH` levels.

    json.JSONDecodeError (a ValueError) for bad syntax; Refused for a repeated key or a
    document nested too deep.
    """
    try:
        data = json.loads(text, object_pairs_hook=_unique_object)
    except RecursionError:
        raise Refused(f"nested deeper than {MAX_DEPTH} levels") from None
    check_depth(data)
    return data


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Refused when `data` holds lists or dicts more than `limit` levels inside each other.

    Iterative: the walk itself cannot overflow the stack.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    raise Refused(f"nested deeper than {limit} levels")
                stack.append((child, depth + 1))


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Refused(f"key {key!r} appears twice in one object: keep one")
        result[key] = value
    return result


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"
