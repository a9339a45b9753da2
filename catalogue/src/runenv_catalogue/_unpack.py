"""Unpack a gzip tar stream into a new folder: its gzip members inflated on every core, its
entries read and checked in order by one thread, its files written by several.

The stages, a module each: `_members` finds runenv's gzip members from their header's extra
field (`RE`, written by `runenv.artifact.pack`) and inflates one job of them on a worker thread
(zlib releases the GIL); `_pipeline` reads the source in order (the caller hashes it, in
`_provision`), hands the members to the workers and yields their output in order; `_ustar`
reads the entries from that stream; `_tree` checks each entry (`Planner`, the rules runenv's
extraction applies too), makes its folders and links and hands its files in batches to writing
threads (`_files`): views of the inflated pieces, no copy. A path written a second time and a
hard link first wait for every file handed out before them, so the tree is the one writing the
entries one by one in order gives (what `tar xzf` gives). A stream without the field (an older
catalogue's archive, another tool's gzip) is inflated by one thread, as one stream of members.

Memory stays bounded whatever the archive's size: at most `2 * threads + 1` jobs are in
flight, each with a few MiB of input and output queued (a member of any size is inflated in
pieces), and at most `2 * writers` batches of files are out with the writing threads (each
at most about 1 MiB of files and one file of at most 8 MiB), or `writers` pieces of a larger
file (each at most 4 MiB, a member's worth), which they write at their offsets (`os.pwrite`;
on Windows, which lacks it, the reading thread writes such a file as its pieces come). Files
are created new (`O_EXCL`, never through a symlink), and every symlink made is resolved at
the end: nothing lands outside the folder.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from runenv_catalogue import _pipeline, _tree, _ustar
from runenv_catalogue._errors import CatalogueError

# Writing threads at least: creating a file is mostly the kernel's work (and, on a busy disk,
# waiting), which threads overlap even on one core. Four against two, on 2 cores at load 5-7,
# installing the reference workload: wall 0.91x (median of 8 pairs), CPU time the same (0.98x);
# with two, the reading thread spent 1.2-3 s of a 3-4 s install waiting for them to take a batch.
# On an idle machine 2, 3, 4 and 6 gave the same wall time (medians 1.76-1.86 s, 8 rounds
# each). The writing threads bound the install there: the reading thread waits for them 1.0-1.2 s
# of a 1.7 s unpack, and 93% of their CPU is the kernel's (file creation, the page-cache copy).
WRITERS = 4


def unpack(source: _pipeline.Source, dest: Path, shown: str, *, threads: int | None = None) -> None:
    """Unpack the gzip tar stream `source` into the new folder `dest`, refusing anything that
    would escape it, and close `source`. An error the source raises (a checksum, a download)
    wins over the error its bytes caused here: on such an error the source is read to its end
    first, so a corrupt archive is reported as not the catalogue's rather than as bad gzip.
    """
    workers = threads or min(os.cpu_count() or 1, _pipeline.MAX_THREADS)
    dest.mkdir()
    pipeline = _pipeline.Pipeline(source, workers, shown)
    tree = _tree.Tree(os.fspath(dest), shown, max(workers, WRITERS))
    try:
        try:
            tree.write(_ustar.Stream(pipeline.pieces(), tree.hand_out))
        finally:
            tree.close()
    except (CatalogueError, tarfile.TarError, EOFError) as exc:
        verdict = pipeline.close(drain=True)
        if verdict is not None and verdict is not exc:
            raise verdict from None
        if isinstance(exc, CatalogueError):
            raise
        raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
    except BaseException:
        pipeline.close(drain=False)
        raise
    pipeline.close(drain=False)


def safe_extract(archive: Path, dest: Path, shown: str) -> None:
    """Unpack the gzip tar file `archive` into the new folder `dest` (`unpack`)."""
    try:
        with archive.open("rb", buffering=0) as f:
            unpack(f, dest, shown)
    except OSError as exc:
        raise CatalogueError(f"{shown}: cannot unpack: {exc}") from None
