"""The missing-package policy of a lock: what a skipped package, or one uv finds no file of,
does to the variant's requirements.

A package skipped on a platform must not stay in the resolution: the lock fails naming who
still requires it. Under `packages.resolution` without strictMissing (`drop_missing`), the
variant's requirements that cannot be installed on the platform (no file of them or of a
dependency, or they need a skipped package) are left out instead, each with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from packaging.utils import canonicalize_name

from runenv.errors import LockError, SubprocessError
from runenv.lock import conflicts
from runenv.lock.pylock import Lock, LockedPackage
from runenv.lock.request import LockRequest, requirement_name


class Unavailable(Exception):
    """Requirements to leave out under the missing-package policy: name -> why."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def check_failure(exc: SubprocessError, request: LockRequest) -> None:
    """`Unavailable` when `request.drop_missing` and uv failed only for requirements that
    cannot be installed on the platform (a conflict an override settles is not that)."""
    if request.drop_missing and exc.returncode is not None and not exc.timed_out:
        found = conflicts.conflicts(exc.output_tail, request.requirements)
        gone = conflicts.unavailable(exc.output_tail, request.requirements)
        if gone and not found:
            raise Unavailable(gone)


def skipped_present(request: LockRequest, parsed: Lock) -> list[LockedPackage]:
    """The packages skipped on the request's platform that the resolution still holds."""
    skipped = {canonicalize_name(s) for s in request.skipped}
    return [p for p in parsed.packages if canonicalize_name(p.name) in skipped]


_VIA = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==\S+\s+#\s*via\s+(?P<via>.+)",
    re.ASCII,
)


def check_skipped(
    request: LockRequest, parsed: Lock, present: list[LockedPackage], annotated: str, label: str
) -> None:
    """LockError naming each skipped package `present` in the resolution, and its users (from
    uv's `annotated` requirements.txt); `Unavailable` for those users under `drop_missing`."""
    users: dict[str, list[str]] = {}
    for line in annotated.splitlines():
        match = _VIA.fullmatch(line.strip())
        if match:
            via = [v.strip() for v in match.group("via").split(",")]
            users[canonicalize_name(match.group("name"))] = via
    if request.drop_missing:
        gone = _skipped_users(present, users, request)
        if gone:
            raise Unavailable(gone)
    versions = {canonicalize_name(p.name): p.version for p in parsed.packages}
    problems = []
    for pkg in present:
        names = []
        for user in users.get(canonicalize_name(pkg.name), []):
            if user.startswith(("-r ", "-c ")):
                names.append("the variant's dependencies")
            elif user:
                version = versions.get(canonicalize_name(user))
                names.append(f"{user}=={version}" if version else user)
        by = ", ".join(names) or "another locked package"
        problems.append(f"{pkg.name} is skipped on {request.platform} but required by {by}")
    raise LockError(
        f"cannot lock {label}: "
        + "; ".join(problems)
        + " (remove the skip, or skip what requires it too)"
    )


def _skipped_users(
    present: list[LockedPackage], users: Mapping[str, list[str]], request: LockRequest
) -> dict[str, str]:
    """The variant's requirements that bring in a skipped package (at any depth of uv's
    `# via` notes), each with why it cannot be installed on the platform."""
    direct = {requirement_name(r) for r in request.requirements}
    out: dict[str, str] = {}
    for pkg in present:
        name = canonicalize_name(pkg.name)
        seen, todo = {name}, [name]
        while todo:
            for user in users.get(todo.pop(), []):
                if user.startswith(("-r ", "-c ")) or not user:
                    continue
                key = canonicalize_name(user)
                if key in direct:
                    why = f"needs {pkg.name}, which is skipped on {request.platform}"
                    out.setdefault(key, why)
                elif key not in seen:
                    seen.add(key)
                    todo.append(key)
    return out
