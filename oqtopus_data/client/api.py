"""The OQTOPUS Cloud user API's endpoints over one pooled, retrying transport (`http.Transport`).

One method per endpoint; each returns the decoded JSON or raises `ApiError`/`AuthError`. Paging is not here: the
listing walk (`listing`) decides which pages to ask for. The client's other duties live beside it and take it as an
argument: the set-up check (`preflight`), presigned downloads and their renewal (`presigned`), SSE logs (`sselog`).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from oqtopus_data import __version__
from oqtopus_data.client import preflight, presigned, sselog
from oqtopus_data.client.config import Credentials, check_token, check_url
from oqtopus_data.client.http import DEFAULT_BUDGET, Stats, Transport
from oqtopus_data.client.limits import MIN_THROUGHPUT, ByteBudget, Hold
from oqtopus_data.client.presigned import (
    EXPIRY_MARGIN,
    MAX_RENEWALS,
    MAX_URL_REFRESHES,
    DownloadFailed,
    ForeignBody,
    RefreshFailed,
)
from oqtopus_data.errors import ApiError

# Re-exported: their home is `presigned`.
__all__ = ["EXPIRY_MARGIN", "MAX_RENEWALS", "MAX_URL_REFRESHES", "ApiClient", "DownloadFailed", "ForeignBody",
           "RefreshFailed"]

_T = TypeVar("_T")


class ApiClient:
    """The OQTOPUS Cloud user API over one pooled, retrying transport; use it as a context manager.

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
        return self.transport.server_clock.time()

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
        return [presigned.resolve_device(self, device) for device in devices]

    def get_sselog(self, job_id: str) -> dict:
        """{"file": base64 zip, "file_name": "sselog_<id>.log"} of an SSE job, as oqtopus-client 1.3.0 answers
        it (SSE result objects call this); ApiError with status 404 when the job has no log."""
        data = self.sse_log_archive(job_id)
        if data is None:
            raise ApiError(f"job {job_id}: the SSE log is not available", status=404)
        return {"file": base64.b64encode(data).decode("ascii"), "file_name": f"sselog_{job_id}.log"}

    def sse_log_archive(self, job_id: str, job: Mapping[str, Any] | None = None) -> bytes | None:
        """The raw zip of an SSE job's log, None when it has none (`sselog.sse_log_archive`); `job` is the job
        as listed or resolved (default: a fresh GET /jobs/{id})."""
        return sselog.sse_log_archive(self, job_id, job)

    def sselog_file(self, job_id: str) -> bytes | None:
        """GET /jobs/{id}/sselog of older servers: the zip its base64 `file` field holds. None on a 404 (no log,
        or no such endpoint) and on a 400 (the server's code refuses any job but a succeeded or failed SSE job
        with 400 "job has not finished yet" or "job is not an SSE job": a cancelled job has no log to give)."""
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
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            raise ApiError(f"GET {path}: the file field is not base64") from None

    def presigned(
        self, job_id: str | None, job: Mapping[str, Any], keys: Sequence[str],
        read: Callable[[str, bytearray, Hold], _T],
    ) -> tuple[Mapping[str, Any], dict[str, _T]]:
        """(the job whose URLs were used, {key: `read(key, body, hold)`}) for each of `keys` whose job_info value
        is a presigned URL, expired URLs renewed by a fresh GET /jobs/{id} (`presigned.presigned`)."""
        return presigned.presigned(self, job_id, job, keys, read)

    def download(self, url: str, *, limit: int | None = None, hold: Hold | None = None) -> bytes | bytearray:
        """The body at a presigned URL (no token sent), refused once it passes `limit` bytes. Its bytes stay
        reserved in `hold` (a `ByteBudget` reservation) when one is given, for the caller to decode them."""
        limit = self.archive_limit if limit is None else limit
        return self.transport.get(url, kind="storage", limit=limit, hold=hold).body


def _segment(job_id: str) -> str:
    """A job id as one URL path segment; an id that is not valid text (a lone surrogate) cannot be asked for."""
    try:
        return quote(job_id, safe="")
    except UnicodeEncodeError:
        raise ApiError("the job id is not valid Unicode text (a lone surrogate): it cannot be put in a URL",
                       status=400) from None
