"""Sections of docs/benchmarks.md that stand apart from the main figures: the table of seconds
(also used for atls), start-up, the consumer (issue 24) and the torch-sized workload."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.results import CONSUMER_KEYS
from benchmarks.targets import ISSUE13_BEFORE, pair_ratios, startup_ratio


def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit (MB with thousands separators), or n/a."""
    if value is None:
        return "n/a"
    if unit == " MB":
        return f"{value:,.0f} MB"
    return f"{value:.2f}{unit}"


def verdict(ok: bool | None) -> str:
    """**pass**, **FAIL** or n/a."""
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def load_range(entry: dict[str, Any]) -> str:
    """The lowest and highest 1-minute load over a measurement's runs."""
    loads = [x for x in entry.get("load", []) if x is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else ""


def mem_cell(entry: dict[str, Any]) -> str:
    """Peak RSS in MB: runenv's own / the largest process / the process group."""
    if not entry.get("max_rss_mb"):
        return ""
    own = max(entry.get("own_rss_mb") or [0]) or None
    cell = f"{max(entry['max_rss_mb']):,.0f} / {max(entry['peak_group_rss_mb']):,.0f}"
    return (f"{own:,.0f} / " if own else "n/a / ") + cell


def seconds_table(
    data: dict[str, dict[str, Any]], labels: dict[str, str], prev: dict[str, float]
) -> list[str]:
    """The table of seconds (median, min, max, before, load, memory, parts) by label."""
    lines = [
        "| what | median | min | max | before | load (1 min) "
        "| peak RSS MB (runenv / largest / group) | parts (median s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, label in labels.items():
        entry = data.get(key)
        if not entry:
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in entry["parts_median"].items())
        old = f"{prev[key]:.2f}" if key in prev else ""
        lines.append(
            f"| {label} | {entry['median']:.2f} | {entry['min']:.2f} | {entry['max']:.2f} | "
            f"{old} | {load_range(entry)} | {mem_cell(entry)} | {parts} |"
        )
    return lines


CONSUMER_TARGET = 0.5  # install / tar xzf of the same archive (issue 24)
CONSUMER_RSS_TARGET = 300.0  # MB, the consumer's peak on the atls archive (issue 24)


def cpu_cell(ours: dict[str, Any], tar: dict[str, Any]) -> str:
    """The median CPU seconds (user + system) of both: the work each did, whatever the load."""
    if not ours.get("cpu") or not tar.get("cpu"):
        return "n/a"
    return f"{statistics.median(ours['cpu']):.2f} / {statistics.median(tar['cpu']):.2f}"


def consumer_lines(result: dict[str, Any]) -> list[str]:
    """Issue 24's section: the catalogue's install against `tar xzf`, per workload."""
    found = [(w, result[k]) for w, k in CONSUMER_KEYS.items() if result.get(k)]
    if not found:
        return []
    lines = [
        "",
        "## Installing a runtime from the catalogue (issue 24)",
        "",
        "`python -m runenv_catalogue install VARIANT` (this checkout's catalogue package) from "
        "a `file://` catalogue into an empty cache: read once, hashed, inflated on every core, "
        "staged and renamed, marker last; against `tar xzf` of the same archive into an empty "
        "folder (gzip inflates on one core, tar writes beside it). Which of the two runs first "
        "alternates by round. Before each command: what came before written back, the page "
        "cache dropped (as root; `benchmarks.trash.drop_page_cache`: on this VM the first "
        "write to memory freed earlier costs a fault on the host), the archive, the catalogue "
        "package, tar and gzip read back in. Each round's trees are compared file by file "
        "(kind, mode, mtime, "
        "content or link target). The ratio is the median of the rounds' own ratios. CPU is "
        "user + system seconds from `wait4` (tar's includes its gzip), the work done whatever "
        "the load. Peak RSS is `ru_maxrss` of the process (`wait4`, what `/usr/bin/time -v` "
        "reports).",
        "",
        "| workload | date | cores | install, median s (min-max) | tar xzf, median s "
        "(min-max) | install / tar xzf (rounds) | target | result | CPU s, install / tar "
        "(medians) | install peak RSS | trees identical to tar's | archive / tree bytes, "
        "entries |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for workload, found_result in found:
        data, info = found_result["measurements"], found_result["machine"]
        ours, tar = data.get("consumer_install"), data.get("consumer_tar_xzf")
        trees = data.get("consumer_trees", {})
        if not ours or not tar:
            continue
        each = [a / b for a, b in zip(ours["runs"], tar["runs"], strict=False) if b]
        value = statistics.median(each) if each else None
        rss = max(ours.get("max_rss_mb") or [0])
        rss_goal = f", RSS <= {CONSUMER_RSS_TARGET:.0f} MB" if workload == "atls" else ""
        ok = value is not None and value <= CONSUMER_TARGET
        if workload == "atls":
            ok = ok and rss <= CONSUMER_RSS_TARGET
        identical = trees.get("identical") or []
        same = f"{sum(identical)} of {len(identical)} rounds" if identical else "n/a"
        lines.append(
            f"| {info.get('variant', workload)} | {info['date']} | {info.get('cores', '?')} | "
            f"{ours['median']:.2f} ({ours['min']:.2f}-{ours['max']:.2f}) | "
            f"{tar['median']:.2f} ({tar['min']:.2f}-{tar['max']:.2f}) | "
            f"{fmt_value(value, 'x')} ({', '.join(f'{r:.2f}x' for r in each)}) | "
            f"<= {CONSUMER_TARGET:g}x{rss_goal} | {verdict(ok if value is not None else None)} | "
            f"{cpu_cell(ours, tar)} | {rss:,.0f} MB | {same} | {trees.get('archive_bytes', 0):,} / "
            f"{trees.get('tree_bytes', 0):,}, {trees.get('entries', 0):,} |"
        )
        notes = [n for e in data.values() for n in e.get("notes", [])]
        if notes:
            lines.append(f"\nNotes ({workload}): " + "; ".join(notes))
    # What the figures mean, written by hand into the results file after a run.
    for workload, found_result in found:
        if found_result.get("analysis"):
            lines += ["", f"**{workload}.** " + found_result["analysis"].strip()]
    return lines


def pairs_note(first: dict[str, Any]) -> str:
    """How many start-up pairs the ratio is the median of, and their range."""
    each = pair_ratios(first)
    if not each:
        return ""
    return f" (median of {len(each)} pairs' ratios, {each[0]:.2f}x-{each[-1]:.2f}x)"


def startup_lines(data: dict[str, dict[str, Any]], before: str) -> list[str]:
    """The start-up paragraph: first and second import, ratio, what failed or is absent."""
    first, second = data.get("startup_first"), data.get("startup_second")
    if not first or not second:
        return []
    absent = first.get("absent") or []
    lines = [
        "",
        f"Start-up, from a fresh read-only unpack of runenv's archive with "
        f"`PYTHONDONTWRITEBYTECODE=1` ({first.get('pyc', '?'):,} `.pyc` files in the archive): "
        f'`python3 -c "{first["statement"]}"` took {first["median"]:.2f} s the first time '
        f"({first['min']:.2f}-{first['max']:.2f}) and {second['median']:.2f} s the second "
        f"({second['min']:.2f}-{second['max']:.2f}): "
        f"{startup_ratio(data) or 0:.2f}x{pairs_note(first)}. Before: {before}.",
    ]
    if first.get("failed"):
        lines.append(
            "Imported but failing (each import is tried in turn, so the others still load): "
            + "; ".join(first["failed"])
            + "."
        )
    if absent:
        lines.append(
            f"Not in this variant, so left out of the import: {', '.join(absent)} (the "
            "reference system's atls set ships them; this project's atls variant does not)."
        )
    return lines


ATLS_LABELS = {
    "runenv_cold": "runenv cold (empty cache)",
    "runenv_warm": "runenv warm (caches full)",
    "runenv_noop": "runenv no-op",
    "uv_by_hand_bytecode": "uv by hand --compile-bytecode (locked versions), tar czf",
    "uv_by_hand": "uv by hand (locked versions, no bytecode), tar czf",
}


def atls_lines(atls: dict[str, Any] | None) -> list[str]:
    """The torch-sized workload's section (none without atls results)."""
    if not atls:
        return []
    data = atls["measurements"]
    info = atls["machine"]
    lines = [
        "",
        f"## Torch-sized workload (`{info['variant']}`, linux-x64)",
        "",
        f"`python -m benchmarks --workload atls --runs {atls['runs']}` on {info['date']} "
        f"({atls['wall_seconds'] / 60:.1f} min): the shipped variant's lock "
        f"({info.get('locked_packages', '?')} packages: torch 2.7.0 with its CUDA wheels, "
        "ImmuneBuilder), from PyPI, on the same stand-in PBS. Before (issue 13): "
        f"{ISSUE13_BEFORE['atls']}.",
    ]
    if atls.get("caveat"):
        lines += ["", f"**{atls['caveat'].strip()}**"]
    appended = str(info.get("variant_toml_appended") or "").replace("\\n", " ").replace("\n", " ")
    lines += [
        "",
        (
            f"The benchmark's copy of the variant adds: `{appended}`."
            if appended
            else "The benchmark builds the shipped variant as it is (only the Python pins added)."
        ),
        "",
    ]
    lines += seconds_table(data, ATLS_LABELS, {})
    arch = data.get("runenv_archive", {})
    uvbc, uv = data.get("uv_by_hand_bytecode", {}), data.get("uv_by_hand", {})
    lines += ["", "| archive | bytes | tree bytes |", "|---|---:|---:|"]
    for label, entry in (
        ("runenv's archive (bytecode)", arch),
        ("uv by hand --compile-bytecode, `tar czf`", uvbc),
        ("uv by hand, `tar czf`", uv),
    ):
        if entry.get("archive_bytes"):
            lines.append(f"| {label} | {entry['archive_bytes']:,} | {entry['tree_bytes']:,} |")
    notes = [f"{ATLS_LABELS.get(k, k)}: {n}" for k, e in data.items() for n in e.get("notes", [])]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    lines += startup_lines(data, ISSUE13_BEFORE["startup_atls"])
    for key in ("runenv_cold", "runenv_warm"):
        entry = data.get(key)
        if entry and entry["parts_median"]:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in entry["parts_median"].items())
            lines.append(f"- {ATLS_LABELS[key]}, {entry['median']:.2f} s: {parts}")
    return lines
