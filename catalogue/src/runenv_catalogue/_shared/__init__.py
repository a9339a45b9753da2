"""The rules runenv and the catalogue package must apply alike, written once, here.

Standard library only, and imported only relatively among themselves: the catalogue imports
them as `runenv_catalogue._shared`, runenv as `runenv._shared` (its wheel carries this folder
there, see pyproject.toml; a checkout links `src/runenv/_shared` to it). Each side maps their
errors to its own where it calls them.
"""

from pathlib import Path

IMPORT_CHECK = Path(__file__).with_name("import_check.py")
"""The import check's script, run by a runtime's interpreter: `python -I -B IMPORT_CHECK ...`."""
