"""Bounded reads: the one way runenv reads a file a user, a checkout or a manifest hands it.

The rules (a regular file only, at most `limit` bytes, no repeated JSON key, at most
`MAX_DEPTH` levels) are the catalogue package's, `runenv._shared.inputs`, which reads
manifests and catalogues with them; here are runenv's limits and what only runenv reads (text,
stdin, TOML). Each failure is an `InputError` whose text is the reason alone: the caller names
the file and says what to do.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from runenv._shared import inputs
from runenv._shared.inputs import MAX_DEPTH as MAX_DEPTH
from runenv._shared.inputs import check_depth as check_depth
from runenv._shared.inputs import loads_json as loads_json

InputError = inputs.Refused
"""A file refused by a bounded read; `str()` is the reason, without the file's name."""

MAX_CONFIG_BYTES = 4 << 20  # configs, locks, manifests, listings of keys: text written by hand
MAX_LOCK_BYTES = 64 << 20  # a lock lists every file of every package with its hash


def read_bytes(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of the regular file `path`, if it holds at most `limit` of them (OSError when
    it cannot be opened; InputError when it is not a regular file or is too large)."""
    return inputs.read_bytes(path, limit)


def read_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """`read_bytes` decoded as UTF-8 (InputError when it is not)."""
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text") from None


def read_stream_text(stream: Any, limit: int = MAX_CONFIG_BYTES) -> str:
    """At most `limit` characters of a text stream (stdin); InputError beyond."""
    text = str(stream.read(limit + 1))
    if len(text) > limit:
        raise InputError(f"more than the {limit} characters allowed")
    return text


def loads_toml(text: str) -> dict[str, Any]:
    """TOML (tomllib refuses repeated keys itself) with at most `MAX_DEPTH` levels.

    tomllib.TOMLDecodeError for bad syntax; InputError for a document nested too deep.
    """
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels") from None
    check_depth(data)
    return data
