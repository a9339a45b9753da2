"""The inflated stream of a gzip tar archive, in order, its members inflated on every core:
one thread reads the source's bytes in order, a member at a time (`_members`: each member's
header says its length, so one read gives its bytes as one buffer, never joined from pieces),
a pool of workers inflates them, and the caller takes their output in order
(`Pipeline.pieces`).

Consecutive small members go to a worker as one job of about `GROUP` bytes; a stream without
runenv's member field (an older catalogue's archive, another tool's gzip) is one job, inflated
by one thread. At most `2 * threads + 1` jobs are in flight, so memory stays bounded whatever
the archive's size.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from runenv_catalogue import _members
from runenv_catalogue._members import (
    END,
    FIRST_PIECE,
    HEAD,
    PIECE,
    WHOLE,
    WHOLE_LENGTH,
    Member,
    Stopped,
    member_info,
)

# Consecutive members of at most `WHOLE` are inflated as one job until they inflate to this
# much: most of a runtime's members are a wheel's file of 64 KiB to 1 MiB, and a job per
# member spent more time handing members between threads than inflating them.
GROUP = 4 << 20
# Inflating threads at most: one thread writes the tree, and beyond a few inflaters it is the
# bottleneck. With `2 * threads + 1` members in flight, each holding at most a `WHOLE` member
# (and its compressed bytes) or `QUEUED` pieces each way, memory stays under ~150 MB.
MAX_THREADS = 4
# Bytes per read where no member's length says how many: a stream without member fields, a
# large member's pieces.
READ = 1 << 20


class Source(Protocol):
    """What the pipeline reads: `read(n)` gives up to `n` bytes, b"" at the end (a file
    opened unbuffered; `_provision.Verified`, which raises a checksum's verdict there);
    `close` is called once the pipeline stops."""

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def read_exactly(read: Callable[[int], bytes], n: int) -> bytes:
    """`n` bytes from `read` (fewer only at the end), as one buffer: joined only where a read
    gave fewer (a part's end, a pipe)."""
    data = read(n)
    if len(data) == n or not data:
        return data
    pieces, got = [data], len(data)
    while got < n and (more := read(n - got)):
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


class Pipeline:
    """Members read in order by one thread, inflated by `threads` workers, handed to the
    caller in order (`pieces`)."""

    def __init__(self, source: Source, threads: int, shown: str) -> None:
        self.source = source
        self.shown = shown
        self.stop = threading.Event()
        self.drain = False  # on stop, read the source to its end anyway (its verdict)
        self.verdict: BaseException | None = None  # the source's own error, if any
        self.members: queue.Queue[Any] = queue.Queue()  # bounded by `slots`
        self.slots = threading.Semaphore(2 * threads + 1)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="runenv-inflate")
        self.reader = threading.Thread(target=self._read, name="runenv-read", daemon=True)
        self.reader.start()

    def _acquire(self) -> None:
        while not self.slots.acquire(timeout=_members.POLL):
            if self.stop.is_set():
                raise Stopped

    def _start(
        self,
        size: int | None,
        group: list[tuple[memoryview, int]] | None = None,
        piece: int = PIECE,
    ) -> Member:
        """A job for the inflating threads: one member (its bytes to come on its input, its
        output in pieces of at most `piece`), the rest of a stream without member fields
        (`size` None), or a `group` of whole members read already (`size` their inflated
        size)."""
        self._acquire()
        member = Member(size, self.shown, group, piece)
        self.pool.submit(member.inflate, self.stop)
        self.members.put(member)
        return member

    def _read(self) -> None:
        current: Member | None = None
        group: list[tuple[memoryview, int]] = []
        grouped = 0  # the group's inflated size
        first = True  # the first member: streamed in small pieces, whatever its size
        try:
            read = self.source.read
            head = read_exactly(read, HEAD.size)
            while head:
                info = member_info(head)
                if info is not None and not first and info[1] <= WHOLE and info[0] <= WHOLE_LENGTH:
                    # One read: this member's deflate data and trailer, then the next
                    # member's header. Its bytes are one buffer, never joined from pieces.
                    length, size = info
                    data = memoryview(read_exactly(read, length))
                    head = bytes(data[length - HEAD.size :])
                    group.append((data[: length - HEAD.size], size))
                    grouped += size
                    if grouped >= GROUP or not head:
                        self._start(grouped, group)
                        group, grouped = [], 0
                    continue
                if group:  # the members before this one
                    self._start(grouped, group)
                    group, grouped = [], 0
                # Streamed to its worker as it is read: the first member or a large one (the
                # rest of its length), or, without member fields, the rest of the source on
                # one thread.
                if info is None:
                    current, left = self._start(None), 1 << 62
                else:
                    piece = FIRST_PIECE if first else PIECE
                    current, left = self._start(info[1], piece=piece), info[0] - HEAD.size
                first = False
                _members.put(current.input, head, self.stop)
                while left > 0 and (chunk := read(min(READ, left))):
                    _members.put(current.input, chunk, self.stop)
                    left -= len(chunk)
                _members.put(current.input, None, self.stop)
                current = None
                if info is None:
                    break
                head = read_exactly(read, HEAD.size)
            self.members.put(None)
        except Stopped:
            if self.drain:
                try:
                    while read(READ):
                        pass
                except BaseException as exc:
                    self.verdict = exc
        except BaseException as exc:  # the source failed: its error comes in order
            self.verdict = exc
            if current is not None:  # its worker raises it, unless everything is stopping
                with contextlib.suppress(Stopped):
                    _members.put(current.input, exc, self.stop)
            self.members.put(exc)

    def pieces(self) -> Iterator[bytes]:
        """The inflated stream, in order."""
        for member in _members.ordered(self.members, self.stop, None):
            for item in _members.ordered(member.output, self.stop, END):
                if isinstance(item, list):  # a group's members
                    yield from item
                else:
                    yield item
            self.slots.release()

    def close(self, *, drain: bool) -> BaseException | None:
        """Stop every thread (after the source is read to its end, if `drain`) and close
        the source; the source's own error, if it failed."""
        self.drain = drain
        self.stop.set()
        self.reader.join()
        self.pool.shutdown(wait=True)
        # A source stopped midway (a failure here, not drained) still holds its file or
        # connection: closed now, not whenever the traceback that keeps it alive is dropped.
        self.source.close()
        return self.verdict
