"""A local OQTOPUS Cloud: the user API over a synthetic history, quirks and faults included.

Standard library only. `FakeCloud` serves GET /jobs, /jobs/{id}, /jobs/{id}/status,
/jobs/{id}/sselog (spec API and inline job_info only; 400 for a job that is not a finished SSE
job, as the server's code), /users/me, /devices, /devices/{id} (token in `q-api-token`) and the
presigned /storage/{job_id}/{key}.zip archives that job_info points at (signed, expiring, no
token). By default it behaves like the OQTOPUS Cloud server's code (see behaviour.py).
"""

from __future__ import annotations

import base64
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oqtopus_data.testing import extras
from oqtopus_data.testing.behaviour import ApiBehaviour, ListQuery, Refusal, behaviour, parse_list_query
from oqtopus_data.testing.catalog import ARCHIVE_KEYS
from oqtopus_data.testing.faults import (
    COUNTS_KINDS,
    JOB_KINDS,
    Faults,
    TokenBucket,
    malform_job,
    malform_result,
)
from oqtopus_data.testing.httpd import Handler, RequestCounts, Server, s3_error
from oqtopus_data.testing.jobmeta import with_job_info
from oqtopus_data.testing.storage import PresignedStorage, amz_date, archive_keys
from oqtopus_data.testing.synth import History, generate_history

_sleep = time.sleep  # the latency fault's sleep; tests replace it
DEMO_TOKEN = "demo-token"  # noqa: S105  (the fake cloud's public default, not a secret)
NOT_FOUND = "job not found with the given id"
DEFAULT_ACCOUNT: Mapping[str, Any] = {
    "id": "0190f3c2-5b1e-7c43-9d2a-3f6e8a1b2c4d", "email": "demo@example.com",
    "name": "Demo User", "organization": "OQTOPUS demo lab", "created_at": "2023-10-02T04:15:00Z"}


