"""The issues' targets, judged from a results file: the ratios each compares, pass or fail."""

from __future__ import annotations

import statistics
from typing import Any

ISSUE_TARGETS = "issue 13"
VARIANT_312 = "3.12.10"  # the main workload's variant, as the results and the page name it


def median(data: dict[str, dict[str, Any]], name: str) -> float | None:
    """The median of measurement `name`, or None if it was not measured."""
    entry = data.get(name)
    return entry["median"] if entry else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (or b is zero)."""
    return a / b if a is not None and b else None


def peak_mb(data: dict[str, dict[str, Any]], key: str, *names: str) -> float | None:
    """The largest memory figure (`max_rss_mb` or `peak_group_rss_mb`) over runs of `names`."""
    values = [v for n in names for v in data.get(n, {}).get(key, [])]
    return max(values) if values else None


# The figures issue 13 reported before this round (not measured by this script's schema 1).
ISSUE13_BEFORE = {
    "startup_312": "4.17 s first / 0.83-0.91 s second (about 4.8x)",
    "startup_atls": "9.0 s first / 2.5-3.0 s second (about 3.3x)",
    "atls": "109 s with wheels cached, 3.2 GB archive of a 5.4 GB tree, peak RSS 845 MB",
}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets, then issue 7's (kept as informational), each with pass/fail."""
    data = result["measurements"]
    atls = result.get("atls", {}).get("measurements", {})
    prev = result.get("previous", {}).get("medians", {})
    cold, ref = median(data, "runenv_cold"), median(data, "reference")
    uv, uvbc = median(data, "uv_by_hand"), median(data, "uv_by_hand_bytecode")
    lock, warm = median(data, "runenv_cold_lock"), median(data, "runenv_warm")
    tar = data.get("tar_czf_runenv_tree", {})
    size = ratio(tar.get("runenv_archive_bytes"), tar.get("archive_bytes"))
    startup, atls_startup = startup_ratio(data), startup_ratio(atls)
    atls_rss = peak_mb(atls, "max_rss_mb", "runenv_cold", "runenv_warm")
    atls_own = peak_mb(atls, "own_rss_mb", "runenv_cold", "runenv_warm")
    atls_group = peak_mb(atls, "peak_group_rss_mb", "runenv_cold", "runenv_warm")
    atls_uv = median(atls, "uv_by_hand_bytecode")
    atls_uv_label = "uv by hand --compile-bytecode"
    if atls_uv is None:
        atls_uv, atls_uv_label = median(atls, "uv_by_hand"), "uv by hand (no bytecode)"
    rss = peak_mb(data, "max_rss_mb", "runenv_cold", "runenv_warm", "runenv_cold_lock")
    own = peak_mb(data, "own_rss_mb", "runenv_cold", "runenv_warm", "runenv_cold_lock")

    def before(a: str, b: str) -> float | None:
        return ratio(prev.get(a), prev.get(b))

    # (what, value, unit, limit, is a target, value before this round)
    rows: list[tuple[str, float | None, str, float | None, bool, float | None]] = [
        ("warm build / uv by hand --compile-bytecode", ratio(warm, uvbc), "x", 0.25, True, None),
        (
            "warm build / uv by hand (no bytecode)",
            ratio(warm, uv),
            "x",
            0.25,
            True,
            before("runenv_warm", "uv_by_hand"),
        ),
        ("cold build / uv by hand --compile-bytecode", ratio(cold, uvbc), "x", 0.4, True, None),
        (
            "cold build / uv by hand (no bytecode)",
            ratio(cold, uv),
            "x",
            0.4,
            True,
            before("runenv_cold", "uv_by_hand"),
        ),
        ("start-up: first / second import (3.12.10)", startup, "x", 1.2, True, 4.17 / 0.87),
        ("start-up: first / second import (atls)", atls_startup, "x", 1.2, True, 9.0 / 2.75),
        ("atls: runenv peak RSS (its own process)", atls_own, " MB", 1000.0, True, 845.0),
        (
            "atls: peak RSS of the largest process (the import check's runtime)",
            atls_rss,
            " MB",
            None,
            False,
            None,
        ),
        ("atls: runenv peak RSS (process group, sampled)", atls_group, " MB", None, False, None),
        (
            f"atls: cold / {atls_uv_label}",
            ratio(median(atls, "runenv_cold"), atls_uv),
            "x",
            None,
            False,
            None,
        ),
        (
            f"atls: warm / {atls_uv_label}",
            ratio(median(atls, "runenv_warm"), atls_uv),
            "x",
            None,
            False,
            None,
        ),
        ("3.12.10: runenv peak RSS (its own process)", own, " MB", None, False, None),
        ("3.12.10: runenv peak RSS (largest process)", rss, " MB", None, False, None),
        (
            "cold build / reference method",
            ratio(cold, ref),
            "x",
            0.3,
            False,
            before("runenv_cold", "reference"),
        ),
        ("no-op rebuild", median(data, "runenv_noop"), " s", 1.0, False, prev.get("runenv_noop")),
        (
            "5 platforms / 1 platform (cold)",
            ratio(median(data, "runenv_cold_all"), cold),
            "x",
            3.0,
            False,
            before("runenv_cold_all", "runenv_cold"),
        ),
        (
            "archive size / tar czf of the same tree",
            size,
            "x",
            1.0,
            False,
            result.get("previous", {}).get("size_ratio"),
        ),
        (
            "cold + locking / reference method",
            ratio(lock, ref),
            "x",
            0.3,
            False,
            before("runenv_cold_lock", "reference"),
        ),
        (
            "cold + locking / uv by hand (no bytecode)",
            ratio(lock, uv),
            "x",
            0.6,
            False,
            before("runenv_cold_lock", "uv_by_hand"),
        ),
        (
            "warm build / reference method",
            ratio(warm, ref),
            "x",
            None,
            False,
            before("runenv_warm", "reference"),
        ),
    ]
    # The measurements behind each row, for the load average shown beside it.
    main_keys = {
        "warm build / uv by hand --compile-bytecode": ("runenv_warm", "uv_by_hand_bytecode"),
        "warm build / uv by hand (no bytecode)": ("runenv_warm", "uv_by_hand"),
        "cold build / uv by hand --compile-bytecode": ("runenv_cold", "uv_by_hand_bytecode"),
        "cold build / uv by hand (no bytecode)": ("runenv_cold", "uv_by_hand"),
        "start-up: first / second import (3.12.10)": ("startup_first", "startup_second"),
        "3.12.10: runenv peak RSS (largest process)": ("runenv_cold", "runenv_warm"),
        "3.12.10: runenv peak RSS (its own process)": ("runenv_cold", "runenv_warm"),
        "cold build / reference method": ("runenv_cold", "reference"),
        "no-op rebuild": ("runenv_noop",),
        "warm build / reference method": ("runenv_warm", "reference"),
    }
    atls_keys = ("runenv_cold", "runenv_warm", "uv_by_hand", "uv_by_hand_bytecode")
    # An atls section from an earlier run than the main figures says so in its `caveat`.
    atls_mark = " (earlier run: see its section)" if result.get("atls", {}).get("caveat") else ""
    out = []
    for name, value, unit, limit, target, old in rows:
        is_atls = "atls" in name
        keys = ("startup_first", "startup_second") if "first / second" in name else atls_keys
        source, used = (atls, keys) if is_atls else (data, main_keys.get(name, ()))
        loads = [x for k in used for x in source.get(k, {}).get("load", []) if x is not None]
        if limit is None:
            goal, ok = "", None
        elif name == "no-op rebuild":
            goal, ok = f"< {limit:g}{unit}", None if value is None else value < limit
        else:
            goal, ok = f"<= {limit:g}{unit}", None if value is None else value <= limit
        if "first / second" in name and value is not None:
            pyc = (atls if "atls" in name else data).get("startup_first", {}).get("pyc")
            if pyc == 0:  # no bytecode shipped: both imports compile, the ratio says nothing
                goal, ok = f"<= {limit:g}{unit}, no bytecode shipped", None
        out.append(
            {
                "what": name + (atls_mark if is_atls else ""),
                "value": value,
                "unit": unit,
                "goal": goal,
                "pass": ok,
                "target": target,
                "before": old,
                "load": f"{min(loads):.1f}-{max(loads):.1f}" if loads else "",
            }
        )
    return out


def pair_ratios(first: dict[str, Any]) -> list[float]:
    """Each start-up pair's own first / second ratio, sorted (none in older results)."""
    return sorted(f / x for f, x in first.get("pairs") or [] if x)


def startup_ratio(data: dict[str, dict[str, Any]]) -> float | None:
    """First / second import: the median of the pairs' own ratios (`STARTUP_UNPACKS`), or for
    results written before pairs were kept, the ratio of the medians."""
    each = pair_ratios(data.get("startup_first", {}))
    if each:
        return statistics.median(each)
    return ratio(median(data, "startup_first"), median(data, "startup_second"))
