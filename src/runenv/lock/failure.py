"""uv's failure to lock, worded as one LockError the user can act on.

A pin (or range) of the variant that another package's range excludes is the one case an
override settles: the error names both sides and the override line(s) to add, in the syntax of
the variant's config file, after resolving again with them to say whether they suffice. A git
dependency uv could not fetch is one line naming it. Anything else says why no override is
proposed, then gives uv's explanation once. (`conflicts` reads uv's explanation.)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name

from runenv._shared.redact import redact
from runenv.config.project import VARIANT_NAMES, VERSIONS_DIR
from runenv.errors import LockError, SubprocessError
from runenv.lock import conflicts
from runenv.lock.request import LockRequest

# Rounds of "force this pin, resolve again" before the proposal is given as it stands: each
# round settles at least one more pin, and uv reports one conflict at a time.
_MAX_TRIALS = 5


Retry = Callable[[LockRequest], object]
"""Resolve a request as the lock would (SubprocessError when uv finds no solution)."""


def uv_failure(
    exc: SubprocessError,
    label: str,
    request: LockRequest,
    retry: Retry | None = None,
    variant_dir: Path | None = None,
) -> LockError:
    """uv's failure as one LockError.

    A pin (or range) of the variant that another package's range excludes gives one paragraph
    naming both sides and the override line(s) to add; with `retry`, the lock is resolved
    again with them, until it succeeds or needs more (uv shows one conflict at a time), and
    the paragraph says which. Any other failure says why no override is proposed, then gives
    uv's explanation once.
    """
    where = f" (full log: {exc.log_file})" if exc.log_file else ""
    if exc.timed_out or exc.returncode is None:  # timed out, or uv could not start
        return LockError(f"cannot lock {label}: uv {exc.problem}{where}")
    git = _git_failure([ln.strip() for ln in exc.output_tail.splitlines() if ln.strip()])
    if git is not None:  # one line naming the dependency, not git's 8-11
        return LockError(f"cannot lock {label}: {git}{where}")
    found = conflicts.conflicts(exc.output_tail, request.requirements)
    if not found:
        first, *body = _no_override(exc, request).split("\n")
        return LockError("\n".join([f"cannot lock {label}: {first}{where}", *body]))
    outcome = ""
    if retry is not None:
        found, outcome = _try_overrides(found, request, retry)
    sides = "; ".join(c.sentence() for c in found)
    forced = ", ".join(c.asked for c in found)
    ranges = "that range" if len(found) == 1 else "those ranges"
    return LockError(
        f"cannot lock {label}: {sides}. To force {forced} over {ranges} (a uv override "
        f"replaces every requirement on the package), {_override_advice(found, variant_dir)}"
        f"{outcome}{where}"
    )


def _try_overrides(
    found: list[conflicts.Conflict], request: LockRequest, retry: Retry
) -> tuple[list[conflicts.Conflict], str]:
    """Resolve again with the proposed overrides, adding the next conflicts uv reports;
    return every conflict to override and what the last resolution said."""
    found = list(found)
    for _ in range(_MAX_TRIALS):
        lines = tuple(c.override_line for c in found)
        tried = dataclasses.replace(request, overrides=(*request.overrides, *lines))
        try:
            retry(tried)
        except SubprocessError as again:
            if again.timed_out or again.returncode is None:
                return found, f"; runenv could not try it: uv {again.problem}"
            have = {canonicalize_name(c.name) for c in found}
            more = [
                c
                for c in conflicts.conflicts(again.output_tail, request.requirements)
                if canonicalize_name(c.name) not in have
            ]
            if not more:
                what = _explanation(again.output_tail)
                return found, f"; with {_them(found)} uv still finds no solution: {what}"
            found += more
        else:
            return found, f"; with {_them(found)} the lock succeeds (runenv resolved it)"
    return found, f"; with {_them(found)} uv still reports more conflicts"


def _them(found: list[conflicts.Conflict]) -> str:
    return "it" if len(found) == 1 else "them"


def _override_advice(found: list[conflicts.Conflict], variant_dir: Path | None) -> str:
    """Where and how to write the overrides, in the syntax of the variant's config file."""
    config = next(
        (variant_dir / n for n in VARIANT_NAMES if variant_dir and (variant_dir / n).is_file()),
        None,
    )
    shown = "the variant's config"
    if config is not None and variant_dir is not None:
        shown = (
            f"{VERSIONS_DIR}/{variant_dir.name}/{config.name}"
            if variant_dir.parent.name == VERSIONS_DIR
            else f"{variant_dir.name}/{config.name}"  # a reference checkout's python-<variant>/
        )
    if config is not None and config.suffix == ".json":
        entries = ", ".join(f'"{c.name}": "{c.override_value}"' for c in found)
        return f'add {entries} to "packages" -> "overrides" in {shown}'
    entries = "; ".join(f'{c.name} = "{c.override_value}"' for c in found)
    text = ""
    if config is not None:
        try:
            text = config.read_text(encoding="utf-8")
        except OSError:
            text = ""
    if re.search(r"(?m)^\s*overrides\s*=\s*\{", text):  # an inline table under [packages]
        return f"add {entries} to the overrides = {{ ... }} table of [packages] in {shown}"
    lines = "add" if len(found) == 1 else "add the lines"
    return f"{lines} {entries} under [packages.overrides] in {shown}"


