"""runenv's gzip members: found from their header's extra field without inflating anything,
and inflated, one job (a member, a run of small members, or a stream without the field) at a
time, by a worker thread (zlib releases the GIL).

Every member runenv packs (`runenv.artifact.pack.member_header`) says in an extra field, `RE`,
its own length and the size it inflates to. Each member's CRC-32 and size are checked (by
zlib for a member inflated in pieces, here for one inflated whole), and a member inflated in
pieces must end exactly where its header says. The queues between the threads are polled
against a stop flag (`put`, `get`, `ordered`), so an error anywhere stops every thread.
"""

from __future__ import annotations

import contextlib
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from runenv_catalogue._errors import CatalogueError

# The extra field in every member's header (runenv.artifact.pack.member_header):
# XLEN, subfield id `RE`, its length 16, the member's length and its inflated size.
MEMBER_FIELD = b"RE"
HEAD = struct.Struct("<4s6xH2sHQQ")  # magic+method+flags, ..., XLEN, id, LEN, length, size
TRAILER = struct.Struct("<II")  # a member's CRC-32 and inflated size (mod 2**32)
PIECE = 4 << 20  # the most a worker inflates in one call: the unit the writer is handed
# The archive's first member is inflated in pieces this small: the tree's first entries wait
# for it, and a 4 MiB member took 30-45 ms of one core while the other idled.
FIRST_PIECE = 256 << 10
WHOLE = 8 << 20  # a member that inflates to at most this is inflated in one call
# The most such a member's own length may be: deflate's stored blocks add 5 bytes per 64 KiB.
# A header that says more is read as a large member's, in pieces (memory stays bounded).
WHOLE_LENGTH = WHOLE + (1 << 20)
QUEUED = 4  # pieces queued per member, each way
POLL = 0.2  # seconds between looks at the stop flag while blocked on a queue
END = object()  # a job's output ends


class Stopped(Exception):
    """The pipeline was stopped (an error elsewhere): this thread gives up."""


def member_info(head: bytes) -> tuple[int, int] | None:
    """(length, inflated size) from the start of a gzip member carrying runenv's extra field,
    or None when it does not (or `head` is too short to tell)."""
    if len(head) < HEAD.size:
        return None
    magic, xlen, field, flen, length, size = HEAD.unpack_from(head)
    if magic != b"\x1f\x8b\x08\x04" or xlen != 20 or field != MEMBER_FIELD or flen != 16:
        return None
    return (length, size) if length >= HEAD.size + 10 else None


def put(q: queue.Queue[Any], item: object, stop: threading.Event) -> None:
    """Put `item` on `q`, waiting while it is full; `Stopped` once `stop` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            q.put(item, timeout=POLL)
            return
        except queue.Full:
            continue


def get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    """The next item of `q`, waiting while it is empty; `Stopped` once `stop` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return q.get(timeout=POLL)
        except queue.Empty:
            continue


def ordered(q: queue.Queue[Any], stop: threading.Event, end: object) -> Iterator[Any]:
    """The items of `q` until `end`; an exception put on it (an error upstream, in its
    place in the order) is raised."""
    while (item := get(q, stop)) is not end:
        if isinstance(item, BaseException):
            raise item
        yield item


class Member:
    """One member (or, `size` None, the rest of a stream of members) on its way through a
    worker: compressed pieces in, inflated pieces out."""

    def __init__(
        self,
        size: int | None,
        shown: str,
        group: list[tuple[memoryview, int]] | None = None,
        piece: int = PIECE,
    ) -> None:
        self.size = size
        self.shown = shown
        self.group = group  # whole members read already: (deflate data and trailer, size) each
        self.piece = piece  # the most inflated in one call
        self.input: queue.Queue[Any] = queue.Queue(QUEUED)
        self.output: queue.Queue[Any] = queue.Queue(QUEUED)

    def inflate(self, stop: threading.Event) -> None:
        """The worker's part: inflate the pieces, check the member's CRC-32 and size (zlib
        does, in gzip mode) and, for a sized member, that it ends exactly where it said."""
        try:
            self._inflate(stop)
            put(self.output, END, stop)
        except Stopped:
            pass
        except BaseException as exc:  # the writer re-raises it, in order
            if isinstance(exc, zlib.error):
                exc = CatalogueError(f"{self.shown}: cannot unpack: corrupt gzip data ({exc})")
            with contextlib.suppress(Stopped):
                put(self.output, exc, stop)

    def _inflate(self, stop: threading.Event) -> None:
        if self.group is not None:
            # One output item for the whole group: its members' outputs, in order.
            put(self.output, [self._whole(data, size) for data, size in self.group], stop)
            return
        d = zlib.decompressobj(31)
        out = 0
        ended = False  # the current member's trailer is read (and checked)
        while True:
            item = get(self.input, stop)
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            data = item
            while True:
                if ended:
                    if self.size is not None:  # one member, exactly
                        if data:
                            raise self._bad("is longer than its header says")
                        break
                    data = bytes(data).lstrip(b"\0")  # zero padding after a member, as gzip
                    if not data:
                        break
                    d, ended = zlib.decompressobj(31), False
                piece = d.decompress(data, self.piece)
                data = d.unconsumed_tail
                if piece:
                    out += len(piece)
                    if self.size is not None and out > self.size:
                        raise self._bad("inflates to more than its header says")
                    put(self.output, piece, stop)
                if d.eof:
                    ended, data = True, d.unused_data
                elif not data and len(piece) < self.piece:  # all in, nothing held back
                    break
        if not ended:
            raise self._bad("is cut short")
        if self.size is not None and out != self.size:
            raise self._bad("inflates to less than its header says")

    def _whole(self, body: memoryview, size: int) -> bytes:
        """A whole member, its header read already: its deflate data inflated in one call
        into one buffer of its size (no growing and joining of output blocks, as a stream of
        calls has), checked against its trailer's CRC-32 and size, as gzip checks them."""
        try:
            out = zlib.decompress(body[: -TRAILER.size], -15, max(size, 1))
        except zlib.error as exc:
            if "incomplete" in str(exc) or "truncated" in str(exc):
                raise self._bad("is cut short") from None
            raise
        if len(out) != size:
            raise self._bad("inflates to other than its header says")
        if len(body) < TRAILER.size or TRAILER.unpack(body[-TRAILER.size :]) != (
            zlib.crc32(out),
            size & 0xFFFFFFFF,
        ):
            raise self._bad("does not match its CRC-32 and size")
        return out

    def _bad(self, what: str) -> CatalogueError:
        return CatalogueError(f"{self.shown}: cannot unpack: a gzip member {what}")
