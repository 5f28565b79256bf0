"""The OQTOPUS Cloud user API's endpoints over one pooled, retrying transport (`http.Transport`).

One method per endpoint; each returns the decoded JSON or raises `ApiError`/`AuthError`. Paging is not here: the
listing walk (`listing`) decides which pages to ask for. The set-up check lives beside it (`preflight`).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from oqtopus_data import __version__, preflight
from oqtopus_data.archives import ArchiveError, check_zip, is_url, read_entry, url_problem
from oqtopus_data.config import Credentials, check_token, check_url
from oqtopus_data.errors import ApiError
from oqtopus_data.http import DEFAULT_BUDGET, Stats, Transport
from oqtopus_data.limits import MIN_THROUGHPUT, ByteBudget, Hold

#: Presigned URLs refused (403) while they should still be valid are renewed by a fresh GET /jobs/{id} at most
#: this many times per job; URLs refused after their stated expiry are renewed up to MAX_RENEWALS times in all.
MAX_URL_REFRESHES = 2
MAX_RENEWALS = 8
#: A presigned URL that expires within this many seconds is renewed before it is tried.
EXPIRY_MARGIN = 1.0

_T = TypeVar("_T")


class DownloadFailed(ApiError):
    """A presigned URL's download failed for a reason other than its expiry; `key` names the archive."""

    def __init__(self, key: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.key = key


class RefreshFailed(ApiError):
    """GET /jobs/{id}, asked for fresh presigned URLs, failed (`status` says how: 404 when the job is gone)."""


class ForeignBody(ApiError):
    """GET /jobs/{id} answered with a body whose job_id is not the one asked for."""


class ApiClient:
    """The OQTOPUS Cloud user API over one pooled, retrying session; use it as a context manager.

    Limits: `archive_limit` bytes per archive, `json_limit` decoded bytes per API JSON body, `memory_budget`
    bytes of bodies held at once by all threads, and an overall deadline per attempt (`limits.Deadline`).
    `notice` hears about retries that wait several seconds (no token, no query strings)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        workers: int = 16,
        timeout: float | None = None,
        max_tries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        archive_limit: int = 256 * 2**20,
        json_limit: int = 64 * 2**20,
        memory_budget: int = DEFAULT_BUDGET,
        deadline: float | None = None,
        min_throughput: float = MIN_THROUGHPUT,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        check_url(credentials.url)
        check_token(credentials.token)
        self.credentials = credentials
        self.base_url = credentials.url.rstrip("/")
        self.workers = workers
        self.archive_limit = archive_limit
        self.json_limit = json_limit
        self.transport = Transport(
            token=credentials.token,
            proxy=credentials.proxy,
            pool_size=2 * max(1, workers) + 12,  # fetchers, up to 8 listing threads and refreshes share it
            timeout=credentials.timeout if timeout is None else timeout,
            max_tries=max_tries,
            backoff=backoff,
            max_backoff=max_backoff,
            sleep=sleep,
            user_agent=user_agent or f"oqtopus-data/{__version__}",
            deadline=deadline,
            min_throughput=min_throughput,
            budget=ByteBudget(memory_budget),
            notice=notice,
        )

    def server_now(self) -> datetime | None:
        """The server's clock now: the Date header of its latest API answer plus the time since (None: it sent
        none). A run's time rests on it rather than on this machine's clock, which may be wrong."""
        return self.transport.server_time()

    @property
    def session(self) -> Any:
        """The shared `requests.Session` (tests mount fake adapters on it)."""
        return self.transport.session

    @property
    def stats(self) -> Stats:
        """Requests by kind, retries and bytes downloaded so far."""
        return self.transport.stats

    @property
    def budget(self) -> ByteBudget:
        """The bytes of bodies held at once by every thread (downloads reserve here, decoding too)."""
        return self.transport.budget

    def close(self) -> None:
        """Release the pooled connections."""
        self.transport.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _api(self, path: str, kind: str, params: dict[str, Any] | None = None, *, tries: int | None = None,
             limit: int | None = None) -> Any:
        reply = self.transport.get(self.base_url + path, kind=kind, params=params, want_json=True, tries=tries,
                                   limit=self.json_limit if limit is None else limit)
        return reply.data

    def preflight(self) -> dict | None:
        """One fail-fast check of a run's set-up (`preflight.preflight`): the account (id, name, organization),
        None when the server does not say; ConfigError or AuthError when the set-up is wrong."""
        return preflight.preflight(self._api, self.base_url, self.credentials.proxy)

    # ---- endpoints ----------------------------------------------------------------------------------------
    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        """One page of GET /jobs with the given query parameters, as the JSON array the server sent.

        `tries=1` asks once without retrying (the listing probes a page size that way)."""
        jobs = self._api("/jobs", "list", params, tries=tries)
        if not isinstance(jobs, list):
            raise ApiError(f"GET /jobs: expected a JSON array of jobs, got {type(jobs).__name__}")
        return jobs

    def get_job(self, job_id: str) -> dict:
        """One job, with fresh presigned URLs in its job_info."""
        job = self._api(f"/jobs/{_segment(job_id)}", "job")
        if not isinstance(job, dict):
            raise ApiError(f"GET /jobs/{job_id}: expected a JSON object")
        if job.get("job_id") != job_id:  # a cache or gateway mixing answers up: never take it for this job
            raise ForeignBody(f"GET /jobs/{job_id} answered with the body of another job "
                              f"(job_id {str(job.get('job_id'))[:80]!r}); nothing of it was kept")
        return job

    def get_status(self, job_id: str) -> str:
        """The job's current status."""
        reply = self._api(f"/jobs/{_segment(job_id)}/status", "job")
        status = reply.get("status") if isinstance(reply, dict) else None
        if not isinstance(status, str):
            raise ApiError(f"GET /jobs/{job_id}/status: the reply has no status")
        return status

    def get_devices(self) -> list[dict]:
        """All devices; a presigned `device_info` URL is replaced by the JSON text it points to."""
        devices = self._api("/devices", "devices")
        if not isinstance(devices, list):
            raise ApiError("GET /devices: expected a JSON array of devices")
        return [self._resolve_device(device) for device in devices]

    def _resolve_device(self, device: Any) -> dict:
        if not isinstance(device, dict) or not is_url(device.get("device_info")):
            return device
        name = f"device {device.get('device_id')} device_info"
        problem = url_problem("device_info", device["device_info"])
        if problem is not None:
            raise ApiError(f"{name}: {problem}")
        with self.budget.hold() as hold:
            data = self.download(device["device_info"], limit=self.archive_limit, hold=hold)
            try:
                if data.startswith(b"PK\x03\x04"):
                    data = read_entry(data, key=name, limit=self.archive_limit, reserve=hold.grow)
                text = data.decode("utf-8-sig")
            except (ArchiveError, UnicodeDecodeError) as exc:
                raise ApiError(f"{name}: unreadable ({exc})") from None
        return {**device, "device_info": text}

    def get_sselog(self, job_id: str) -> dict:
        """{"file": base64 zip, "file_name": "sselog_<id>.log"} of an SSE job, as oqtopus-client 1.3.0 answers
        it (SSE result objects call this); ApiError with status 404 when the job has no log."""
        data = self.sse_log_archive(job_id)
        if data is None:
            raise ApiError(f"job {job_id}: the SSE log is not available", status=404)
        return {"file": base64.b64encode(data).decode("ascii"), "file_name": f"sselog_{job_id}.log"}

    def sse_log_archive(self, job_id: str, job: Mapping[str, Any] | None = None) -> bytes | None:
        """The raw zip of an SSE job's log, or None when the job has none (not run, cancelled, failed early).

        As oqtopus-client 1.3.0: the presigned archive `job_info.sse_log` of `job` (default: a fresh GET
        /jobs/{id}), renewed when it expired (`presigned`); GET /jobs/{id}/sselog only on older servers (job_info
        without any URL), a 404 there meaning no log. The archive may hold several files: only its zip directory
        is checked. Raises ApiError or ArchiveError when a log exists but cannot be had."""
        if job is None:
            job = self._job_or_none(job_id)
        if job is None:
            return None  # deleted on the server meanwhile: no log to have
        info = job.get("job_info")
        url = info.get("sse_log") if isinstance(info, Mapping) else None
        if not is_url(url):
            problem = url_problem("sse_log", url)
            if problem is not None:
                raise ApiError(problem)
            if isinstance(info, Mapping) and any(is_url(v) for v in info.values()):
                return None  # a server handing out presigned URLs has no sselog endpoint: no URL, no log

            return self._sselog_endpoint(job_id)

        def read(key: str, data: bytearray, hold: Hold) -> bytes:
            check_zip(data, key=key)
            return bytes(data)

        try:
            _, logs = self.presigned(job_id, job, ("sse_log",), read)
        except ApiError as exc:
            if exc.status == 404:
                return None  # no such object, or the job was deleted meanwhile: no log
            raise
        return logs.get("sse_log")

    def presigned(
        self, job_id: str | None, job: Mapping[str, Any], keys: Sequence[str],
        read: Callable[[str, bytearray, Hold], _T],
    ) -> tuple[Mapping[str, Any], dict[str, _T]]:
        """(the job whose URLs were used, {key: `read(key, body, hold)`}) for each of `keys` whose job_info value
        is a presigned URL; the one place presigned URLs are renewed.

        One fresh GET /jobs/{id} renews every expired URL of the job at once. A URL whose stated expiry
        (X-Amz-Date + X-Amz-Expires, on the server's clock) is near is renewed before it is tried, and a renewed
        URL does not wait out a shared pause (it would expire meanwhile). A URL refused (403) after its stated
        expiry costs a renewal, not an error; a job fails only when URLs that should still be valid are refused
        more than MAX_URL_REFRESHES times (or after MAX_RENEWALS renewals whatever the cause). Raises ApiError
        for a malformed URL, `RefreshFailed` when GET /jobs/{id} fails, and `DownloadFailed` for
        any other failure of a download, with its status. `read` runs with the body's bytes
        reserved in `hold`."""
        decoded: dict[str, _T] = {}
        refused = renewals = 0
        fresh = False  # whether `job` was just fetched to renew its URLs
        while True:
            info = job.get("job_info")
            if not isinstance(info, Mapping):
                raise RefreshFailed(f"GET /jobs/{job_id}: the job came back without job_info")
            stale: list[str] = []
            refused_now = False
            for key in keys:
                url = info.get(key)
                if key in decoded or not is_url(url):
                    continue
                if (problem := url_problem(key, url)) is not None:
                    raise ApiError(problem)
                expiry = self._expiry(url)
                if not fresh and expiry is not None and expiry - time.monotonic() < EXPIRY_MARGIN:
                    stale.append(key)  # about to expire: renew first rather than spend a request on a 403
                    continue
                try:
                    with self.budget.hold() as hold:
                        body = self.transport.get(url, kind="storage", limit=self.archive_limit, hold=hold,
                                                  pause=not fresh).body
                        decoded[key] = read(key, body, hold)
                        del body
                except ApiError as exc:
                    if exc.status != 403:
                        raise DownloadFailed(key, str(exc), status=exc.status) from None
                    stale.append(key)
                    refused_now |= expiry is None or expiry > time.monotonic()  # refused while still valid
            refused += refused_now
            if not stale:
                return job, decoded
            if not isinstance(job_id, str):
                raise ApiError(f"{', '.join(stale)}: the presigned URL was refused (HTTP 403)", status=403)
            if refused > MAX_URL_REFRESHES or renewals >= MAX_RENEWALS:
                raise ApiError(f"{', '.join(stale)}: the presigned URL was still refused (HTTP 403) after "
                               f"{renewals} refreshes", status=403)
            try:
                job = self.get_job(job_id)
            except ForeignBody:
                raise  # another job's body: that job's error (stage `body`), not a failed renewal
            except ApiError as exc:
                raise RefreshFailed(str(exc), status=exc.status) from None
            renewals += 1
            fresh = True

    def _expiry(self, url: str) -> float | None:
        """The monotonic time a presigned URL stops working, from its X-Amz-Date and X-Amz-Expires read on the
        server's clock (its Date header); None when the URL does not say."""
        date, expires = _query_value(url, "X-Amz-Date="), _query_value(url, "X-Amz-Expires=")
        if date is None or expires is None:
            return None
        try:  # 20240501T120000Z, read without strptime (which costs more than the rest of this method)
            signed = datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), int(date[9:11]), int(date[11:13]),
                              int(date[13:15]), tzinfo=UTC)
            lifetime = float(expires)
        except ValueError:
            return None
        return time.monotonic() + (signed - self.transport.server_now()).total_seconds() + lifetime

    def _job_or_none(self, job_id: str) -> dict | None:
        try:
            return self.get_job(job_id)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _sselog_endpoint(self, job_id: str) -> bytes | None:
        """GET /jobs/{id}/sselog of older servers: {"file": base64 zip, ...}; None on a 404 (no log, or no such
        endpoint) and on a 400 (the server's code refuses any job but a succeeded or failed SSE job with 400 "job
        has not finished yet" or "job is not an SSE job": a cancelled job, say, has no log to give)."""
        path = f"/jobs/{_segment(job_id)}/sselog"
        try:  # base64 makes the archive a third larger
            reply = self._api(path, "sselog", limit=self.archive_limit // 3 * 4 + 2**16)
        except ApiError as exc:
            if exc.status in (400, 404):
                return None
            raise
        encoded = reply.get("file") if isinstance(reply, dict) else None
        if not encoded:
            return None
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            raise ApiError(f"GET {path}: the file field is not base64") from None
        check_zip(data, key="sse_log")
        return data

    def download(self, url: str, *, limit: int | None = None, hold: Hold | None = None) -> bytes | bytearray:
        """The body at a presigned URL (no token sent), refused once it passes `limit` bytes. Its bytes stay
        reserved in `hold` (a `ByteBudget` reservation) when one is given, for the caller to decode them."""
        limit = self.archive_limit if limit is None else limit
        return self.transport.get(url, kind="storage", limit=limit, hold=hold).body


def _query_value(url: str, prefix: str) -> str | None:
    """The raw value of one query parameter (`prefix` is "name="), None when absent."""
    start = url.find("?")
    while start >= 0:
        if url.startswith(prefix, start + 1):
            end = url.find("&", start + 1)
            return url[start + 1 + len(prefix): end if end >= 0 else len(url)]
        start = url.find("&", start + 1)
    return None


def _segment(job_id: str) -> str:
    """A job id as one URL path segment; an id that is not valid text (a lone surrogate) cannot be asked for."""
    try:
        return quote(job_id, safe="")
    except UnicodeEncodeError:
        raise ApiError("the job id is not valid Unicode text (a lone surrogate): it cannot be put in a URL",
                       status=400) from None
