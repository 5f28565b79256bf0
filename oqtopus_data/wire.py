"""Direct connections without requests: GETs over `http.client` and a keep-alive pool, for the transport.

requests and urllib3 spend about 0.9 ms of CPU on each GET (a prepared request, cookie jars, each URL re-encoded a
character at a time, two layers of response objects); `http.client` alone about 0.17 ms (`python -m benchmarks
--only transport`). Nearly every request of an export is one such GET, so the transport sends the requests it can
through `Wire`: direct http(s) connections to URLs made only of characters a URL may carry as they are. requests
keeps everything else (proxies, redirects, adapters mounted by tests). Failures are raised as the requests
exceptions that the retry policy (`http.classify`) and the set-up checks (`api`) already read.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import select
import socket
import ssl
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from oqtopus_data.limits import Attempt

#: URLs sent through `Wire`: printable ASCII that needs no quoting (what requests would send unchanged).
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDLE_PER_HOST = 64  # idle connections kept per host; more are closed when given back


class Redirected(Exception):
    """The server answered with a redirect: the transport asks again through requests, which follows it."""


class WireResponse:
    """A response as `body.read_body` and `http.classify` read it: status_code, headers, raw, content."""

    def __init__(self, wire: Wire, key: tuple[str, str, int], conn: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers
        self.raw = _Body(response)
        self._content = b""
        self._wire, self._key, self._conn, self._response = wire, key, conn, response

    @property
    def content(self) -> bytes:
        """The part of an error body read so far (set by the transport)."""
        return self._content

    def close(self) -> None:
        """Give the connection back to the pool when its answer was read in full, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        response = self._response
        if response.isclosed() and not response.will_close:
            self._wire.put(self._key, conn)
        else:
            response.close()
            conn.close()


class _Body:
    """The body as read from the socket, with the errors of a cut-short body raised as requests raises them."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response

    def read(self, size: int) -> bytes:
        try:
            data = self._response.read(size)
        except http.client.IncompleteRead as exc:
            raise requests.exceptions.ChunkedEncodingError(f"the body ended early ({exc!r})") from None
        except ssl.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        except (OSError, http.client.HTTPException) as exc:  # socket.timeout, a reset, a bad chunk header
            raise requests.exceptions.ConnectionError(exc) from None
        if not data and self._response.length:  # the connection closed before Content-Length bytes came
            raise requests.exceptions.ChunkedEncodingError(
                f"the connection closed {self._response.length} bytes before the end of the body")
        return data


class Wire:
    """Keep-alive connections per host; `get` sends one GET and returns its response with the body unread."""

    def __init__(self, *, timeout: float, verify: Callable[[], bool | str]) -> None:
        self.timeout = timeout
        self._verify = verify  # read when the first TLS connection is made (the session's setting then)
        self._context: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
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
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if reused and not (watch is not None and watch.expired):
                    continue  # the server closed an idle connection just now: once more on a new one
                raise requests.exceptions.ConnectionError(exc) from None
            except BaseException as exc:
                connected = conn.sock is not None
                conn.close()
                raise _as_requests_error(exc, connected) from None
            if response.status in REDIRECTS and response.headers.get("Location"):
                response.close()
                conn.close()
                raise Redirected(response.status)
            return WireResponse(self, key, conn, response)
        raise AssertionError("unreachable")

    def put(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose last answer was read in full, for the next request to the host."""
        with contextlib.suppress(AttributeError):
            del conn._oqtopus_attempt  # type: ignore[attr-defined]
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

    def _take(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if not _dropped(conn):
                return conn
            conn.close()

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        if self._context is None:
            self._context = _tls_context(self._verify())
        return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context)


def _dropped(conn: http.client.HTTPConnection) -> bool:
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
    if isinstance(exc, ssl.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, socket.timeout):
        return requests.exceptions.ReadTimeout(exc) if connected else requests.exceptions.ConnectTimeout(exc)
    if isinstance(exc, OSError | http.client.HTTPException):
        return requests.exceptions.ConnectionError(exc)
    return exc


def direct(url: str) -> bool:
    """Whether `url` can go through `Wire` as it is (plain http(s), nothing to quote)."""
    return PLAIN_URL.fullmatch(url) is not None


