"""What the catalogue takes from a manifest or a catalogue file, checked before use.

The rules runenv applies to what it is handed too (the bounded reads are one module both use,
`_shared.inputs`; runenv's written paths, `runenv._safe_paths`, also take `\\` and let a
missing file be named by the caller):

- a path from a manifest is relative, has no `..` and no drive, and is walked component by
  component with `lstat` under the folder it names something in: a link component must lead
  inside that folder (`inside`), so an `interpreter` of `/usr/bin/python3` or `../../x` never
  names a program outside the runtime;
- a variant is a plain name (ASCII letters, digits, `.`, `_`, `+`, `-`; never a path);
- a JSON file is a regular file of bounded size, with no repeated key and bounded nesting.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from runenv_catalogue._shared.inputs import MAX_DEPTH as MAX_DEPTH
from runenv_catalogue._shared.inputs import Refused as Refused
from runenv_catalogue._shared.inputs import loads_json as loads_json
from runenv_catalogue._shared.inputs import read_bytes
from runenv_catalogue._shared.paths import BROKEN, LEADS_OUT, WalkRefused, walk

MAX_JSON_BYTES = 64 << 20
_DRIVE = re.compile(r"[A-Za-z]:", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*", re.ASCII)


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
    """The real path of `rel` under `root`, walked with `lstat` (`_shared.paths.walk`, runenv's
    walk): Refused when a component is a link leading out of `root`, or the path does not
    exist."""
    try:
        current, walked = walk(root, rel.parts, strict=True)
    except WalkRefused as exc:
        part = rel.parts[exc.index]
        if exc.reason == LEADS_OUT:
            raise Refused(f"{rel}: {part} is a link that leads out of the runtime") from None
        if exc.reason == BROKEN:
            raise Refused(f"{rel}: {part} is a broken link or a loop") from None
        raise Refused(f"{rel} is not in the runtime") from None
    except OSError:
        raise Refused(f"{rel} is not in the runtime") from None
    if walked < len(rel.parts):
        raise Refused(f"{rel} is not in the runtime")
    return current


def plain_name(value: object) -> str:
    """`value` if it can name a variant: a plain ASCII name, never a path."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise Refused(f"{value!r} is not a variant name (letters, digits, '.', '_', '+', '-')")
    return value


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in the regular file `path`, at most `limit` bytes, no repeated key,
    at most `MAX_DEPTH` levels (`_shared.inputs`, runenv's rules).

    OSError when it cannot be opened; Refused or ValueError (bad JSON) otherwise.
    """
    return loads_json(read_bytes(path, limit).decode("utf-8"))
