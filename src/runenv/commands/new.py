"""`runenv new`: a variant is a folder with a config file; nothing else needs editing."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from runenv._cache import staged_file
from runenv.config.load import load_variant, variant_python_version
from runenv.config.project import VERSIONS_DIR, check_variant_name, list_variants
from runenv.config.schema import Config as _Config
from runenv.errors import UsageError

_TEMPLATE = """\
# Variant {variant}: merged over shared-config.toml{parent_note}.
# See README.md for every key. Examples:
#
# platforms = ["linux-x64", "macosx-aarch64"]   # default: all five
#
# [packages]
# dependencies = ["numpy==2.2.6"]                # replaces the shared list
# overrides = {{ numpy = "2.1.3" }}
#
# [packages.skip.cudf-cu12]
# macosx-aarch64 = "CUDA packages not supported on macOS"
{body}"""


def new_variant(project: Path, variant: str, parent: str | None = None) -> Path:
    """Create `versions/<variant>/config.toml`; refuse a name that exists or cannot work."""
    folder = project / VERSIONS_DIR / check_variant_name(variant)
    if folder.exists() or folder.is_symlink():
        raise UsageError(f"{VERSIONS_DIR}/{variant} already exists")
    body: dict[str, object] = {}
    if parent is not None:
        if parent not in list_variants(project):
            raise UsageError(f"--from {parent}: no such variant under {VERSIONS_DIR}/")
        load_variant(project, parent)  # the parent must itself be valid
        body["extends"] = parent
    if variant_python_version(variant, _Config()) is None:
        raise UsageError(
            f"{variant!r} does not start with a Python version X.Y.Z (e.g. 3.13.0-{variant})"
        )
    text = _TEMPLATE.format(
        variant=variant,
        parent_note=f" and variant {parent}" if parent else "",
        body="\n" + tomli_w.dumps(body) if body else "",
    )
    folder.mkdir(parents=True)
    target = folder / "config.toml"
    with staged_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
