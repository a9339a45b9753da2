"""Project and extra names: PEP 508's grammar and PEP 503's normal form, standard library only."""

from __future__ import annotations

import re

# A PEP 508 project or extra name: letters and digits, with `.`, `_` and `-` inside.
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def canonical_name(name: str) -> str:
    """A project name as PEP 503 normalises it (`Foo_Bar.baz` -> `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", name).lower()
