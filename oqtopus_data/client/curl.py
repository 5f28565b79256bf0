"""Direct connections through libcurl (pycurl): the transport's GETs, with keep-alive, TLS and the HTTP protocol
(status lines, headers, chunked bodies, trailers, 100 Continue, connections reused or dropped after a half-read
body) left to a well-kept C library.

libcurl spends about 0.07 ms of CPU on a kept-alive GET against 0.4 for urllib3's pools and 1.3 through requests
(`python -m benchmarks --only transport`). The body is read a piece at a time, as `body.read_body` asks for it:
the transfer is driven on a multi handle until the next piece arrives, and paused while a piece waits to be read,
so a body is never held whole by libcurl. Each thread keeps its own handles (and through them its connections).
The attempt's deadline (`limits.Attempt`) and the per-read timeout are checked while the transfer is driven.
Failures are raised as the requests exceptions that the retry policy (`retry.classify`) and the set-up checks
(`preflight`) already read. A redirect is not followed here (`Redirected`): requests follows it and drops the token on
the way to another host.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from typing import Any

import pycurl
import requests

from oqtopus_data.client.limits import Attempt

REDIRECTS = frozenset({301, 302, 303, 307, 308})
PAUSE_AT = 256 * 1024  # bytes buffered from libcurl before the transfer is paused until they are read
_TICK = 0.05  # the longest wait for the network before the deadline and the read timeout are looked at again
_TLS = frozenset({35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98})  # libcurl's TLS error codes
_CUT = frozenset({18, 52, 55, 56})  # partial file, nothing received, send and receive failures
_TIMED_OUT, _NO_HOST, _NO_CONNECTION, _NO_PROXY_HOST = 28, 6, 7, 5


class Redirected(Exception):
    """The answer is a redirect: requests follows it (and drops the token on the way to another host)."""


class Headers(dict):
    """Response headers by lower-case name, looked up whatever the case."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class _Handles:
    """One thread's easy and multi handles; the multi handle keeps the thread's connections alive.

    libcurl's handles are not to be closed while their thread is inside a transfer: `Curl.close` from another
    thread closes idle handles at once and leaves busy ones to their own thread, which closes them as its
    transfer ends (`done`)."""

    def __init__(self) -> None:
        self.easy = pycurl.Curl()
        self.multi = pycurl.CurlMulti()
        self.lock = threading.Lock()
        self.busy = False  # a transfer runs on them (from `Curl.get` to `_Transfer.finish`)
        self.closing = False  # closed as soon as the running transfer ends
        self.closed = False

    def start(self) -> bool:
        """Mark the handles busy; False when they were closed already (the thread then makes new ones)."""
        with self.lock:
            if self.closed or self.closing:
                return False
            self.busy = True
            return True

    def done(self) -> None:
        """The transfer ended: the handles are idle again, or closed now if `close` asked meanwhile."""
        with self.lock:
            self.busy = False
            if self.closing:
                self._close()

    def close(self) -> None:
        """Close now when idle, else as soon as the running transfer ends."""
        with self.lock:
            if self.busy:
                self.closing = True
            else:
                self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.multi.close()
            self.easy.close()


class Curl:
    """GETs through libcurl; `get` returns a response whose body is read on demand through `raw.read`."""

    def __init__(self, *, timeout: float, verify: Any) -> None:
        self.timeout = timeout
        self._verify = verify  # read when a thread makes its handles (the session's setting then)
        self._local = threading.local()
        self._all: list[_Handles] = []
        self._lock = threading.Lock()

    def get(self, url: str, headers: dict[str, str], watch: Attempt | None) -> CurlResponse:
        """GET `url` with `headers`; the transfer belongs to `watch` (the attempt's deadline) meanwhile."""
        lines = [f"{name}: {value}" for name, value in headers.items()]
        if any("\r" in line or "\n" in line for line in lines):
            raise requests.exceptions.InvalidHeader("a request header holds a line break")
        handles = self._handles()
        try:
            transfer = _Transfer(handles, self.timeout, watch)
            easy = handles.easy
            easy.setopt(pycurl.URL, url)
            easy.setopt(pycurl.HTTPHEADER, lines)
            easy.setopt(pycurl.WRITEFUNCTION, transfer.write)
            easy.setopt(pycurl.HEADERFUNCTION, transfer.header)
            handles.multi.add_handle(easy)
        except BaseException:
            handles.done()
            raise
        try:
            transfer.drive(lambda: transfer.head_done)
            status = easy.getinfo(pycurl.RESPONSE_CODE)
        except BaseException:
            transfer.finish()
            raise
        if status in REDIRECTS and "location" in transfer.headers:
            transfer.finish()
            raise Redirected(status)
        return CurlResponse(status, transfer)

    def close(self) -> None:
        """Close every thread's handles and their connections."""
        with self._lock:
            handles, self._all = self._all, []
        for item in handles:
            item.close()

    def _handles(self) -> _Handles:
        """This thread's handles, marked busy for one transfer."""
        handles = getattr(self._local, "handles", None)
        if handles is None or not handles.start():
            handles = _Handles()
            _configure(handles.easy, self.timeout, self._verify())
            handles.start()
            self._local.handles = handles
            with self._lock:
                self._all.append(handles)
        return handles


