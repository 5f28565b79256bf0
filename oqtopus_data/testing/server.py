"""A local OQTOPUS Cloud: the user API over a synthetic history, quirks and faults included.

Standard library only. `FakeCloud` serves GET /jobs, /jobs/{id}, /jobs/{id}/status,
/jobs/{id}/sselog, /devices, /devices/{id} (token in `q-api-token`) and the presigned
/storage/{job_id}/{key}.zip archives that job_info points at (signed, expiring, no token).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oqtopus_data.testing.faults import (
    ARCHIVE_KINDS,
    COUNTS_KINDS,
    JOB_KINDS,
    Faults,
    malform_job,
    malform_result,
    malformed_archive,
    zip_bytes,
)
from oqtopus_data.testing.synth import (
    ARCHIVE_ENTRIES,
    ARCHIVE_KEYS,
    JOB_FIELDS,
    STATUSES,
    History,
    generate_history,
    with_job_info,
)

REQUEST_KINDS = ("list", "job", "status", "sselog", "devices", "storage", "other")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_sleep = time.sleep  # the latency fault's sleep; tests replace it
DEMO_TOKEN = "demo-token"  # noqa: S105  (the fake cloud's public default, not a secret)


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


class FakeCloud:
    """The OQTOPUS Cloud user API on 127.0.0.1 over a synthetic `History`; a context manager.

    Archive URLs live `url_ttl` seconds on the clock of `now()`; `legacy=True` serves job_info
    inline (old servers); `faults` can be changed while serving.
    """

    def __init__(self, n_jobs: int = 500, *, seed: int = 0, token: str = DEMO_TOKEN,
                 history: History | None = None, faults: Faults | None = None,
                 legacy: bool = False, url_ttl: int = 3600, port: int = 0) -> None:
        self.history = history if history is not None else generate_history(n_jobs, seed=seed)
        self.token = token
        self.faults = faults if faults is not None else Faults()
        self.legacy = legacy
        self.url_ttl = url_ttl
        self.port = port
        self.requests = RequestCounts()
        self.connections_opened = 0  # TCP connections accepted: keep-alive keeps this low
        self.added_ids: list[str] = []
        self.deleted_ids: list[str] = []
        self._secret = os.urandom(32)
        self._clock: datetime | None = None
        self._clock_offset = 0.0
        self._lock = threading.Lock()
        self._downloaded: set[tuple[str, str]] = set()
        self._churned = False
        self._server: _Server | None = None
        self._url = ""
        self._thread: threading.Thread | None = None
        self._archive = functools.lru_cache(maxsize=2048)(self._build_archive)

    def __repr__(self) -> str:
        where = self._server and self.url
        return f"FakeCloud(url={where!r}, jobs={len(self.history)}, legacy={self.legacy})"

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self, port: int | None = None) -> FakeCloud:
        """Bind 127.0.0.1 (port 0 = any free port) and serve from a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self.port if port is None else port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="fake-oqtopus-cloud", daemon=True)
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()

    def __enter__(self) -> FakeCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:PORT (the API paths hang directly off it)."""
        if self._server is None:
            raise RuntimeError("FakeCloud is not running; call start()")
        return self._url

    # ---- clock and mutations ------------------------------------------------------------------
    def now(self) -> datetime:
        """The server's clock, which decides presigned URL expiry."""
        base = self._clock if self._clock is not None else datetime.now(UTC)
        return base + timedelta(seconds=self._clock_offset)

    def set_clock(self, when: datetime | None) -> None:
        """Freeze the clock at `when` (None: back to real time); resets advance_clock."""
        self._clock = when if when is None or when.tzinfo else when.replace(tzinfo=UTC)
        self._clock_offset = 0.0

    def advance_clock(self, seconds: float) -> None:
        """Move the clock forward, e.g. past the URL lifetime to expire handed-out URLs."""
        self._clock_offset += seconds

    def add_jobs(self, n: int) -> list[str]:
        """Submit `n` new jobs after all others (some unfinished); they are in `added_ids` too."""
        ids = self.history.add_jobs(n)
        self.added_ids += ids
        return ids

    def finish(self, job_id: str, status: str = "succeeded") -> None:
        """Make a non-terminal job terminal: it gains its timestamps and result."""
        self.history.finish(job_id, status)

    def delete(self, job_id: str) -> None:
        """Delete a job (then 404, gone from listings, archives 404); recorded in `deleted_ids`."""
        self.history.delete(job_id)
        self.deleted_ids.append(job_id)

    def presign(self, job_id: str, key: str, date: str | None = None) -> str:
        """A fresh presigned storage URL for one of the job's archives (`date`: X-Amz-Date)."""
        date = date or self.now().strftime(_AMZ_DATE)
        path = f"/storage/{job_id}/{key}.zip"
        return (f"{self._url}{path}?{_signed_query(date, self.url_ttl)}"
                f"&X-Amz-Signature={self._sign(path, date, str(self.url_ttl))}")

    def _sign(self, path: str, date: str, expires: str) -> str:
        # A keyed BLAKE2b: an HMAC in effect, and cheap enough for pages of thousands of URLs.
        return hashlib.blake2b(f"{path}\n{date}\n{expires}".encode(), key=self._secret,
                               digest_size=32).hexdigest()

    # ---- request handling ---------------------------------------------------------------------
    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        parts = [p for p in split.path.split("/") if p]
        kind = _route(parts)
        n = self.requests.add(kind)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        f = self.faults
        if f.latency > 0:
            _sleep(f.latency)
        storage = kind == "storage"
        if f.drop_every and n % f.drop_every == 0:
            h.drop()
        elif f.rate_limit_every and n % f.rate_limit_every == 0:
            retry = {"Retry-After": f"{f.retry_after:g}"}
            if storage:
                h.send(503, _s3_error("SlowDown", "Please reduce your request rate."),
                       "application/xml", retry)
            else:
                h.send_json(429, {"message": "Too Many Requests"}, retry)
        elif f.error_every and n % f.error_every == 0:
            if storage:
                h.send(500, _s3_error("InternalError", "We encountered an internal error."),
                       "application/xml")
            else:
                h.send_json(500, {"message": "Internal Server Error"})
        elif storage:
            self._storage(h, parts, query)
        elif not hmac.compare_digest(h.headers.get("q-api-token", "").encode(),
                                     self.token.encode()):
            h.send_json(401, {"message": "Unauthorized: missing or invalid q-api-token"})
        elif kind == "list":
            self._list(h, query)
        elif kind in ("job", "status", "sselog"):
            self._job(h, kind, parts[1])
        elif kind == "devices":
            self._devices(h, parts[1] if len(parts) > 1 else None)
        else:
            h.send_json(404, {"message": f"no such endpoint: {split.path[:100]}"})

    def _list(self, h: _Handler, query: dict[str, str]) -> None:
        try:
            args = self._list_args(query)
        except ValueError as exc:
            h.send_json(400, {"message": str(exc)})
            return
        fields = args.pop("fields")
        idxs, _ = self.history.list_page(**args)
        cap = self.faults.page_size_cap
        if cap > 0:
            idxs = idxs[:cap]
        date = self.now().strftime(_AMZ_DATE)
        jobs = [self._render(i, fields, date) for i in idxs]
        if self.faults.add_during_listing or self.faults.delete_during_listing:
            self._churn()  # before answering, so the client sees it on its next request
        h.send_json(200, jobs)

    def _list_args(self, query: dict[str, str]) -> dict[str, Any]:
        order = query.get("order", "ASC").upper()
        if order not in ("ASC", "DESC"):
            raise ValueError("order must be ASC or DESC")
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"invalid status: {status[:40]}")
        return {"start_us": self._time_arg(query, "start_time"),
                "end_us": self._time_arg(query, "end_time"), "status": status,
                "q": query.get("q") or None, "desc": order == "DESC",
                "page": _int_arg(query, "page", 1, 1, 2**31),
                "size": _int_arg(query, "size", 10, 1, 65535),
                "fields": _fields_arg(query.get("fields"))}

    def _time_arg(self, query: dict[str, str], name: str) -> int | None:
        text = query.get(name)
        if not text:
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} is not an ISO-8601 date-time") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return (when - self.history.start) // timedelta(microseconds=1)

    def _render(self, idx: int, fields: frozenset[str] | None,
                date: str | None = None) -> dict[str, Any]:
        job, keys, message = self.history.meta(idx)
        job_id = job["job_id"]
        kind = self.faults.malformed.get(job_id)
        if job["status"] != "registered" and (fields is None or "job_info" in fields):
            if self.legacy:
                job = self.history.legacy_job(job_id)
                if kind in COUNTS_KINDS:
                    info = job["job_info"]
                    info["result"] = malform_result(info.get("result"), kind)
            else:
                if kind in COUNTS_KINDS or kind in ARCHIVE_KINDS:
                    keys = (*keys, "result") if "result" not in keys else keys
                date = date or self.now().strftime(_AMZ_DATE)
                info = {k: self.presign(job_id, k, date) for k in ARCHIVE_KEYS if k in keys}
                if message is not None:
                    info["message"] = message
                job = with_job_info(job, info)
        if kind in JOB_KINDS and job["status"] != "registered":
            job = malform_job(job, kind)
        if fields is not None:
            job = {k: v for k, v in job.items() if k in fields}
        return job

    def _job(self, h: _Handler, kind: str, job_id: str) -> None:
        idx = self.history.index(job_id)
        if idx is None:
            h.send_json(404, {"message": f"job not found: {job_id[:64]}"})
        elif kind == "job":
            h.send_json(200, self._render(idx, None))
        elif kind == "status":
            job = self._render(idx, frozenset({"job_id", "status"}))
            h.send_json(200, job)
        else:
            job, keys, _ = self.history.meta(idx)
            if "sse_log" not in keys:
                h.send_json(404, {"message": f"no SSE log for job {job_id}"})
                return
            files = self.history.sselog_files(job_id)
            data = zip_bytes([(name, text.encode()) for name, text in files.items()])
            h.send_json(200, {"file": base64.b64encode(data).decode(),
                              "file_name": f"sselog_{job_id}.zip"})

    def _devices(self, h: _Handler, device_id: str | None) -> None:
        devices = self.history.devices()
        if device_id is None:
            h.send_json(200, devices)
            return
        match = [d for d in devices if d["device_id"] == device_id]
        if match:
            h.send_json(200, match[0])
        else:
            h.send_json(404, {"message": f"device not found: {device_id[:64]}"})

    def _storage(self, h: _Handler, parts: list[str], query: dict[str, str]) -> None:
        if len(parts) != 3 or not parts[2].endswith(".zip"):
            h.send(404, _s3_error("NoSuchKey", "The specified key does not exist."),
                   "application/xml")
            return
        job_id, key = parts[1], parts[2][:-4]
        date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        signature = query.get("X-Amz-Signature", "")
        path = f"/storage/{job_id}/{key}.zip"
        if not hmac.compare_digest(signature.encode(), self._sign(path, date, expires).encode()):
            h.send(403, _s3_error("SignatureDoesNotMatch", "The request signature we calculated "
                                  "does not match the signature you provided."), "application/xml")
            return
        signed = datetime.strptime(date, _AMZ_DATE).replace(tzinfo=UTC)
        if self.now() > signed + timedelta(seconds=int(expires)):
            h.send(403, _s3_error("AccessDenied", "Request has expired"), "application/xml")
            return
        idx = self.history.index(job_id)
        kind = self.faults.malformed.get(job_id)
        broken = kind in COUNTS_KINDS or kind in ARCHIVE_KINDS
        keys = self.history.meta(idx)[1] if idx is not None else ()
        if idx is None or not (key in keys or (key == "result" and broken)):
            h.send(404, _s3_error("NoSuchKey", "The specified key does not exist."),
                   "application/xml")
            return
        if kind == "archive_never_arrives":
            h.send(500, _s3_error("InternalError", "We encountered an internal error."),
                   "application/xml")
            return
        if self.faults.expire_first_download:
            with self._lock:
                first = (job_id, key) not in self._downloaded
                self._downloaded.add((job_id, key))
            if first:
                h.send(403, _s3_error("AccessDenied", "Request has expired"), "application/xml")
                return
        body = self._archive(idx, key, kind if key == "result" and broken else None)
        h.send(200, body, "application/zip")

    def _build_archive(self, idx: int, key: str, kind: str | None) -> bytes:
        entry = ARCHIVE_ENTRIES[key]
        payload = self.history.payload(idx, key) if key in self.history.meta(idx)[1] else None
        if kind in COUNTS_KINDS:
            payload = malform_result(payload, kind)
        data = payload.encode() if isinstance(payload, str) and key == "sse_log" else (
            json.dumps(payload, ensure_ascii=False).encode())
        if kind in ARCHIVE_KINDS:
            return malformed_archive(kind, entry, data)
        return zip_bytes([(entry, data)])

    def _churn(self) -> None:
        with self._lock:
            if self._churned:
                return
            self._churned = True
        f = self.faults
        if f.add_during_listing:
            self.add_jobs(f.add_during_listing)
        if f.delete_during_listing:
            oldest, _ = self.history.list_page(page=1, size=f.delete_during_listing + 8)
            victims = [self.history.job_id(i) for i in oldest
                       if self.history.meta(i)[0]["status"] != "registered"]
            for job_id in victims[: f.delete_during_listing]:
                self.delete(job_id)


