"""The CI build matrix: every (variant, platform) to build, each with its native GitHub runner.

The GitHub Actions workflow feeds `runenv matrix --json` (`matrix_json`) verbatim to
`strategy.matrix` through `fromJSON`, so this module is the one place that decides what CI
builds and where.
"""

from __future__ import annotations

import json
from pathlib import Path

from runenv.config import list_variants, load_variant
from runenv.platforms import ALL_PLATFORMS

KEYS = ("variant", "platform", "runner", "python_version")
"""The keys of every matrix entry, as the workflow reads them (`matrix.variant`, ...)."""


def matrix(project: Path) -> list[dict[str, str]]:
    """Every (variant, platform) to build, honouring each variant's `platforms`.

    Sorted by variant name, then in the platform model's order (not the config's), so the
    matrix only changes when what is built changes.
    """
    entries: list[dict[str, str]] = []
    for variant in list_variants(project):
        vc = load_variant(project, variant)
        wanted = set(vc.platforms)
        for plat in ALL_PLATFORMS:
            if plat in wanted:
                entries.append(
                    {
                        "variant": variant,
                        "platform": plat.value,
                        "runner": plat.info.github_runner,
                        "python_version": vc.python_version,
                    }
                )
    return entries


def github_matrix(entries: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """`entries` in the shape `strategy.matrix` takes: `{"include": [...]}`."""
    return {"include": entries}


def matrix_json(project: Path) -> str:
    """What `runenv matrix --json` prints: `github_matrix` on one line (for `$GITHUB_OUTPUT`)."""
    return json.dumps(github_matrix(matrix(project)), separators=(",", ":"))


def matrix_table(entries: list[dict[str, str]]) -> list[str]:
    """Human-readable lines for `runenv matrix` without `--json`: aligned columns, a header."""
    rows = [list(KEYS), *([e[k] for k in KEYS] for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(KEYS))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
