"""The one progress bar: tqdm on stderr when it is a terminal and progress is on, else a no-op.

Both shapes work as a context manager and with `update(n)` / `close()`.
"""

from __future__ import annotations

import sys
from typing import Any


class NoBar:
    """What `progress_bar` gives when nothing should be drawn."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(
    total: int | None, desc: str, *, enabled: bool, unit: str = "B", initial: int = 0
) -> Any:
    """A bar counting `unit`s up to `total` (bytes, scaled by 1024, unless `unit` says else)."""
    if not (enabled and sys.stderr.isatty()):
        return NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
