"""A loopback HTTP server for tests: serves files, misbehaves on demand, counts requests.

    with LoopbackServer(root=tmp_path) as server:        # or LoopbackServer() + add_file()
        server.script("/a.tar.gz", status(500), drop_after(1000))  # next two requests misbehave
        url = server.url_for("a.tar.gz")
        ...
        assert server.requests_for("/a.tar.gz") == 3

It listens on 127.0.0.1 (port 0), speaks HTTP/1.1 with keep-alive, answers GET and HEAD,
honours `Range: bytes=` (advertising `Accept-Ranges: bytes`) unless ranges are turned off for
the server or a path, serves `index.html` for a directory, and can require basic auth. It stops
when the `with` block ends, or by itself after `lifetime` seconds, whichever comes first.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "Fault",
    "LoopbackServer",
    "RequestRecord",
    "dribble",
    "drop_after",
    "redirect",
    "slow",
    "stall",
    "status",
    "wrong_bytes",
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, applied to one request (see the factory functions below)."""

    kind: str
    status: int = 200
    nbytes: int = 0
    seconds: float = 0.0
    data: bytes | None = None
    location: str = ""
    announce_length: bool = True


def status(code: int, body: bytes = b"") -> Fault:
    """Answer with HTTP `code` (e.g. 500, 503, 404) and `body`."""
    return Fault("status", status=code, data=body)


def drop_after(nbytes: int, *, announce_length: bool = True) -> Fault:
    """Send only `nbytes` of the body, then close the connection.

    The headers announce the full length, or with `announce_length=False` no length at all
    (`Connection: close`), so that the client cannot tell the body was cut short.
    """
    return Fault("drop", nbytes=nbytes, announce_length=announce_length)


def stall(seconds: float, after: int | None = None) -> Fault:
    """Say nothing for `seconds` (`after=None`), or send headers and `after` body bytes first.

    The connection is closed once the stall ends. A stall ends early when the server stops.
    """
    return Fault("stall", seconds=seconds, nbytes=-1 if after is None else after)


def wrong_bytes(data: bytes | None = None) -> Fault:
    """Serve `data` instead of the file (default: the file with its bytes flipped)."""
    return Fault("wrong", data=data)


def redirect(location: str, code: int = 302) -> Fault:
    """Redirect to `location` (a path on this server or a full URL)."""
    return Fault("redirect", status=code, location=location)


def slow(seconds: float) -> Fault:
    """Wait `seconds` before answering normally (to make concurrent clients overlap)."""
    return Fault("slow", seconds=seconds)


