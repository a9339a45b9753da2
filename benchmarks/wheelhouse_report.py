"""docs/benchmarks-wheelhouse.md and .json: the table (runenv against the reference method,
with issue 23's targets), each measurement's rounds, and the notes the table does not say."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.targets import ratio

TARGETS = {"cold": 0.3, "warm": 0.1}  # issue 23: runenv / reference method, at most
CHECK_STAGE = "checking and packing"  # runenv's progress line for the audit, checks and pack


def verdict(value: float | None, target: float | None) -> str:
    """'met' when `value` <= `target`, 'missed' above it, '' without a target, 'n/a' without a
    value."""
    if target is None:
        return ""
    if value is None:
        return "n/a"
    return "met" if value <= target else "missed"


def _median(data: dict[str, Any], name: str) -> float | None:
    entry = data.get(name)
    if not entry or not entry.get("runs"):
        return None
    return float(statistics.median(entry["runs"]))


def _first(data: dict[str, Any], name: str, key: str) -> float | None:
    values = data.get(name, {}).get(key)
    if isinstance(values, list):
        return float(statistics.median(values)) if values else None
    return float(values) if values is not None else None


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: per workload, cold and warm (with the issue's targets), the archive bytes of
    both layouts against the reference's .tgz, and the block venv."""
    out: list[dict[str, Any]] = []
    for name, workload in result.get("workloads", {}).items():
        data = workload.get("measurements", {})
        n = workload.get("runs", 0)
        for kind in ("cold", "warm"):
            mine, ref = _median(data, f"runenv_{kind}"), _median(data, f"reference_{kind}")
            value = ratio(mine, ref)
            out.append(
                {
                    "what": f"{name}: {kind} build ({n} round{'s' * (n != 1)}, medians)",
                    "runenv": mine,
                    "reference": ref,
                    "unit": "s",
                    "ratio": value,
                    "target": TARGETS[kind],
                    "verdict": verdict(value, TARGETS[kind]),
                }
            )
        ref_bytes = _first(data, "reference_cold", "archive_bytes")
        for layout, key in (("wheelhouse", "runenv_cold"), ("installed", "runenv_installed")):
            mine_bytes = _first(data, key, "archive_bytes")
            out.append(
                {
                    "what": f"{name}: archive bytes, {layout} layout",
                    "runenv": mine_bytes,
                    "reference": ref_bytes,
                    "unit": "B",
                    "ratio": ratio(mine_bytes, ref_bytes),
                    "target": None,
                    "verdict": "",
                }
            )
        if "block_venv" in data:
            mine, ref = _median(data, "block_venv"), _median(data, "block_venv_reference")
            out.append(
                {
                    "what": f"{name}: block venv (steps 1-2), from the unpacked archive",
                    "runenv": mine,
                    "reference": ref,
                    "unit": "s",
                    "ratio": ratio(mine, ref),
                    "target": None,
                    "verdict": "",
                }
            )
    return out


def fmt(value: float | None, unit: str) -> str:
    """Seconds or MB for the table, or n/a."""
    if value is None:
        return "n/a"
    if unit == "B":
        return f"{value / 1e6:,.1f} MB"
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def cell(text: str) -> str:
    """`text` for a Markdown table cell: a `|` in it would end the cell."""
    return text.replace("|", "\\|")