class _Transfer:
    """One GET on a thread's handles: its headers, the body pieces libcurl gave and not yet read, its end."""

    def __init__(self, handles: _Handles, timeout: float, watch: Attempt | None) -> None:
        self.handles = handles
        self.timeout = timeout
        self.watch = watch
        self.headers = Headers()
        self.head_done = False
        self.interim = False
        self.received = 0  # bytes of head and body so far: the read timeout counts from the last of them
        self.done = False
        self.error: tuple[int, str] | None = None
        self.buffer = bytearray()
        self.paused = False
        self.sock = None  # what the deadline's watchdog would shut: nothing, the drive loop looks at `expired`
        self.finished = False
        self._attached = False
        self._last = time.monotonic()
        if watch is not None:
            watch.attach(self)
            self._attached = True

    def header(self, line: bytes) -> None:
        self.received += len(line)
        text = line.decode("latin-1").rstrip("\r\n")
        if text.startswith("HTTP/"):  # a new answer's head (after 100 Continue): forget the earlier one
            self.headers = Headers()
            self.head_done = False
            status = text.split(maxsplit=2)[1:2]  # "HTTP/1.1 200 OK", "HTTP/2 200"
            self.interim = bool(status) and status[0].startswith("1")  # 100 Continue: its head ends too
        elif not text:
            self.head_done = self.head_done or not self.interim
        elif ":" in text:
            name, _, value = text.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def write(self, data: bytes) -> int | None:
        if len(self.buffer) >= PAUSE_AT:
            self.paused = True
            return pycurl.WRITEFUNC_PAUSE  # libcurl hands the same bytes again once resumed
        self.received += len(data)
        self.buffer += data
        return None

    def drive(self, ready: Any) -> None:
        """Run the transfer until `ready()` or its end; the deadline and the read timeout are checked between."""
        multi = self.handles.multi
        while not ready() and not self.done:
            before = self.received
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            _queued, ended, failed = multi.info_read()
            for _easy, code, message in failed:
                self.error = (code, message)
            if ended or failed:
                self.done = True
                break
            now = time.monotonic()
            if self.received != before:
                self._last = now
            if self.watch is not None and self.watch.expired:
                raise requests.exceptions.ConnectionError("the attempt's deadline passed")
            if now - self._last > self.timeout:
                raise requests.exceptions.ReadTimeout(f"no byte in {self.timeout:g} s")
            if not ready() and multi.select(_TICK) == -1:
                time.sleep(0.001)  # nothing to wait on yet (a name being resolved): look again shortly
        if self.error is not None and self.error[0] != 0:
            raise _as_requests_error(*self.error, connected=self.head_done)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the body, b"" at its end."""
        if not self.buffer and not self.done:
            if self.paused:
                self.paused = False
                self.handles.easy.pause(pycurl.PAUSE_CONT)
            self.drive(lambda: bool(self.buffer))
        piece = bytes(self.buffer[:size])
        del self.buffer[:size]
        if self.paused and len(self.buffer) < PAUSE_AT:
            self.paused = False
            self.handles.easy.pause(pycurl.PAUSE_CONT)
        return piece

    def finish(self) -> None:
        """Take the handle off the multi handle: its connection is kept when the body was read whole, else closed
        by libcurl."""
        if self.finished:
            return
        self.finished = True
        if self._attached and self.watch is not None:
            self.watch.detach(self)
        try:
            self.handles.multi.remove_handle(self.handles.easy)
        finally:
            self.buffer = bytearray()
            self.handles.done()


class CurlResponse:
    """A response as `body.read_body` and `retry.classify` read it: status_code, headers, raw, content."""

    def __init__(self, status: int, transfer: _Transfer) -> None:
        self.status_code = status
        self.headers = transfer.headers
        self.raw = transfer
        self._content = b""
        self._transfer: _Transfer | None = transfer

    @property
    def content(self) -> bytes:
        """The part of an error body read so far (set by the transport)."""
        return self._content

    def close(self) -> None:
        """End the transfer (its connection is kept alive when the body was read whole)."""
        transfer, self._transfer = self._transfer, None
        if transfer is not None:
            transfer.finish()


def _configure(easy: Any, timeout: float, verify: bool | str) -> None:
    """Settings every GET of a thread shares: no redirects followed, bodies left encoded (body.py inflates them
    within its caps), the connect timeout, the certificates requests would check against."""
    easy.setopt(pycurl.FOLLOWLOCATION, 0)
    easy.setopt(pycurl.HTTP_CONTENT_DECODING, 0)
    easy.setopt(pycurl.NOSIGNAL, 1)
    easy.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    easy.setopt(pycurl.PROXY, "")  # direct: proxies go through requests, which reads the environment's settings
    if verify is False:
        easy.setopt(pycurl.SSL_VERIFYPEER, 0)
        easy.setopt(pycurl.SSL_VERIFYHOST, 0)
        return
    where = requests.certs.where() if verify is True else verify
    easy.setopt(pycurl.CAPATH if os.path.isdir(where) else pycurl.CAINFO, where)


def _as_requests_error(code: int, message: str, *, connected: bool) -> BaseException:
    """A libcurl failure as the requests exception that means the same (with the cause `api` names)."""
    text = f"{message} (libcurl error {code})"
    if code in _TLS:
        error: BaseException = requests.exceptions.SSLError(text)
        error.__cause__ = ssl.SSLError(message)
        return error
    if code == _TIMED_OUT:
        return requests.exceptions.ReadTimeout(text) if connected else requests.exceptions.ConnectTimeout(text)
    if code in _CUT:
        return requests.exceptions.ChunkedEncodingError(text) if connected else \
            requests.exceptions.ConnectionError(text)
    error = requests.exceptions.ConnectionError(text)
    if code in (_NO_HOST, _NO_PROXY_HOST):
        error.__cause__ = socket.gaierror(message)
    elif code == _NO_CONNECTION and "refused" in message.lower():
        error.__cause__ = ConnectionRefusedError(message)
    return error
