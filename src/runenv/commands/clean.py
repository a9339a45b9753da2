"""`runenv clean`: remove what runenv made, and nothing else.

What runenv makes: `dist/runenv-<variant>-<platform>.*` (archives, manifests, logs, parts and
their temp files), `pydist/` (unpacked trees, lock files) and the cache (a folder that holds
runenv's CACHEDIR.TAG). A variant is named as everywhere else (`config.check_variant_name`), so a
name can never reach outside these folders; links are removed as links, never followed; and a
path to remove must lie strictly inside one of those folders, which are themselves never the
project, an ancestor of it, or a link.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from runenv._cache import CACHEDIR_TAG, TMP_PREFIX
from runenv.config.project import check_variant_name
from runenv.errors import UsageError
from runenv.platforms import Platform


def clean_outputs(
    dist: Path, pydist: Path, project: Path, variant: str | None = None
) -> list[Path]:
    """Remove build outputs (all, or one variant's); return what was removed."""
    if variant is not None:
        check_variant_name(variant)
    for folder in (dist, pydist):
        _refuse_unsafe_root(folder, project, "output folder")
    removed: list[Path] = []
    # `runenv-3.12.10-linux-x64.` must not match `runenv-3.12.10-atls-linux-x64.`: one variant's
    # outputs are named with each platform key in full.
    stems = (
        [f"{pre}runenv-{variant}-{p.value}." for p in Platform for pre in ("", TMP_PREFIX)]
        if variant
        else ["runenv-"]
    )
    if dist.is_dir():
        for path in sorted(dist.iterdir()):
            name = path.name
            if any(name.startswith(s) for s in stems) and (path.is_symlink() or path.is_file()):
                _remove(path, dist)
                removed.append(path)
    trees = [pydist / variant] if variant else [pydist]
    for tree in trees:
        if tree.exists() or tree.is_symlink():
            _remove(tree, pydist if variant else pydist.parent)
            removed.append(tree)
    if variant is None and dist.is_dir() and not any(dist.iterdir()):
        dist.rmdir()
    return removed


def clean_cache(root: Path, project: Path) -> Path | None:
    """Remove runenv's cache folder; None when there is none. Only a folder runenv tagged."""
    if not (root.exists() or root.is_symlink()):
        return None
    _refuse_unsafe_root(root, project, "cache folder")
    tag = root / CACHEDIR_TAG
    if not tag.is_file() or "runenv" not in tag.read_text(encoding="utf-8", errors="replace"):
        raise UsageError(
            f"cache folder {root} has no {CACHEDIR_TAG} written by runenv, so it may not be "
            "runenv's: not removed (remove it by hand if it is)"
        )
    shutil.rmtree(root)
    return root


def _refuse_unsafe_root(folder: Path, project: Path, what: str) -> None:
    """A folder clean may empty: not a link, not the project, its ancestors or the home dir."""
    if folder.is_symlink():
        raise UsageError(f"{what} {folder} is a link: runenv clean does not follow links")
    resolved = folder.resolve()
    protected = [project.resolve(), Path.home().resolve(), Path.cwd().resolve()]
    if any(p == resolved or p.is_relative_to(resolved) for p in protected):
        raise UsageError(
            f"{what} {folder} is the project, the home or current folder, or above one of them: "
            "not removed"
        )


def _remove(path: Path, inside: Path) -> None:
    """Remove `path` (a link as a link) after checking it lies strictly inside `inside`."""
    parent = path.parent.resolve()
    if not (parent == inside.resolve() or parent.is_relative_to(inside.resolve())):
        raise UsageError(f"{path} is not inside {inside}: not removed")
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
