"""The HTTP plumbing of the fake cloud: request counters, the keep-alive handler and its server."""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import socket
import threading
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

REQUEST_KINDS = ("list", "job", "status", "sselog", "user", "devices", "storage", "other")


class RequestCounts:
    """Thread-safe request counters by endpoint kind (REQUEST_KINDS) plus `total`; resettable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the fault cadence restarts too)."""
        with self._lock:
            self._counts = dict.fromkeys(REQUEST_KINDS, 0)
            self._total = 0

    def add(self, kind: str) -> int:
        """Count one request of `kind`; return the new total."""
        with self._lock:
            self._counts[kind] += 1
            self._total += 1
            return self._total

    @property
    def total(self) -> int:
        """Requests of every kind since the last reset."""
        return self._total

    def __getitem__(self, kind: str) -> int:
        """Requests of one kind since the last reset."""
        return self._counts[kind]

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict, with "total"."""
        with self._lock:
            return {**self._counts, "total": self._total}

    def __repr__(self) -> str:
        return f"RequestCounts({self.snapshot()})"


def s3_error(code: str, message: str) -> bytes:
    """An S3-style XML error body."""
    request_id = os.urandom(8).hex().upper()
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>").encode()

class App(Protocol):
    """What the server needs of the cloud it serves (FakeCloud): a request handler and the counters."""

    requests: RequestCounts
    connections_opened: int

    def _handle(self, h: Handler) -> None: ...


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection; every GET goes to the cloud's `_handle`, other methods are 405."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeOqtopusCloud/1.0"
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, False)

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.cloud._handle(self)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on the cloud's own clock (tests move it), as a real server's clock would show."""
        clock = getattr(self.server.cloud, "now", None)
        if timestamp is not None or clock is None:
            return super().date_time_string(timestamp)
        return email.utils.format_datetime(clock().astimezone(UTC), usegmt=True)

    def _not_allowed(self) -> None:
        self.server.cloud.requests.add("other")
        self.send_json(405, {"message": f"method {self.command} not allowed"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def send(self, status: int, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> None:
        """Answer with `body`."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # One write for head and body: split small writes stall on Nagle + delayed ACK.
        self._headers_buffer.extend((b"\r\n", body))
        self.flush_headers()

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        """Answer with `value` as compact JSON."""
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        self.send(status, body, "application/json", headers)

    def drop(self) -> None:
        """Close the connection without answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks make thousands of requests


class Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, to close them on stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], cloud: App) -> None:
        self.cloud = cloud
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            (self._connections.add if alive else self._connections.discard)(connection)
            self.cloud.connections_opened += alive

    def close_connections(self) -> None:
        with self._conn_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is normal here