def dribble(interval: float, nbytes: int = 1) -> Fault:
    """Send the body `nbytes` at a time, one piece every `interval` seconds."""
    return Fault("dribble", seconds=interval, nbytes=nbytes)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str  # unquoted, without the query
    headers: dict[str, str]
    fault: str | None  # the kind of the fault applied, if any
    at: float = 0.0  # time.monotonic() when it arrived

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class _State:
    files: dict[str, bytes] = field(default_factory=dict)
    scripts: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    ranges: dict[str, bool] = field(default_factory=dict)
    log: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _norm(path: str) -> str:
    """The key a path is counted under: unquoted, query dropped, one leading slash."""
    return "/" + unquote(urlsplit(path).path).lstrip("/")


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class LoopbackServer:
    """An HTTP server on 127.0.0.1 serving `root` and in-memory files, with scripted faults."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        ranges: bool = True,
        auth: tuple[str, str] | None = None,
        lifetime: float = 300.0,
    ) -> None:
        self.root = root.resolve() if root is not None else None
        self.default_ranges = ranges
        self.auth = auth
        self.lifetime = lifetime
        self._state = _State()
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        host, port = self._httpd.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); stalled responses end at once."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- content and scripting --------------------------------------------------------------

    def url_for(self, path: str, *, userinfo: str | None = None) -> str:
        """The URL of `path` (quoted as needed), optionally with `user:password@` in it."""
        quoted = quote("/" + path.lstrip("/"))
        host = f"{userinfo}@{self.host}" if userinfo else self.host
        return f"http://{host}:{self.port}{quoted}"

    def add_file(self, path: str, data: bytes) -> str:
        """Serve `data` at `path` (takes precedence over `root`); returns its URL."""
        with self._state.lock:
            self._state.files[_norm(path)] = data
        return self.url_for(path)

    def script(self, path: str, *faults: Fault) -> None:
        """Queue faults for `path`: each of the next requests gets the next fault."""
        with self._state.lock:
            self._state.scripts.setdefault(_norm(path), []).extend(faults)

    def always(self, path: str, fault: Fault | None) -> None:
        """Apply `fault` to every request for `path` (after the queued ones); None clears."""
        with self._state.lock:
            if fault is None:
                self._state.always.pop(_norm(path), None)
            else:
                self._state.always[_norm(path)] = fault

    def set_ranges(self, path: str, enabled: bool) -> None:
        """Turn Range support (and the `Accept-Ranges` header) on or off for one path."""
        with self._state.lock:
            self._state.ranges[_norm(path)] = enabled

    # -- inspection -------------------------------------------------------------------------

    def requests_for(self, path: str) -> int:
        """How many requests (any method) arrived for `path`."""
        return len(self.request_log(path))

    def request_log(self, path: str | None = None) -> list[RequestRecord]:
        """The requests seen so far, for `path` or for all paths, oldest first."""
        with self._state.lock:
            records = list(self._state.log)
        if path is None:
            return records
        key = _norm(path)
        return [r for r in records if r.path == key]

    # -- used by the handler ----------------------------------------------------------------

    def _next_fault(self, key: str) -> Fault | None:
        with self._state.lock:
            queue = self._state.scripts.get(key)
            if queue:
                return queue.pop(0)
            return self._state.always.get(key)

    def _record(self, record: RequestRecord) -> None:
        with self._state.lock:
            self._state.log.append(record)

    def _ranges_for(self, key: str) -> bool:
        with self._state.lock:
            return self._state.ranges.get(key, self.default_ranges)

    def _content(self, key: str) -> bytes | None:
        with self._state.lock:
            data = self._state.files.get(key)
        if data is not None or self.root is None:
            return data
        path = (self.root / key.lstrip("/")).resolve()
        if path != self.root and self.root not in path.parents:
            return None
        if path.is_dir():
            path = path / "index.html"
        return path.read_bytes() if path.is_file() else None

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # idle keep-alive connections end by themselves

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        key = _norm(self.path)
        fault = owner._next_fault(key)
        owner._record(
            RequestRecord(
                self.command,
                key,
                {k.lower(): v for k, v in self.headers.items()},
                fault.kind if fault else None,
                time.monotonic(),
            )
        )
        if owner.auth is not None and not self._authorised(owner.auth):
            self._simple(
                401,
                b"authentication required\n",
                {"WWW-Authenticate": 'Basic realm="loopback"'},
                head,
            )
            return
        if fault is not None and fault.kind == "status":
            self._simple(fault.status, fault.data or b"", {}, head)
            return
        if fault is not None and fault.kind == "redirect":
            location = fault.location
            if location.startswith("/"):
                location = owner.url + quote(location)
            self._simple(fault.status, b"", {"Location": location}, head)
            return
        if fault is not None and fault.kind == "stall" and fault.nbytes < 0:
            owner._sleep(fault.seconds)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "slow":
            owner._sleep(fault.seconds)
        data = owner._content(key)
        if data is None:
            self._simple(404, b"not found\n", {}, head)
            return
        if fault is not None and fault.kind == "wrong":
            data = fault.data if fault.data is not None else bytes(b ^ 0xFF for b in data)
        self._send_body(data, fault, head, owner._ranges_for(key))

    def _authorised(self, auth: tuple[str, str]) -> bool:
        expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _simple(self, code: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_body(self, data: bytes, fault: Fault | None, head: bool, ranges: bool) -> None:
        total = len(data)
        start, end = 0, total - 1
        code = 200
        wanted = self.headers.get("Range") if ranges else None
        if wanted:
            match = _RANGE.fullmatch(wanted.strip())
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
                else:
                    start = max(0, total - int(match.group(2)))
                if start >= total or start > end:
                    self._simple(416, b"", {"Content-Range": f"bytes */{total}"}, head)
                    return
                code = 206
        body = data[start : end + 1]
        self.send_response(code)
        ctype = mimetypes.guess_type(self.path)[0] or "application/octet-stream"
        self.send_header("Content-Type", ctype)
        if fault is None or fault.announce_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.end_headers()
        if head:
            return
        kind = fault.kind if fault else None
        if kind == "drop":
            self._write(body[: fault.nbytes] if fault else b"")
            self._hang_up()
        elif kind == "stall" and fault is not None:
            self._write(body[: fault.nbytes])
            self.server.owner._sleep(fault.seconds)
            self._hang_up()
        elif kind == "dribble" and fault is not None:
            for piece in _pieces(body, max(1, fault.nbytes)):
                if self.server.owner._stop.is_set():
                    break
                self._write(piece)
                self.server.owner._sleep(fault.seconds)
            self._hang_up()
        else:
            self._write(body)

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
