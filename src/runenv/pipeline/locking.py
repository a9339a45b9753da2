"""The lock stage's policy: when a platform's lock is stale, and re-locking it under its file
lock (also for `runenv lock`, the wheels job and `runenv requirements`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runenv._cache import (
    Cache,
    lock_for,
)
from runenv.config.load import VariantConfig
from runenv.config.plan import Plan
from runenv.errors import LockError
from runenv.lock import resolve
from runenv.lock.request import LockRequest
from runenv.pipeline.context import BuildOptions, lock_dir

Reporter = Callable[[str], None]


def lock_request(plan: Plan, options: BuildOptions) -> LockRequest:
    """Everything that decides the platform's lock (its freshness is a hash of this)."""
    return LockRequest(
        requirements=plan.requirements,
        overrides=plan.overrides,
        no_deps=tuple(sorted(plan.no_deps)),
        python_version=plan.python_version,
        platform=plan.platform,
        glibc=plan.glibc,
        macos=plan.macos,
        indexes=plan.registries,
        default_index=options.default_index,
        skipped=tuple(plan.skipped),
        drop_missing=plan.policy is not None and not plan.policy.strict_missing,
    )


def stale_lock(vc: VariantConfig, plan: Plan, options: BuildOptions) -> str | None:
    """Lock: why the platform's lock must be redone, or None when it is fresh.

    LockError when it is stale and `--locked` forbids re-locking.
    """
    path = resolve.lock_path(vc.folder, plan.platform)
    if resolve.is_fresh(path, lock_request(plan, options)):
        return None
    why = "its inputs changed" if path.exists() else "there is none yet"
    if options.locked:
        shown = path.relative_to(vc.project) if path.is_relative_to(vc.project) else path
        raise LockError(
            f"{shown}: {why} and --locked forbids re-locking: "
            f"run `runenv lock {vc.variant} --platform {plan.platform.value}`"
        )
    return why


def relock(
    vc: VariantConfig,
    plan: Plan,
    options: BuildOptions,
    cache: Cache,
    why: str,
    *,
    log_file: Path | None = None,
    force: bool = False,
) -> None:
    """Lock: resolve the platform's lock again, unless a concurrent run did while we waited."""
    path = resolve.lock_path(vc.folder, plan.platform)
    request = lock_request(plan, options)
    options.report(f"{plan.variant} {plan.platform.value}: locking ({why})")
    with lock_for(path, in_dir=lock_dir(options, plan)):
        if force or not resolve.is_fresh(path, request):
            locked = resolve.lock(
                request,
                path,
                cache=cache,
                timeout=plan.timeout,
                log_file=log_file,
                offline=options.offline,
            )
            for name, why in locked.missing.items():  # the missing-package policy's doing
                options.report(
                    f"warning: {plan.variant} {plan.platform.value}: {name} left out: {why}"
                )


def ensure_lock(
    vc: VariantConfig, plan: Plan, options: BuildOptions, cache: Cache, *, force: bool = False
) -> tuple[Path, bool]:
    """The platform's lock, re-locked when stale or `force`d (`runenv lock`); and whether it was."""
    why = "forced" if force else stale_lock(vc, plan, options)
    if why is not None:
        relock(vc, plan, options, cache, why, force=force)
    return resolve.lock_path(vc.folder, plan.platform), why is not None
