"""Lock one platform's dependencies with uv into `versions/<variant>/pylock.<platform>.toml`.

uv resolves for a foreign platform with markers evaluated for that platform (pip's `--platform`
does not), and writes PEP 751 locks with a sha256 for every file. runenv adds a
`[tool.runenv]` table holding the hash of everything that decided the lock, so a build can tell
a lock that still matches its configuration from a stale one without resolving again.

Index choice: the variant's additional registries are passed as `--index` and the default
registry as `--default-index`, with uv's `first-index` strategy. uv gives `--index` entries
priority over the default, so a package an additional registry serves (e.g. `cudf-cu12` on
pypi.nvidia.com) comes only from that registry, and a same-named upload to PyPI can never win
(dependency confusion); packages it does not serve come from the default. This differs from
pip's `--extra-index-url`, which takes the best version across all registries
(`unsafe-best-match`); that mode is never used here, so a registry that serves a package only
partially fails the lock with uv's explanation instead of silently mixing sources.

The parts: the request and its hash (`request`), uv's invocation (`compile`), its failure
worded (`failure`), the missing-package policy (`missing`), the lock file read (`pylock`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from packaging.utils import canonicalize_name

from runenv._cache import Cache, staged_file
from runenv.config.project import REFERENCE_PREFIX
from runenv.errors import LockError, SubprocessError, UsageError
from runenv.lock.compile import UvCompile, dotted, named_git, no_deps_git
from runenv.lock.failure import uv_failure
from runenv.lock.missing import Unavailable, check_failure, check_skipped, skipped_present
from runenv.lock.pylock import TOOL_TABLE, Lock, parse_lock, read_lock
from runenv.lock.request import LOCK_FORMAT_VERSION, LockRequest, normal, requirement_name
from runenv.platforms import Platform


def lock_path(variant_dir: Path, platform: Platform) -> Path:
    """Where a variant's lock for `platform` lives."""
    return variant_dir / f"pylock.{platform}.toml"


def is_fresh(path: Path, request: LockRequest) -> bool:
    """True when `path` is a valid lock that runenv wrote for exactly this request."""
    try:
        existing = read_lock(path)
    except (LockError, UsageError):
        return False
    return existing.inputs_hash == request.inputs_hash()


def lock(
    request: LockRequest,
    path: Path,
    *,
    cache: Cache,
    timeout: float,
    log_file: Path | None = None,
    offline: bool = False,
) -> Lock:
    """Resolve `request` with uv and write the lock to `path` atomically; return it.

    Raises LockError when uv cannot resolve (with uv's explanation), when a file lacks a
    sha256, or when a skipped package is still required by another one.
    """
    for req in (*request.requirements, *request.constraints, *request.overrides):
        normal(req)
    # the variant's name: its folder's, less a reference checkout's `python-` prefix
    variant = path.parent.name.removeprefix(REFERENCE_PREFIX)
    label = f"{variant} for {request.platform} (Python {request.python_version})"
    uv = UvCompile(label, cache, timeout, log_file, offline)
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="runenv-lock-") as tmp_name:
        current = request
        while True:  # each round leaves out at least one more requirement, so it ends
            try:
                text = _resolve(current, Path(tmp_name), path, uv)
                break
            except Unavailable as gone:
                missing.update(gone.reasons)
                kept = (r for r in request.requirements if requirement_name(r) not in missing)
                current = dataclasses.replace(request, requirements=tuple(kept))
    table = {"tool": {TOOL_TABLE: _tool_table(request, missing)}}
    final = text.rstrip("\n") + "\n\n" + tomli_w.dumps(table)
    with staged_file(path) as staged:
        staged.write_text(final, encoding="utf-8")
    return parse_lock(final, path)


def _resolve(request: LockRequest, tmp: Path, path: Path, uv: UvCompile) -> str:
    """The pylock text uv writes for `request`; LockError when it cannot, `Unavailable`
    when `request.drop_missing` and requirements cannot be installed on the platform."""
    reqs = tmp / "requirements.in"
    reqs.write_text("".join(r + "\n" for r in request.requirements), encoding="utf-8")
    try:
        text = uv.resolve(request, reqs, tmp)
    except SubprocessError as exc:
        check_failure(exc, request)

        def retry(tried: LockRequest) -> str:  # the lock again, with proposed overrides
            (tmp / "trial").mkdir(exist_ok=True)
            return uv.resolve(tried, reqs, tmp / "trial")

        raise uv_failure(exc, uv.label, request, retry, path.parent) from None
    parsed = parse_lock(text, path)
    no_deps = {canonicalize_name(n) for n in request.no_deps}
    git_pkgs = no_deps_git(request.requirements, parsed, no_deps)
    versions = {str(canonicalize_name(p.name)): p.version for p in git_pkgs}
    try:
        if git_pkgs:  # noDeps of a git package: uv needs its name and version (`compile`)
            named = (named_git(r, git_pkgs) + "\n" for r in request.requirements)
            reqs.write_text("".join(named), "utf-8")
            text = uv.resolve(request, reqs, tmp, versions)
            parsed = parse_lock(text, path)
        present = skipped_present(request, parsed)
        if present:  # who requires them: uv's `# via` notes of the same resolution
            annotated = uv.resolve(request, reqs, tmp, versions, annotated=True)
            check_skipped(request, parsed, present, annotated, uv.label)
    except SubprocessError as exc:
        raise uv_failure(exc, uv.label, request) from None
    return text


def _tool_table(request: LockRequest, missing: dict[str, str]) -> dict[str, Any]:
    """The lock's `[tool.runenv]`: the request's inputs-hash and what the lock was made for."""
    meta: dict[str, Any] = {
        "inputs-hash": request.inputs_hash(),
        "platform": str(request.platform),
        "python-version": request.python_version,
        "lock-format": LOCK_FORMAT_VERSION,
    }
    if request.floor:
        meta["glibc" if request.platform.info.os == "linux" else "macos"] = dotted(request.floor)
    if request.overrides:  # the lock says which versions were forced over declared ranges
        meta["overrides"] = list(request.overrides)
    if request.no_deps:
        meta["no-deps"] = sorted({canonicalize_name(n) for n in request.no_deps})
    if missing:  # left out under the missing-package policy (`drop_missing`)
        meta["missing"] = dict(sorted(missing.items()))
    return meta
