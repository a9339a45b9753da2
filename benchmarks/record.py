"""Every timing of a run, by measurement (`Recorder`), runenv's stages cut from its progress
lines (`stage_times`), and the medians the results keep (`summarize`)."""

from __future__ import annotations

import os
import statistics
from typing import Any

from benchmarks.runner import Run

# What the results call each of the main benchmark's measurements.
LABELS = {
    "runenv_cold": "runenv cold (lock committed)",
    "runenv_cold_lock": "runenv cold + locking",
    "runenv_warm": "runenv warm (caches full)",
    "runenv_noop": "runenv no-op",
    "runenv_cold_all": "runenv cold, 5 platforms",
    "reference": "reference method (pip)",
    "uv_by_hand": "uv by hand",
    "uv_by_hand_bytecode": "uv by hand --compile-bytecode",
    "tar_czf_runenv_tree": "tar czf of runenv's tree",
}


# runenv's progress messages ("VARIANT PLATFORM: fetching ...") mark where each stage starts;
# a stage lasts until the next message (the last one until the process exits), and is named
# after its message, numbers and versions left out ("installing 10 wheels" -> "installing").
def stage_label(message: str) -> str:
    """A progress message's stage name: its words up to the first number or version."""
    words = []
    for word in message.split():
        if word[:1].isdigit() or word.startswith("(") or word == "Python":
            break
        words.append(word)
    return " ".join(words) or message


def stage_times(result: Run, variant: str) -> dict[str, float]:
    """Seconds per stage of a `runenv build` of `variant`, named by `stage_label`."""
    marks = [(0.0, "start-up")]
    for t, line in result.stderr:
        prefix, sep, message = line.partition(": ")
        if sep and prefix.startswith(variant + " ") and " " not in prefix[len(variant) + 1 :]:
            marks.append((t, stage_label(message)))
    ends = [t for t, _ in marks[1:]] + [result.seconds]
    stages: dict[str, float] = {}
    for (t, label), end in zip(marks, ends, strict=True):
        stages[label] = stages.get(label, 0.0) + end - t
    return stages


class Recorder:
    """Every timing, by measurement: total seconds per run and named parts per run."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def add(
        self,
        name: str,
        seconds: float,
        parts: dict[str, float] | None = None,
        *,
        memory: Run | None = None,
        **extra: Any,
    ) -> None:
        """Record one run of `name`: its seconds, named parts, memory and the load now."""
        entry = self.data.setdefault(name, {"runs": [], "parts": {}, "notes": [], "load": []})
        entry["runs"].append(round(seconds, 3))
        if memory is not None:
            entry.setdefault("max_rss_mb", []).append(round(memory.max_rss / 1e6, 1))
            entry.setdefault("peak_group_rss_mb", []).append(round(memory.peak_tree_rss / 1e6, 1))
            entry.setdefault("own_rss_mb", []).append(round(memory.own_rss / 1e6, 1))
        entry["load"].append(load_now())
        for key, value in (parts or {}).items():
            entry["parts"].setdefault(key, []).append(round(value, 3))
        entry.update(extra)

    def note(self, name: str, text: str) -> None:
        """Add `text` to measurement `name`'s notes, once."""
        notes = self.data[name]["notes"]
        if text not in notes:
            notes.append(text)


def load_now() -> float | None:
    """The 1-minute load average when a measurement ends: other work on the machine shows."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def summarize(data: dict[str, dict[str, Any]]) -> None:
    """Each measurement's median, min and max, and its parts' medians, added to it."""
    for entry in data.values():
        runs = entry["runs"]
        entry["median"] = round(statistics.median(runs), 3)
        entry["min"] = min(runs)
        entry["max"] = max(runs)
        entry["parts_median"] = {
            k: round(statistics.median(v), 3) for k, v in entry["parts"].items()
        }