def load_range(entry: dict[str, Any]) -> str:
    """The lowest and highest 1-minute load over a measurement's runs, or n/a."""
    loads = [x for x in entry.get("load", []) if x is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


LABELS = {
    "runenv_cold": "runenv cold",
    "runenv_warm": "runenv warm",
    "reference_cold": "reference method cold",
    "reference_warm": "reference method warm",
    "block_venv": "block venv from runenv's archive",
    "block_venv_reference": "block venv from the reference's .tgz",
    "runenv_installed": "runenv installed layout (archive bytes; warm cache)",
}


def markdown(result: dict[str, Any]) -> str:
    """benchmarks-wheelhouse.md: the table first, then each measurement's rounds and parts."""
    m = result["machine"]
    lines = [
        "# Wheelhouse layout: runenv against the reference method (issue 23)",
        "",
        f"Measured {m['date']} on runenv {m.get('runenv_commit', '?')}, linux-x64, by "
        f"`{' '.join(['python -m benchmarks wheelhouse', result.get('argv', '')]).strip()}`.",
        "",
        f"Machine: {m.get('cpu', '?')}, **{m.get('cores', '?')} cores**, "
        f"{m.get('memory_gb', '?')} GB; shared with other work: **load average "
        f"{m.get('load_start', '?')} at the start, {m.get('load_end', '?')} at the end** "
        "(1/5/15 min); each measurement's 1-minute load is listed below.",
        "",
        "| measurement | runenv | reference method | ratio | target | met/missed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result.get("rows") or rows(result):
        value = row["ratio"]
        target = row["target"]
        lines.append(
            f"| {cell(row['what'])} | {fmt(row['runenv'], row['unit'])} | "
            f"{fmt(row['reference'], row['unit'])} | "
            f"{'n/a' if value is None else f'{value:.2f}x'} | "
            f"{'' if target is None else f'<= {target:g}x'} | {row['verdict']} |"
        )
    lines += ["", *result.get("notes", [])]
    for name, workload in result.get("workloads", {}).items():
        lines += [
            "",
            f"## {name} (variant `{workload['variant']}`, {workload['locked']} locked packages, "
            f"{workload['runs']} round{'s' * (workload['runs'] != 1)})",
            "",
            "| measurement | rounds (s) | median | load (1 min) | parts (medians, s) |",
            "|---|---|---:|---|---|",
        ]
        for key, entry in workload["measurements"].items():
            parts = cell(
                ", ".join(
                    f"{k} {statistics.median(v):.1f}" for k, v in entry.get("parts", {}).items()
                )
            )
            rounds = " / ".join(f"{x:.1f}" for x in entry.get("runs", []))
            med = statistics.median(entry["runs"]) if entry.get("runs") else None
            lines.append(
                f"| {LABELS.get(key, key)} | {rounds} | {fmt(med, 's')} | "
                f"{load_range(entry)} | {parts} |"
            )
        for key, entry in workload["measurements"].items():
            for note in entry.get("notes", []):
                lines.append(f"\n- {LABELS.get(key, key)}: {note}")
    lines += [
        "",
        "## How it was measured",
        "",
        "See the docstring of `benchmarks/scenarios/wheelhouse.py`. Tools: "
        + ", ".join(str(m[k]) for k in ("runenv", "pip", "tar", "gzip") if k in m)
        + f"; runtime Python {m.get('runtime_python', '?')}; index {m.get('index', 'PyPI')}.",
        "Raw timings: `docs/benchmarks-wheelhouse.json`.",
        "",
    ]
    return "\n".join(lines)


def notes(result: dict[str, Any]) -> list[str]:
    """What the table does not say: what each method does, and where the time went."""
    out = [
        "- runenv's times include fetching, verifying and unpacking the interpreter (served on "
        "127.0.0.1), the stdlib's bytecode, the audit, the import check and the consumer "
        "check (steps 1-2 installing the whole wheelhouse into a venv at a new path, then "
        "every module imported); the reference method's start from the PBS tree already "
        "copied into its root (untimed) and check nothing.",
        "- The reference method downloads the sdist of a package runenv builds into a wheel "
        "(the reference's builder ships it as it is: a block then needs a compiler).",
    ]
    for name, workload in result.get("workloads", {}).items():
        data = workload.get("measurements", {})
        cold = data.get("runenv_cold", {})
        stage = cold.get("parts", {}).get(CHECK_STAGE)
        if stage and cold.get("runs"):
            share = statistics.median(stage)
            total = statistics.median(cold["runs"])
            venv = data.get("block_venv", {}).get("runs")
            alone = (
                f"; steps 1-2 alone, from the unpacked archive, took {statistics.median(venv):.1f} "
                "s in the same rounds"
                if venv
                else ""
            )
            out.append(
                f"- {name}: of runenv's cold build ({total:.1f} s, median), "
                f"'{CHECK_STAGE}' took {share:.1f} s ({share / total:.0%}): the audit, the "
                "import check and the consumer check (the root copied, steps 1-2 installing "
                "the whole wheelhouse, every module imported), with the pack beside them"
                f"{alone}. A warm build of an identical variant reuses the archive its cold "
                "build checked (kept in runenv's cache) and checks nothing again."
            )
        if name == "atls":
            out.append(
                "- atls: runenv's `3.12.10-atls` variant: the reference's dependencies plus "
                "`anarci` and `hmmer`, which replace the binaries the reference copies in (see "
                "its config.toml); both methods fetch the same locked versions."
            )
        pairs = []
        for kind in ("cold", "warm"):
            mine = data.get(f"runenv_{kind}", {}).get("runs", [])
            theirs = data.get(f"reference_{kind}", {}).get("runs", [])
            if mine and theirs:
                each = " / ".join(f"{a / b:.2f}x" for a, b in zip(mine, theirs, strict=False))
                pairs.append(f"{kind} {each}")
        if pairs:
            out.append(
                f"- {name}: each round's own ratio (runenv / reference method, the two measured "
                f"minutes apart): {'; '.join(pairs)}."
            )
        mine_files = set(data.get("runenv_cold", {}).get("wheelhouse_files", []))
        ref_files = set(data.get("reference_cold", {}).get("packages", []))
        mine_tree, ref_tree = (
            _first(data, k, "tree_bytes") for k in ("runenv_cold", "reference_cold")
        )
        if mine_files and ref_files and mine_tree is not None and ref_tree is not None:
            same = (
                "the same files"
                if mine_files == ref_files
                else f"{len(mine_files & ref_files)} files in common; only runenv's: "
                f"{', '.join(sorted(mine_files - ref_files))}; only the reference's: "
                f"{', '.join(sorted(ref_files - mine_files))}"
            )
            out.append(
                f"- {name}: `packages/` holds {same}; the unpacked roots are "
                f"{mine_tree / 1e6:,.1f} MB (runenv's, with the standard library's bytecode) and "
                f"{ref_tree / 1e6:,.1f} MB (the reference's)."
            )
        ref = [data.get(f"reference_{k}", {}).get("parts", {}) for k in ("cold", "warm")]
        key = "pip download (one per package)"
        if all(key in p for p in ref):
            c, w = (statistics.median(p[key]) for p in ref)
            out.append(
                f"- {name}: the reference method's downloads took {c:.1f} s cold and {w:.1f} s "
                "with pip's cache kept (pip still asks the index for every package, and starts "
                "once per package); its `tar | gzip -9` is the same both times."
            )
    return out


def write(result: dict[str, Any], out: Path) -> None:
    """The rows and notes computed into `result`, then the JSON and the page written."""
    result["rows"] = rows(result)
    result["notes"] = notes(result)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (out / "benchmarks-wheelhouse.json").write_text(text, encoding="utf-8")
    (out / "benchmarks-wheelhouse.md").write_text(markdown(result), encoding="utf-8")
