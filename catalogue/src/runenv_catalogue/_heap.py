"""The C heap of the CLI's own process, tuned for an unpack: glibc's malloc keeps the memory
the inflated buffers free, for the next ones, instead of handing it back to the kernel.

An unpack allocates and frees a few hundred MB of buffers, a few MiB each: a group of members'
inflated bytes, a member's compressed bytes. glibc serves buffers over its mmap threshold
(128 KiB, raised as large buffers are freed) with a fresh mapping and gives the top of a heap
back once more than its trim threshold is free there, so the next buffer faults its pages in
again (on a VM, most likely on the host too). Fixed thresholds keep them. Installing the
reference workload (3.12.10, 9,882 entries, 336 MB), 12 shuffled rounds after a dropped page
cache, the thresholds set through glibc's MALLOC_* variables: page faults 39,000 -> 16,000,
CPU 2.16 -> 2.01 s, wall 1.27 -> 1.19 s (the benchmark's runs: docs/benchmarks.md). uv, for
its own speed, brings its own allocator (astral-sh/uv, crates/uv-performance-memory-allocator).

Only the CLI does this (`__main__`): a library call must not change its host process's
allocator for good. Off glibc (macOS, Windows, musl, a Python without ctypes) nothing happens.
"""

from __future__ import annotations

import sys
from typing import Any

# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Buffers up to this come from the heap: glibc's most (HEAP_MAX_SIZE / 2 on 64-bit), above
# the unpack's largest (a member inflated whole, 8 MiB; its compressed bytes, at most 9 MiB).
MMAP_THRESHOLD = 32 << 20
# Free memory a heap keeps at its top: more than an unpack ever holds (about 150 MB, `_unpack`).
TRIM_THRESHOLD = 1 << 30


def _glibc() -> Any | None:
    """This process's C library, if it is glibc (it has `gnu_get_libc_version`)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # loaded here only: 3 ms, which only an unpack by the CLI pays

        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc's own: musl's mallopt does nothing)
    except (ImportError, OSError, AttributeError):
        return None
    return libc


def keep_freed() -> bool:
    """Keep freed memory in the process from now on; whether glibc took it."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def release() -> None:
    """Hand the free memory back to the kernel (`malloc_trim`): for a process that lives on
    after its unpack (`run` waits for the runtime it started)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
