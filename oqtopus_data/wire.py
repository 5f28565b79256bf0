"""Direct connections without requests: HTTP/1.1 GETs over a keep-alive pool of plain sockets, for the transport.

requests and urllib3 spend about 0.7 ms of CPU on each GET (a prepared request, cookie jars, each URL re-encoded a
character at a time, two layers of response objects), `http.client` about 0.1 ms, most of it parsing headers with
the e-mail parser; this module about half that (`python -m benchmarks --only transport`). Nearly every request of
an export is such a GET, so the transport sends the requests it can through `Wire`: direct http(s) connections to
URLs made only of characters a URL may carry as they are. requests keeps everything else (proxies, redirects,
adapters mounted by tests).

What is spoken: `GET target HTTP/1.1` with Host and the given headers; a response's status line and headers (at most
MAX_HEADERS lines of at most MAX_LINE bytes), then its body framed by chunked transfer coding, Content-Length, or the
end of the connection. Failures are raised as the requests exceptions that the retry policy (`http.classify`) and
the set-up checks (`api`) already read.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from oqtopus_data.limits import Attempt

#: URLs sent through `Wire`: printable ASCII that needs no quoting (what requests would send unchanged).
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_LINE = 65536  # bytes of a status, header or chunk-size line
MAX_HEADERS = 100
_IDLE_PER_HOST = 64  # idle connections kept per host; more are closed when given back
_NO_BODY = frozenset({204, 304})


class Redirected(Exception):
    """The server answered with a redirect: the transport asks again through requests, which follows it."""


class _CutShort(Exception):
    """The connection ended inside a response (raised as requests' ChunkedEncodingError or ConnectionError)."""


class Headers(dict):
    """Response headers by lower-case name; `get` takes any case (as requests' and http.client's do)."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class Connection:
    """One socket to one host, with its buffered reader; `sock` is what the deadline watchdog shuts down."""

    def __init__(self, scheme: str, host: str, port: int, timeout: float, context: ssl.SSLContext | None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.version = b"HTTP/1.1"
        self._context = context if scheme == "https" else None
        self._file: Any = None
        default = 443 if scheme == "https" else 80
        self.host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._file = sock.makefile("rb")

    def request(self, target: str, headers: dict[str, str]) -> None:
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if any("\r" in line or "\n" in line for line in lines):  # a header must not smuggle in another one
            raise requests.exceptions.InvalidHeader("a request header holds a line break")
        try:
            data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise requests.exceptions.InvalidHeader("a request header holds a character HTTP cannot carry") from None
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(data)

    def response(self) -> tuple[int, Headers, Body]:
        """The status, headers and body reader of the answer to the request just sent."""
        while True:
            status, headers = self._head()
            if not 100 <= status < 200:
                break  # an interim 1xx answer precedes the real one
        return status, headers, Body(self._file, status, headers)

    def reusable(self, headers: Headers, body: Body) -> bool:
        """Whether the connection may carry another request once this answer is read."""
        connection = headers.get("Connection", "").lower()
        if self.version == b"HTTP/1.0":
            return "keep-alive" in connection and not body.until_close
        return "close" not in connection and not body.until_close

    def _head(self) -> tuple[int, Headers]:
        line = self._line()
        if not line:
            raise ConnectionResetError("the server closed the connection without answering")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP answer: {line[:40]!r}")
        self.version = parts[0]
        headers = Headers()
        last = None
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return int(parts[1]), headers
            if line[:1] in (b" ", b"\t") and last is not None:  # an obsolete folded continuation
                headers[last] += " " + line.strip().decode("latin-1")
                continue
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ConnectionError(f"a malformed header line: {line[:40]!r}")
            last = name.strip().lower()
            value = value.strip()
            headers[last] = f"{headers[last]}, {value}" if last in headers else value
        raise ConnectionError(f"more than {MAX_HEADERS} header lines")

    def _line(self) -> bytes:
        line = self._file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ConnectionError("a header line is too long")
        return line

    def close(self) -> None:
        sock, self.sock = self.sock, None
        file, self._file = self._file, None
        for item in (file, sock):
            if item is not None:
                with contextlib.suppress(OSError):
                    item.close()


class Body:
    """A response body as framed on the wire; `read(n)` gives at most n bytes, b"" at its end."""

    def __init__(self, file: Any, status: int, headers: Headers) -> None:
        self._file = file
        coding = headers.get("Transfer-Encoding", "").lower()
        self.chunked = "chunked" in coding
        self.length: int | None = None
        self.until_close = False
        self.done = status in _NO_BODY
        if not self.done and not self.chunked:
            try:
                self.length = int(headers.get("Content-Length", ""))
            except ValueError:
                self.until_close = True  # no framing: the body ends with the connection
            else:
                self.done = self.length <= 0
        self._left = 0  # bytes left in the current chunk

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        if self.chunked:
            return self._read_chunk(size)
        if self.until_close:
            data = self._file.read1(size)
            self.done = not data
            return data
        assert self.length is not None
        data = self._file.read(min(size, self.length))
        if not data:
            raise _CutShort(f"the connection closed {self.length} bytes before the end of the body")
        self.length -= len(data)
        self.done = self.length == 0
        return data

    def _read_chunk(self, size: int) -> bytes:
        if self._left == 0:
            line = self._file.readline(MAX_LINE + 1)
            if not line:
                raise _CutShort("the connection closed inside a chunked body")
            try:
                self._left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _CutShort(f"a bad chunk size line {line[:40]!r}") from None
            if self._left == 0:  # the last chunk: skip the trailer
                while self._file.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
        data = self._file.read(min(size, self._left))
        if not data:
            raise _CutShort("the connection closed inside a chunk")
        self._left -= len(data)
        if self._left == 0:
            self._file.readline(MAX_LINE + 1)  # the CRLF after the chunk
        return data


class WireResponse:
    """A response as `body.read_body` and `http.classify` read it: status_code, headers, raw, content."""

    def __init__(self, wire: Wire, key: tuple[str, str, int], conn: Connection, status: int, headers: Headers,
                 body: Body) -> None:
        self.status_code = status
        self.headers = headers
        self.raw = _Raw(body)
        self._content = b""
        self._wire, self._key, self._conn, self._body = wire, key, conn, body
        self._reusable = conn.reusable(headers, body)

    @property
    def content(self) -> bytes:
        """The part of an error body read so far (set by the transport)."""
        return self._content

    def close(self) -> None:
        """Give the connection back to the pool when its answer was read in full, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._body.done and self._reusable:
            self._wire.put(self._key, conn)
        else:
            conn.close()


class _Raw:
    """The body with the errors of a cut-short or broken connection raised as requests raises them."""

    def __init__(self, body: Body) -> None:
        self._body = body

    def read(self, size: int) -> bytes:
        try:
            return self._body.read(size)
        except _CutShort as exc:
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
        except ssl.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        except OSError as exc:  # socket.timeout, a reset
            raise requests.exceptions.ConnectionError(exc) from None


class Wire:
    """Keep-alive connections per host; `get` sends one GET and returns its response with the body unread."""

    def __init__(self, *, timeout: float, verify: Callable[[], bool | str]) -> None:
        self.timeout = timeout
        self._verify = verify  # read when the first TLS connection is made (the session's setting then)
        self._context: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: dict[str, str], watch: Attempt | None) -> WireResponse:
        """GET `url` (a PLAIN_URL) with `headers`; the connection belongs to `watch` (the deadline) meanwhile."""
        parts = urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (scheme, host, port)
        for fresh in (False, True):
            conn = None if fresh else self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._connection(scheme, host, port)
            if watch is not None:
                watch.attach(conn)
            try:
                conn.request(target, headers)
                status, response_headers, body = conn.response()
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
                conn.close()
                if reused and not (watch is not None and watch.expired):
                    continue  # the server closed an idle connection just now: once more on a new one
                raise requests.exceptions.ConnectionError(exc) from None
            except BaseException as exc:
                connected = conn.sock is not None
                conn.close()
                raise _as_requests_error(exc, connected) from None
            if status in REDIRECTS and response_headers.get("Location"):
                conn.close()
                raise Redirected(status)
            return WireResponse(self, key, conn, status, response_headers, body)
        raise AssertionError("unreachable")

    def put(self, key: tuple[str, str, int], conn: Connection) -> None:
        """Keep a connection whose last answer was read in full, for the next request to the host."""
        conn.__dict__.pop("_oqtopus_attempt", None)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _take(self, key: tuple[str, str, int]) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if not _dropped(conn):
                return conn
            conn.close()

    def _connection(self, scheme: str, host: str, port: int) -> Connection:
        if scheme == "https" and self._context is None:
            self._context = _tls_context(self._verify())
        return Connection(scheme, host, port, self.timeout, self._context)


def _dropped(conn: Connection) -> bool:
    """Whether an idle keep-alive connection was closed by the server (its socket reads as ready: EOF)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """Certificates checked as requests checks them: its CA bundle (certifi), or the file or directory given."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    where = requests.certs.where() if verify is True else verify
    if os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)


def _as_requests_error(exc: BaseException, connected: bool) -> BaseException:
    """A failure to connect or to read the answer's head, as the requests exception that means the same."""
    if isinstance(exc, requests.RequestException):  # already one (an IOError too: let it through as it is)
        return exc
    if isinstance(exc, ssl.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, socket.timeout):
        return requests.exceptions.ReadTimeout(exc) if connected else requests.exceptions.ConnectTimeout(exc)
    if isinstance(exc, OSError):
        return requests.exceptions.ConnectionError(exc)
    return exc


def direct(url: str) -> bool:
    """Whether `url` can go through `Wire` as it is (plain http(s), nothing to quote)."""
    return PLAIN_URL.fullmatch(url) is not None