def _no_override(exc: SubprocessError, request: LockRequest) -> str:
    """One paragraph: uv's explanation (once, on one line) and why no override is proposed."""
    lines = [ln.rstrip() for ln in exc.output_tail.splitlines() if ln.strip()]
    errors = [ln.strip()[6:].strip() for ln in lines if ln.lstrip().startswith("error:")]
    # The tail may have lost uv's `error:` line under a long build output (an sdist's).
    summary = errors[0] if errors else f"uv {exc.problem}; the end of its output"
    if not summary.startswith("No solution found"):
        body = [ln for ln in lines if not ln.lstrip().startswith("error:")]
        return summary + "".join(f"\n{ln}" for ln in body)
    between = conflicts.disagreement(exc.output_tail, request.requirements)
    if between is not None:
        return (
            f"uv found no solution: {between}, a package the variant does not pin. No single "
            "override can be proposed: pin versions of those two that agree, or force one "
            "version of it under packages.overrides if you know one that works with both"
        )
    return (
        f"uv found no solution: {_explanation(exc.output_tail)} No single override can be "
        "proposed: no requirement of the variant is excluded by another package's range"
    )


def _explanation(uv_output: str) -> str:
    """uv's `cause:` text on one line (the `error:` line is always "No solution found"):
    from its `cause:` line to the next `hint:` or `warning:`, else the last line."""
    lines = [ln.strip() for ln in uv_output.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("cause:")), None)
    if start is None:
        return lines[-1] if lines else ""
    cause = []
    for line in lines[start:]:
        if line.startswith(("hint:", "warning:", "error:")):
            break
        cause.append(line)
    return " ".join(cause).removeprefix("cause:").strip()


_GIT_DEP = re.compile(r"`(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) @ git\+(?P<url>[^`\s]+)`", re.ASCII)


def _git_failure(lines: list[str]) -> str | None:
    """One line for uv failing to fetch a git dependency (its output is 8-11 lines of causes
    and git's stderr): the dependency, its URL, and git's own last complaint."""
    found = next((m for line in lines if (m := _GIT_DEP.search(line))), None)
    if found is None or not any("Git operation failed" in line for line in lines):
        return None
    said = [
        line
        for line in lines
        if line.startswith(("fatal:", "error:", "ERROR:")) and not _GIT_DEP.search(line)
    ]
    causes = [line.removeprefix("cause:").strip() for line in lines if line.startswith("cause:")]
    why = (said or causes or ["git failed"])[-1]
    return (
        f"git dependency {found.group('name')} ({redact(found.group('url'))}) could not be "
        f"fetched: {why} (check its URL and revision in the config)"
    )
