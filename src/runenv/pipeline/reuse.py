"""Archive reuse: a finished build's archive kept in the cache by its build hash, copied instead
of packing and checking an identical tree again."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from runenv._cache import (
    evict,
    is_verified,
    mark_verified,
    recorded_sha256,
    staged_file,
)
from runenv.pipeline.context import BuildContext

Reporter = Callable[[str], None]


ARCHIVES_SECTION = "archives"
"""Cache section of finished archives, one per target, for `reuse_archive`."""


def _kept_archive(ctx: BuildContext, digest: str) -> Path:
    """Where the cache keeps the archive a build of `digest` made (one build per target)."""
    target = ctx.target.archive.name
    return ctx.cache.section(ARCHIVES_SECTION) / target / digest / target


def reuse_archive(ctx: BuildContext, digest: str, staged: Path) -> tuple[str, int] | None:
    """Pack, from the cache: when a build with this very build hash finished before (outputs
    since removed, as on a warm CI runner), copy its archive to `staged` instead of packing and
    checking an identical tree again; None when there is none, or it is not the bytes recorded
    when it was kept (`_cache.is_verified`: hashed again after any change or restore).

    The check is not run again: the hash covers every input of the tree, which the kept
    archive's build checked; the tree is still assembled (from verified images) for `pydist/`.
    Not with a sign command: the kept archive holds signed files the new tree does not.
    """
    if ctx.options.sign_command is not None:
        return None
    kept = _kept_archive(ctx, digest)
    recorded = recorded_sha256(kept)
    if recorded is None or not is_verified(kept, recorded):
        return None
    ctx.options.report(f"{ctx.name}: reusing the archive of an identical finished build")
    ctx.log.note(
        f"runenv: reused {kept} (sha256 {recorded}), the archive of a finished build with this "
        "build hash: not checked nor packed again\n"
    )
    shutil.copyfile(kept, staged)  # a copy: linking would change the kept file's ctime
    return recorded, staged.stat().st_size


def keep_archive(ctx: BuildContext, digest: str, sha256: str) -> None:
    """Keep a copy of the published archive in the cache, for `reuse_archive`; the archives of
    other build hashes of this target are dropped (one per target)."""
    if ctx.options.sign_command is not None:
        return
    kept = _kept_archive(ctx, digest)
    if recorded_sha256(kept) == sha256 and is_verified(kept, sha256):
        return
    folder = kept.parent.parent
    for other in folder.iterdir() if folder.is_dir() else []:
        if other.name != digest and not other.name.startswith("."):
            evict(other)
    kept.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(kept) as tmp:
        shutil.copyfile(ctx.target.archive, tmp)
    mark_verified(kept, sha256)
