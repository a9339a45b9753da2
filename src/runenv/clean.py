"""`runenv clean`: remove the build outputs runenv made in `dist/` and `pydist/`."""

from __future__ import annotations

import shutil
from pathlib import Path

from runenv.build import BuildOptions
from runenv.platforms import Platform


def clean(options: BuildOptions, variant: str | None = None) -> list[Path]:
    """Remove build outputs (all, or one variant's); return what was removed."""
    removed: list[Path] = []
    patterns = [f"runenv-{variant}-{p.value}.*" for p in Platform] if variant else ["runenv-*"]
    for pattern in patterns:
        for path in sorted(options.dist.glob(pattern)) if options.dist.is_dir() else []:
            path.unlink()
            removed.append(path)
    trees = [options.pydist / variant] if variant else [options.pydist]
    for tree in trees:
        if tree.exists():
            shutil.rmtree(tree)
            removed.append(tree)
    if variant is None and options.dist.is_dir() and not any(options.dist.iterdir()):
        options.dist.rmdir()
    return removed
