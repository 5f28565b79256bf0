"""Every GET of the transport through libcurl (pycurl), with keep-alive, TLS, proxies (and their CONNECT tunnels)
and the HTTP protocol (status lines, headers, chunked bodies, trailers, 100 Continue, connections reused or dropped
after a half-read body) left to a well-kept C library.

libcurl spends about 0.07 ms of CPU on a kept-alive GET against 0.4 for urllib3's pools and 1.3 through requests
(`python -m benchmarks --only transport`). The body is read a piece at a time, as `body.read_body` asks for it:
the transfer is driven on a multi handle until the next piece arrives, and paused while a piece waits to be read,
so a body is never held whole by libcurl. Each thread keeps its own handles (and through them its connections).
The attempt's deadline (`limits.Attempt`) and the per-read timeout are checked while the transfer is driven.
Failures are raised as the transport's own exceptions (`neterrors`), which the retry policy (`retry.classify`) and
the set-up check (`preflight`) read. Each GET names its proxy ("" for none: libcurl's own reading of the environment is
never used; `http.Transport` decides). libcurl never follows a redirect itself (it would forward the token header to
any host): a redirect's answer carries libcurl's resolved target (`CurlResponse.location`) and the transport follows
it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pycurl

from oqtopus_data.client.limits import Attempt
from oqtopus_data.client.neterrors import (
    BadHeader,
    BodyCutShort,
    ConnectFailed,
    ConnectTimeout,
    NetworkError,
    Overdue,
    ProxyFailed,
    ReadTimeout,
    TlsRefused,
)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
REDIRECT_BODY = 64 * 1024  # the most of a redirect's body read (and dropped) before its target is known
PAUSE_AT = 256 * 1024  # bytes buffered from libcurl before the transfer is paused until they are read
_TICK = 0.05  # the longest wait for the network before the deadline and the read timeout are looked at again
_TLS = frozenset({35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98})  # libcurl's TLS error codes
_CUT = frozenset({18, 52, 55, 56})  # partial file, nothing received, send and receive failures
_TIMED_OUT, _NO_HOST, _NO_CONNECTION, _NO_PROXY_HOST, _PROXY = 28, 6, 7, 5, 97
#: CURLOPT_SUPPRESS_CONNECT_HEADERS (pycurl names it not): a proxy's answer to CONNECT is not the server's head.
_SUPPRESS_CONNECT_HEADERS = 265


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
        self.proxy = ""  # the proxy the easy handle is set to

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
    """GETs through libcurl; `get` returns a response whose body is read on demand through `raw.read`. `ca` is
    the file (or directory) of certificate authorities TLS servers are checked against."""

    def __init__(self, *, timeout: float, ca: str) -> None:
        self.timeout = timeout
        self.ca = ca
        self._local = threading.local()
        self._all: list[_Handles] = []
        self._lock = threading.Lock()

    def get(self, url: str, lines: list[str], watch: Attempt | None, proxy: str = "") -> CurlResponse:
        """GET `url` with the header `lines` ("Name: value") through `proxy` ("" for none); the transfer belongs
        to `watch` (the attempt's deadline) meanwhile."""
        if any("\r" in line or "\n" in line for line in lines):
            raise BadHeader("a request header holds a line break")
        handles = self._handles()
        try:
            transfer = _Transfer(handles, self.timeout, watch, proxy)
            easy = handles.easy
            if proxy != handles.proxy:
                easy.setopt(pycurl.PROXY, proxy)
                handles.proxy = proxy
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
            location = None
            if status in REDIRECTS and "location" in transfer.headers:
                transfer.drain(REDIRECT_BODY)  # libcurl resolves the target once the transfer has ended
                location = easy.getinfo(pycurl.REDIRECT_URL)
        except BaseException:
            transfer.finish()
            raise
        if location:
            transfer.finish()
        return CurlResponse(status, transfer, location or None)

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
            _configure(handles.easy, self.timeout, self.ca)
            handles.start()
            self._local.handles = handles
            with self._lock:
                self._all.append(handles)
        return handles


class _Transfer:
    """One GET on a thread's handles: its headers, the body pieces libcurl gave and not yet read, its end."""

    def __init__(self, handles: _Handles, timeout: float, watch: Attempt | None, proxy: str) -> None:
        self.handles = handles
        self.proxy = proxy
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
        self.finished = False
        self._last = time.monotonic()

    def header(self, line: bytes) -> None:
        self.received += len(line)
        name, colon, value = line.partition(b":")
        if colon and not name.startswith(b"HTTP/"):  # the usual line first: one split, two small decodes
            self.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        elif line.startswith(b"HTTP/"):  # a new answer's head (after 100 Continue): forget the earlier one
            self.headers = Headers()
            self.head_done = False
            status = line.split(maxsplit=2)[1:2]  # "HTTP/1.1 200 OK", "HTTP/2 200"
            self.interim = bool(status) and status[0].startswith(b"1")  # 100 Continue: its head ends too
        elif not line.strip(b"\r\n"):
            self.head_done = self.head_done or not self.interim

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
                raise Overdue("the attempt's deadline passed")
            if now - self._last > self.timeout:
                raise ReadTimeout(f"no byte in {self.timeout:g} s")
            if not ready() and multi.select(_TICK) == -1:
                time.sleep(0.001)  # nothing to wait on yet (a name being resolved): look again shortly
        if self.error is not None and self.error[0] != 0:
            raise _failure(*self.error, connected=self.head_done, proxy=self.proxy,
                           errno=self.handles.easy.getinfo(pycurl.OS_ERRNO))

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

    def drain(self, limit: int) -> None:
        """Read the body to its end and drop it (a redirect's); more than `limit` bytes are not waited for."""
        dropped = 0
        while piece := self.read(PAUSE_AT):
            dropped += len(piece)
            if dropped > limit:
                raise NetworkError(f"a redirect's body goes on past {limit // 1024} KiB")

    def finish(self) -> None:
        """Take the handle off the multi handle: its connection is kept when the body was read whole, else closed
        by libcurl."""
        if self.finished:
            return
        self.finished = True
        try:
            self.handles.multi.remove_handle(self.handles.easy)
        finally:
            self.buffer = bytearray()
            self.handles.done()


class CurlResponse:
    """A response as `body.read_body` and `retry.classify` read it: status_code, headers, raw, content; and for a
    redirect, the absolute URL libcurl resolved its Location to (`location`; the body is dropped already)."""

    def __init__(self, status: int, transfer: _Transfer, location: str | None = None) -> None:
        self.status_code = status
        self.location = location
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


def _configure(easy: Any, timeout: float, ca: str) -> None:
    """Settings every GET of a thread shares: no redirects followed, bodies left encoded (body.py inflates them
    within its caps), the connect timeout, no proxy unless a GET names one, the certificate authorities."""
    easy.setopt(pycurl.FOLLOWLOCATION, 0)
    easy.setopt(pycurl.HTTP_CONTENT_DECODING, 0)
    easy.setopt(pycurl.NOSIGNAL, 1)
    easy.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    easy.setopt(pycurl.PROXY, "")  # never libcurl's own reading of the environment: `http.Transport` decides
    easy.setopt(pycurl.NOPROXY, "")
    easy.setopt(_SUPPRESS_CONNECT_HEADERS, 1)
    easy.setopt(pycurl.CAPATH if os.path.isdir(ca) else pycurl.CAINFO, ca)


def _failure(code: int, message: str, *, connected: bool, proxy: str, errno: int) -> NetworkError:
    """A libcurl failure as the transport's exception that means the same, with why no connection was made."""
    text = f"{message} (libcurl error {code})"
    if proxy and (password := urlsplit(proxy).password):
        text = text.replace(password, "<redacted>")  # never in a message, should libcurl ever quote it
    why = os.strerror(errno) if errno else None
    why = why[:1].lower() + why[1:] if why else None
    if code in _TLS:
        detail = message.rsplit(":", 1)[-1].strip() or "handshake failed"
        return TlsRefused(text, f"TLS failure: {detail}")
    if proxy and not connected and (code in (_NO_PROXY_HOST, _NO_CONNECTION, _TIMED_OUT, _PROXY)
                                    or "CONNECT" in message):
        reason = {_NO_PROXY_HOST: "unknown host", _TIMED_OUT: "connection timed out"}.get(code, why)
        return ProxyFailed(text, reason or "the proxy refused the request", proxy_host(proxy))
    if code == _TIMED_OUT:
        return ReadTimeout(text) if connected else ConnectTimeout(text)
    if code in _CUT:
        return BodyCutShort(text) if connected else NetworkError(text)
    if code == _NO_HOST:
        return ConnectFailed(text, "unknown host")
    if code == _NO_CONNECTION:
        return ConnectFailed(text, why)
    return NetworkError(text)


def proxy_host(proxy: str) -> str:
    """host:port of a proxy URL, for messages (never its credentials)."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or (443 if parts.scheme == 'https' else 80)}"