class FakeCloud:
    """The OQTOPUS Cloud user API on 127.0.0.1 over a synthetic `History`; a context manager.

    `api`: "server" (default, like the server's code), "newest" (its newest generation: windows on
    submitted_at in UTC, a status filter), "spec" (the older behaviours) or an ApiBehaviour.
    Archive URLs live `url_ttl` seconds on the clock of `now()`, which is also the history's clock.
    `legacy=True` serves job_info inline (old servers, which also answer GET /jobs/{id}/sselog).
    `account`: what GET /users/me answers (None: 404, servers without it). `undeclared`: jobs carry
    keys no schema declares (for a generated history). `faults` can be changed while serving.
    """

    def __init__(self, n_jobs: int = 500, *, seed: int = 0, token: str = DEMO_TOKEN,
                 history: History | None = None, faults: Faults | None = None,
                 legacy: bool = False, url_ttl: int = 3600, port: int = 0,
                 api: str | ApiBehaviour = "server",
                 account: Mapping[str, Any] | None = DEFAULT_ACCOUNT,
                 undeclared: bool = False) -> None:
        self.api = behaviour(api)
        self.history = history if history is not None else generate_history(
            n_jobs, seed=seed, undeclared=undeclared)
        self.history.clock = self.now
        self.token = token
        self.faults = faults if faults is not None else Faults()
        self.legacy = legacy
        self.url_ttl = url_ttl
        self.port = port
        self.account = dict(account) if account is not None else None
        self.requests = RequestCounts()
        self.connections_opened = 0  # TCP connections accepted: keep-alive keeps this low
        self.added_ids: list[str] = []
        self.deleted_ids: list[str] = []
        self.hook_errors: list[Exception] = []  # exceptions raised by Faults.on_list
        self._clock: datetime | None = None
        self._clock_offset = 0.0
        self._lock = threading.Lock()
        self._churned = False
        self._server: Server | None = None
        self._url = ""
        self._thread: threading.Thread | None = None
        self.storage = PresignedStorage(self)
        self._bucket = TokenBucket(time.monotonic)  # Faults.rate_limit

    def __repr__(self) -> str:
        where = self._server and self.url
        return (f"FakeCloud(url={where!r}, jobs={len(self.history)}, api={self.api.name!r}, "
                f"legacy={self.legacy})")

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self, port: int | None = None) -> FakeCloud:
        """Bind 127.0.0.1 (port 0 = any free port) and serve from a daemon thread."""
        if self._server is not None:
            return self
        self._server = Server(("127.0.0.1", self.port if port is None else port), self)
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
        """The server's clock: presigned URL expiry, and when added jobs are created."""
        base = self._clock if self._clock is not None else datetime.now(UTC)
        return base + timedelta(seconds=self._clock_offset)

    def set_clock(self, when: datetime | None) -> None:
        """Freeze the clock at `when` (None: back to real time); resets advance_clock."""
        self._clock = when if when is None or when.tzinfo else when.replace(tzinfo=UTC)
        self._clock_offset = 0.0

    def advance_clock(self, seconds: float) -> None:
        """Move the clock forward, e.g. past the URL lifetime to expire handed-out URLs."""
        self._clock_offset += seconds

    def add_jobs(self, n: int, **options: Any) -> list[str]:
        """Create `n` jobs now (History.add_jobs `options`); they are in `added_ids` too."""
        ids = self.history.add_jobs(n, at=self.now(), **options)
        self.added_ids += ids
        return ids

    def submit(self, job_id: str) -> None:
        """Submit a registered job now."""
        self.history.submit(job_id, at=self.now())

    def finish(self, job_id: str, status: str = "succeeded") -> None:
        """Make a non-terminal job terminal: it gains its timestamps and result."""
        self.history.finish(job_id, status)

    def delete(self, job_id: str) -> None:
        """Delete a job of any status (then 404, gone from listings, archives 404); recorded in
        `deleted_ids`. The real server deletes only terminal jobs: see `delete_oldest`."""
        self.history.delete(job_id)
        self.deleted_ids.append(job_id)

    def delete_oldest(self, n: int, *, newest: bool = False) -> list[str]:
        """Delete the `n` oldest-created terminal jobs (newest with `newest`); return their ids."""
        ids = self.history.terminal_ids(n, newest=newest)
        for job_id in ids:
            self.delete(job_id)
        return ids

    def presign(self, job_id: str, key: str, date: str | None = None) -> str:
        """A fresh presigned storage URL for one of the job's archives (`date`: X-Amz-Date)."""
        return self.storage.presign(job_id, key, date)

    # ---- request handling ---------------------------------------------------------------------
    def _handle(self, h: Handler) -> None:
        split = urlsplit(h.path)
        parts = [p for p in split.path.split("/") if p]
        kind = _route(parts)
        n = self.requests.add(kind)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.history.settle()  # two-step submissions whose time has come
        f = self.faults
        if f.latency > 0:
            _sleep(f.latency)
        storage = kind == "storage"
        if f.drop_every and n % f.drop_every == 0:
            h.drop()
        elif (periodic := bool(f.rate_limit_every and n % f.rate_limit_every == 0)) or (
                f.rate_limit > 0 and not self._bucket.take(f.rate_limit)):
            retry = {"Retry-After": f"{f.retry_after:g}"} if periodic else {}
            if storage:
                h.send(503, s3_error("SlowDown", "Please reduce your request rate."),
                       "application/xml", retry)
            else:
                h.send_json(429, {"message": "Too Many Requests"}, retry)
        elif f.error_every and n % f.error_every == 0:
            if storage:
                h.send(500, s3_error("InternalError", "We encountered an internal error."),
                       "application/xml")
            else:
                h.send_json(500, {"message": "Internal Server Error"})
        elif storage:
            self.storage.handle(h, parts, query)
        elif not hmac.compare_digest(h.headers.get("q-api-token", "").encode(),
                                     self.token.encode()):
            h.send_json(401, {"message": "Unauthorized: missing or invalid q-api-token"})
        elif kind == "list":
            self._list(h, query)
        elif kind in ("job", "status", "sselog"):
            self._job(h, kind, parts[1])
        elif kind == "user":
            h.send_json(*((200, self.account) if self.account is not None
                          else (404, {"message": "Not Found"})))
        elif kind == "devices":
            self._devices(h, parts[1] if len(parts) > 1 else None)
        else:
            h.send_json(404, {"message": f"no such endpoint: {split.path[:100]}"})

    def _list(self, h: Handler, query: dict[str, str]) -> None:
        hook = self.faults.on_list
        if hook is not None:
            try:
                answer = hook(self, dict(query))
            except Exception as exc:  # a test's hook failed: make it visible, keep serving
                self.hook_errors.append(exc)
                h.send_json(500, {"message": f"on_list hook failed: {type(exc).__name__}"})
                return
            if answer is not None:  # the hook answers in the server's place (a 403, a 500)
                h.send_json(*answer)
                return
        try:
            args = parse_list_query(self.api, query)
        except Refusal as exc:
            h.send_json(exc.status, {"message": exc.message})
            return
        idxs = self._page(args)
        cap = self.faults.page_size_cap
        if cap > 0:
            idxs = idxs[:cap]
        hidden = self.faults.unrenderable
        if hidden:  # the server drops what it cannot render after taking the page
            idxs = [i for i in idxs if self.history.job_id(i) not in hidden]
        date = amz_date(self.now())
        jobs = [self._render(i, args.fields, date) for i in idxs]
        if self.faults.add_during_listing or self.faults.delete_during_listing:
            self._churn()  # before answering, so the client sees it on its next request
        h.send_json(200, jobs)

    def _page(self, args: ListQuery) -> list[int]:
        api, history = self.api, self.history
        start = None if args.start is None else history.to_us(args.start)
        end = None if args.end is None else history.to_us(args.end)
        idxs, _ = history.list_page(
            by="created" if api.order_by == "created_at" else "submitted",
            window="created" if api.window_on == "created_at" else "submitted", start_us=start,
            end_us=end, status=args.status, q=args.q, q_in_id=api.q_matches_id, desc=args.desc,
            page=args.page, size=args.size, repeat_last=api.past_end == "repeat")
        return idxs

    def _render(self, idx: int, fields: frozenset[str] | None,
                date: str | None = None) -> dict[str, Any]:
        meta = self.history.meta(idx)
        job, job_id = meta.job, meta.job["job_id"]
        kind = self.faults.malformed.get(job_id)
        if job["status"] != "registered" and (fields is None or "job_info" in fields):
            if self.legacy:
                job = self.history.legacy_job(job_id)
                if kind in COUNTS_KINDS:
                    info = job["job_info"]
                    info["result"] = malform_result(info.get("result"), kind)
            else:
                keys = archive_keys(self.history, idx, kind)
                date = date or amz_date(self.now())
                info = {k: self.presign(job_id, k, date) for k in ARCHIVE_KEYS if k in keys}
                if meta.message is not None:
                    info["message"] = meta.message
                info.update(meta.info_extras)
                if extras.URL_KEY in keys:
                    info[extras.URL_KEY] = self.presign(job_id, extras.URL_KEY, date)
                job = with_job_info(job, info)
        if kind in JOB_KINDS and job["status"] != "registered":
            job = malform_job(job, kind)
        if fields is not None:
            job = {k: v for k, v in job.items() if k in fields}
        return job

    def _job(self, h: Handler, kind: str, job_id: str) -> None:
        if kind == "sselog" and not (self.api.sselog_endpoint or self.legacy):
            h.send_json(404, {"message": "Not Found"})
            return
        override = self.faults.on_job(self, job_id) if kind == "job" and self.faults.on_job else None
        if override is not None:
            h.send_json(*override)
            return
        idx = self.history.index(job_id)
        if idx is None or (kind != "status" and job_id in self.faults.unrenderable):
            h.send_json(404, {"message": NOT_FOUND})
        elif kind == "job":
            h.send_json(200, self._render(idx, None))
        elif kind == "status":
            h.send_json(200, self._render(idx, frozenset({"job_id", "status"})))
        elif (refused := _sselog_refusal(self.history.meta(idx).job)) is not None:
            h.send_json(400, {"message": refused})
        elif "sse_log" not in self.history.meta(idx).keys:
            h.send_json(404, {"message": "log file not found"})
        elif job_id in self.faults.sse_log_errors:
            h.send_json(500, {"message": "Failed to get the log file"})
        else:
            h.send_json(200, {"file": base64.b64encode(self.storage.archive(idx, "sse_log", None)).decode(),
                              "file_name": f"sselog_{job_id}.zip"})

    def _devices(self, h: Handler, device_id: str | None) -> None:
        devices = self.history.devices(legacy=self.legacy)
        if device_id is None:
            h.send_json(200, devices)
            return
        match = [d for d in devices if d["device_id"] == device_id]
        if match:
            h.send_json(200, match[0])
        else:
            h.send_json(404, {"message": f"device not found: {device_id[:64]}"})

    def _churn(self) -> None:
        with self._lock:
            if self._churned:
                return
            self._churned = True
        f = self.faults
        if f.add_during_listing:
            self.add_jobs(f.add_during_listing)
        if f.delete_during_listing:
            self.delete_oldest(f.delete_during_listing)


