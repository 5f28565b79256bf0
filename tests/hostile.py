"""A hostile OQTOPUS Cloud on 127.0.0.1 (stdlib `http.server`, port 0): the API and its storage on one server,
each path scripted with a misbehaviour.

    with Hostile() as server:
        server.on("/jobs", trickle(b"[]", interval=0.2))      # one byte every 0.2 s
        server.on("/storage/j1/result.zip", status(500))
        server.url                                             # http://127.0.0.1:PORT

A behaviour is a function of the request handler; the helpers below build the usual ones: JSON, raw bytes,
statuses, bodies trickled byte by byte (headers included), gzip bombs, deeply nested JSON, dropped connections.
Paths are matched without their query string; unknown paths answer 404 {"message": "not found"}.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Behaviour = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.owner.record(path, dict(self.headers))
        self.server.owner.behaviour(path)(self)

    def send_body(self, status: int, body: bytes, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        extra = headers or {}
        if "Content-Length" not in extra:
            self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Hostile

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up mid-body is the point of most scripts


class Hostile:
    """The server: `on(path, behaviour)` scripts a path; `hits[path]` counts requests; `headers` the last ones."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour | list[Behaviour]] = {}
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def storage_url(self, path: str, signature: str = "SIG-SECRET") -> str:
        """A presigned-looking URL of `path` on this server (the signature must never show in a message)."""
        return f"{self.url}{path}?X-Amz-Signature={signature}&X-Amz-Expires=900"

    def on(self, path: str, *behaviours: Behaviour) -> None:
        """Answer `path` with the behaviours in turn, the last one for ever after."""
        self.routes[path] = list(behaviours) if len(behaviours) > 1 else behaviours[0]

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.hits[path] += 1
            self.headers[path] = headers

    def behaviour(self, path: str) -> Behaviour:
        with self._lock:
            route = self.routes.get(path)
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
        return route or status(404, {"message": "not found"})

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- behaviours -------------------------------------------------------------------------------------------------
def payload(value: Any, status_code: int = 200, **headers: str) -> Behaviour:
    """A JSON body."""
    body = json.dumps(value).encode()
    return lambda h: h.send_body(status_code, body, headers=headers)


def status(code: int, value: Any = None, **headers: str) -> Behaviour:
    """A status with a JSON message body ({"message": ...} by default)."""
    return payload({"message": f"HTTP {code}"} if value is None else value, code, **headers)


def raw(body: bytes, status_code: int = 200, content_type: str = "application/octet-stream",
        **headers: str) -> Behaviour:
    """Bytes as they are."""
    return lambda h: h.send_body(status_code, body, content_type, headers)


def trickle(body: bytes, *, interval: float, headers_too: bool = False) -> Behaviour:
    """`body` (with a correct Content-Length) one byte every `interval` seconds; with `headers_too` the status
    line and headers come that way as well."""

    def behave(h: Handler) -> None:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode())
        if not headers_too:
            h.wfile.write(head)
            h.wfile.flush()
            head = b""
        for byte in head + body:
            time.sleep(interval)
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                return  # the client hung up: what it should do
        h.close_connection = True

    return behave


def steady(body: bytes, *, pieces: int, interval: float) -> Behaviour:
    """`body` in `pieces` equal pieces, `interval` seconds apart: slow but steady."""
    size = -(-len(body) // pieces)

    def behave(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for start in range(0, len(body), size):
            time.sleep(interval)
            h.wfile.write(body[start : start + size])
            h.wfile.flush()

    return behave


def gzip_bomb(inflated: int, *, chunked: bool = False) -> Behaviour:
    """A JSON array `[0, 0, ...]` of about `inflated` bytes, sent gzip-encoded (a few KiB on the wire)."""
    body = gzip_json_array(inflated)
    headers = {"Content-Encoding": "gzip"}
    if chunked:
        return _chunked(body, headers)
    return raw(body, 200, "application/json", **headers)


def gzip_json_array(inflated: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    piece = b"0," * (1 << 19)
    out = [packer.compress(b"[")]
    for _ in range(max(1, inflated // len(piece))):
        out.append(packer.compress(piece))
    out.append(packer.compress(b"0]"))
    out.append(packer.flush())
    return b"".join(out)


def _chunked(body: bytes, headers: dict[str, str]) -> Behaviour:
    def behave(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        for start in range(0, len(body), 8192):
            piece = body[start : start + 8192]
            h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    return behave


def unsized(body: bytes) -> Behaviour:
    """A body without Content-Length, ended by closing the connection (HTTP/1.0 style)."""

    def behave(h: Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
        h.wfile.write(body)
        h.close_connection = True

    return behave


def nested(depth: int) -> bytes:
    """A JSON array nested `depth` levels deep."""
    return b"[" * depth + b"]" * depth


def drop() -> Behaviour:
    """Close the connection without answering."""

    def behave(h: Handler) -> None:
        h.close_connection = True

    return behave


# ---- payload helpers --------------------------------------------------------------------------------------------
def zipped(entries: dict[str, bytes], *, compress: bool = True) -> bytes:
    """A zip archive of the given entries."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def job(job_id: str, job_info: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A finished sampling job as the API lists it."""
    record = {"job_id": job_id, "name": job_id, "job_type": "sampling", "status": "succeeded",
              "device_id": "SVSim", "shots": 10, "submitted_at": "2024-05-01T00:00:00Z", **fields}
    if job_info is not None:
        record["job_info"] = job_info
    return record


def serve_job(server: Hostile, record: dict[str, Any], archives: dict[str, bytes]) -> dict[str, Any]:
    """Serve GET /jobs/{id} and each archive at /storage/{id}/{key}.zip; returns the job as listed."""
    job_id = record["job_id"]
    info = dict(record.get("job_info") or {})
    for key, data in archives.items():
        path = f"/storage/{job_id}/{key}.zip"
        server.on(path, raw(data, content_type="application/zip"))
        info[key] = server.storage_url(path)
    listed = {**record, "job_info": info}
    server.on(f"/jobs/{job_id}", payload(listed))
    return listed

