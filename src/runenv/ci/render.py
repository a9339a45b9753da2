"""What `runenv matrix` prints: the JSON the workflow reads, or a table for a person."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from runenv.ci.estimate import MULTIPLIERS, OSES, estimate
from runenv.ci.matrix import (
    VERIFY_KEYS,
    WHEEL_KEYS,
    all_keys,
    build_entries,
    cached_entries,
    plan_targets,
    verify_entries,
    wheel_entries,
)


def github_matrix(entries: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """`entries` in the shape `strategy.matrix` takes: `{"include": [...]}`."""
    return {"include": entries}


def matrix_data(project: Path, cached: Collection[str] = frozenset()) -> dict[str, Any]:
    """What `runenv matrix --json` holds: the `wheels`, `build` and `verify` matrices, the wheels
    entries left out because `cached` holds their key, the estimate under that cache state."""
    targets = plan_targets(project)
    return {
        "wheels": github_matrix(wheel_entries(targets, cached)),
        "build": github_matrix(build_entries(targets)),
        "verify": github_matrix(verify_entries(targets)),
        "cached_wheels": cached_entries(targets, cached),
        "estimate": estimate(targets, cached=cached),
    }


def matrix_json(project: Path, cached: Collection[str] = frozenset()) -> str:
    """`matrix_data` on one line (it goes through `$GITHUB_OUTPUT`)."""
    return json.dumps(matrix_data(project, cached), separators=(",", ":"))


TABLE_KEYS = ("variant", "platforms", "runner", "python_version", "wheels")
"""The build entries' keys the table shows (the wheels keys are in the wheels table)."""


def _table(keys: Sequence[str], entries: Sequence[Mapping[str, str]]) -> list[str]:
    rows = [list(keys), *([_short(k, e[k]) for k in keys] for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _short(key: str, value: str) -> str:
    return value[:16] if key == "wheels_key" else value  # enough to tell keys apart


def matrix_table(project: Path, cached: Collection[str] | None = None) -> list[str]:
    """Human-readable lines for `runenv matrix`: the plan, why targets are native, the cost.

    With `cached` (the keys CI's cache holds), the plan and one estimate for that state;
    without, the plan of a first run and two estimates: the first run, and the next run with
    the same locks, whose wheels are all cached.
    """
    targets = plan_targets(project)
    wheel_jobs = wheel_entries(targets, cached or frozenset())
    lines = ["wheels jobs (source builds on the native runner, for a cross build on Linux):"]
    lines += _table(WHEEL_KEYS, wheel_jobs) if wheel_jobs else ["(none)"]
    if cached is not None:
        skipped = cached_entries(targets, cached)
        lines += [
            "",
            "wheels jobs skipped (their wheels are in CI's cache; the build restores them):",
        ]
        lines += _table(WHEEL_KEYS, skipped) if skipped else ["(none)"]
    lines += ["", "build jobs:", *_table(TABLE_KEYS, build_entries(targets))]
    verify = verify_entries(targets)
    lines += ["", "verify jobs (cross-built archives, checked on their native runner):"]
    lines += _table(VERIFY_KEYS, verify) if verify else ["(none)"]
    native = [t for t in targets if t.native_reasons]
    if native:
        lines += ["", "on the native runner because (a wheels job, or the whole build):"]
        for t in native:
            lines += [f"  {t.variant} {t.platform}: {why}" for why in t.native_reasons]
    lines += ["", "billed: each job rounded up to whole minutes x multiplier"]
    if cached is not None:
        est = estimate(targets, cached=cached)
        title = (
            f"estimated minutes with the wheels CI has cached ({est['wheels_cached']} of "
            f"{est['source_built_targets']} targets with source builds; all native likewise):"
        )
        return [*lines, "", title, *_estimate_lines(est)]
    first = estimate(targets)
    again = estimate(targets, cached=all_keys(targets))
    lines += [
        "",
        "estimated minutes, first run (nothing cached: every wheels job runs, every source is",
        "built, in all native too):",
        *_estimate_lines(first),
        "",
        "estimated minutes, wheels cached (the locks unchanged since the last run: no wheels",
        "job runs, and all native takes its built wheels from runenv's cache):",
        *_estimate_lines(again),
    ]
    return lines


def _estimate_lines(est: Mapping[str, Any]) -> list[str]:
    width = 30
    lines = [f"  {'':9}{'this plan':<{width}}{'all native':<{width}}multiplier"]
    for os_name in OSES:
        mine, theirs = _cell(est["plan"][os_name]), _cell(est["all_native"][os_name])
        lines.append(f"  {os_name:9}{mine:<{width}}{theirs:<{width}}x{MULTIPLIERS[os_name]}")
    total, native_total = f"{est['billed']} billed", f"{est['all_native_billed']} billed"
    lines.append(f"  {'total':9}{total:<{width}}{native_total}")
    lines.append(
        f"  macOS + Windows billed minutes: {est['macos_windows_billed_ratio']}x of all native "
        f"(runner minutes: {est['macos_windows_minutes_ratio']}x)"
    )
    return lines


def _cell(by: Mapping[str, Any]) -> str:
    jobs = f"{by['jobs']} job" + ("" if by["jobs"] == 1 else "s")
    return f"{jobs}, {by['minutes']:.1f} min, {by['billed']} billed"
