"""The results file (OUT/benchmarks.json): a new run merged into the old one, the old main
figures kept as `previous`, the consumer's and the torch-sized workload's kept apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.log import BenchError
from benchmarks.targets import ratio

# Where a workload's consumer measurements go in the results (`measure_consumer`).
CONSUMER_KEYS = {"3.12.10": "consumer", "atls": "consumer_atls"}


def previous_of(old: dict[str, Any]) -> dict[str, Any]:
    """The medians and sizes of an earlier run, kept to show beside the new figures."""
    data = old["measurements"]
    tar = data.get("tar_czf_runenv_tree", {})
    sizes = {
        "runenv": tar.get("runenv_archive_bytes"),
        "tree": tar.get("archive_bytes"),
        "reference": data.get("reference", {}).get("archive_bytes"),
        "uv": data.get("uv_by_hand", {}).get("archive_bytes"),
    }
    return {
        "date": old["machine"]["date"],
        "runenv_commit": old["machine"].get("runenv_commit"),
        "runs": old["runs"],
        "medians": {k: e["median"] for k, e in data.items() if "median" in e},
        "archive_bytes": {k: v for k, v in sizes.items() if v},
        "size_ratio": ratio(sizes["runenv"], sizes["tree"]),
    }


def merge_results(path: Path, new: dict[str, Any], workload: str) -> dict[str, Any]:
    """The results file with this run in it: a 3.12.10 run replaces the main figures (the
    replaced ones become `previous` if there is none yet) and keeps `atls`; an atls run goes
    under `atls`, the rest kept."""
    old: dict[str, Any] = {}
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
    if workload == "atls":
        if not old:
            raise BenchError(
                f"{path} has no 3.12.10 results to add the atls ones to: run that first"
            )
        return old | {"atls": new}
    result = dict(new)
    if old.get("previous"):
        result["previous"] = old["previous"]
    elif old.get("measurements"):
        result["previous"] = previous_of(old)
    for key in ("atls", "analysis", *CONSUMER_KEYS.values()):
        if key in old:
            result[key] = old[key]
    return result


def split_consumer(data: dict[str, dict[str, Any]], info: dict[str, Any], runs: int) -> Any:
    """The consumer's measurements, taken out of `data`, as a result of their own (None if
    there were none): they are merged apart from the build's, so either can be re-run alone."""
    taken = {k: data.pop(k) for k in list(data) if k.startswith("consumer_")}
    if not taken:
        return None
    return {"runs": runs, "machine": info, "measurements": taken}