def serve_forever(cloud: FakeCloud, *, echo: Callable[[str], Any] = print,
                  stop: threading.Event | None = None) -> None:
    """Start `cloud` if needed, print its URL and token, block until Ctrl-C or `stop`, then stop."""
    cloud.start()
    echo(f"OQTOPUS_URL={cloud.url}")
    echo(f"OQTOPUS_API_TOKEN={cloud.token}")
    echo(f"Serving {len(cloud.history)} synthetic jobs ({cloud.api.name} API); "
         "press Ctrl-C to stop.")
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()


def _sselog_refusal(job: Mapping[str, Any]) -> str | None:
    """Why the server's GET /jobs/{id}/sselog refuses a job with 400 (only succeeded and failed SSE jobs have
    logs to ask for), or None."""
    if job.get("job_type") != "sse":
        return "job is not an SSE job"
    if job.get("status") not in ("succeeded", "failed"):
        return "job has not finished yet"
    return None


def _route(parts: list[str]) -> str:
    if parts == ["jobs"]:
        return "list"
    if len(parts) == 2 and parts[0] == "jobs":
        return "job"
    if len(parts) == 3 and parts[0] == "jobs" and parts[2] in ("status", "sselog"):
        return parts[2]
    if parts == ["users", "me"]:
        return "user"
    if parts and parts[0] == "devices" and len(parts) <= 2:
        return "devices"
    if parts and parts[0] == "storage":
        return "storage"
    return "other"