def serve_forever(cloud: FakeCloud, *, echo: Callable[[str], Any] = print,
                  stop: threading.Event | None = None) -> None:
    """Start `cloud` if needed, print its URL and token, block until Ctrl-C or `stop`, then stop."""
    cloud.start()
    echo(f"OQTOPUS_URL={cloud.url}")
    echo(f"OQTOPUS_API_TOKEN={cloud.token}")
    echo(f"Serving {len(cloud.history)} synthetic jobs; press Ctrl-C to stop.")
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()


@functools.lru_cache(maxsize=64)
def _signed_query(date: str, ttl: int) -> str:
    return (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=FAKEACCESSKEY%2F{date[:8]}"
            f"%2Fap-northeast-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={ttl}"
            "&X-Amz-SignedHeaders=host")


def _route(parts: list[str]) -> str:
    if parts == ["jobs"]:
        return "list"
    if len(parts) == 2 and parts[0] == "jobs":
        return "job"
    if len(parts) == 3 and parts[0] == "jobs" and parts[2] in ("status", "sselog"):
        return parts[2]
    if parts and parts[0] == "devices" and len(parts) <= 2:
        return "devices"
    if parts and parts[0] == "storage":
        return "storage"
    return "other"


def _int_arg(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def _fields_arg(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    if len(text) > 1024:
        raise ValueError("fields is longer than 1024 characters")
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - set(JOB_FIELDS)
    if unknown:
        raise ValueError(f"unknown field: {sorted(unknown)[0][:40]}")
    return names or None


def _s3_error(code: str, message: str) -> bytes:
    request_id = os.urandom(8).hex().upper()
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOqtopusCloud/1.0"
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True
    server: _Server

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

    def _not_allowed(self) -> None:
        self.server.cloud.requests.add("other")
        self.send_json(405, {"message": f"method {self.command} not allowed"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def send(self, status: int, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # One write for head and body: split small writes stall on Nagle + delayed ACK.
        self._headers_buffer.extend((b"\r\n", body))
        self.flush_headers()

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        self.send(status, body, "application/json", headers)

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks make thousands of requests


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], cloud: FakeCloud) -> None:
        self.cloud = cloud
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

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
