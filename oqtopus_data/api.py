"""The OQTOPUS Cloud user API's endpoints over one pooled, retrying transport (`http.Transport`).

One method per endpoint; each returns the decoded JSON or raises `ApiError`/`AuthError`. Paging is not here: the
listing walk (`listing`) decides which pages to ask for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from oqtopus_data import __version__
from oqtopus_data.archives import ArchiveError, is_url, read_entry
from oqtopus_data.config import Credentials
from oqtopus_data.errors import ApiError
from oqtopus_data.http import Stats, Transport


class ApiClient:
    """The OQTOPUS Cloud user API over one pooled, retrying session; use it as a context manager."""

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
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.base_url = credentials.url.rstrip("/")
        self.workers = workers
        self.archive_limit = archive_limit
        self.transport = Transport(
            token=credentials.token,
            proxy=credentials.proxy,
            pool_size=2 * max(1, workers) + 4,  # fetchers, the listing and refreshes share it
            timeout=credentials.timeout if timeout is None else timeout,
            max_tries=max_tries,
            backoff=backoff,
            max_backoff=max_backoff,
            sleep=sleep,
            user_agent=user_agent or f"oqtopus-data/{__version__}",
        )

    @property
    def session(self) -> Any:
        """The shared `requests.Session` (tests mount fake adapters on it)."""
        return self.transport.session

    @property
    def stats(self) -> Stats:
        """Requests by kind, retries and bytes downloaded so far."""
        return self.transport.stats

    def close(self) -> None:
        """Release the pooled connections."""
        self.transport.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _api(self, path: str, kind: str, params: dict[str, Any] | None = None, *, tries: int | None = None) -> Any:
        reply = self.transport.get(self.base_url + path, kind=kind, params=params, want_json=True, tries=tries)
        return reply.data

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        """One page of GET /jobs with the given query parameters, as the JSON array the server sent.

        `tries=1` asks once without retrying (the listing probes a page size that way)."""
        jobs = self._api("/jobs", "list", params, tries=tries)
        if not isinstance(jobs, list):
            raise ApiError(f"GET /jobs: expected a JSON array of jobs, got {type(jobs).__name__}")
        return jobs

    def get_job(self, job_id: str) -> dict:
        """One job, with fresh presigned URLs in its job_info."""
        job = self._api(f"/jobs/{quote(job_id, safe='')}", "job")
        if not isinstance(job, dict):
            raise ApiError(f"GET /jobs/{job_id}: expected a JSON object")
        return job

    def get_status(self, job_id: str) -> str:
        """The job's current status."""
        reply = self._api(f"/jobs/{quote(job_id, safe='')}/status", "job")
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
        data = self.download(device["device_info"], limit=self.archive_limit)
        name = f"device {device.get('device_id')} device_info"
        try:
            if data.startswith(b"PK\x03\x04"):
                data = read_entry(data, key=name, limit=self.archive_limit)
            text = data.decode("utf-8-sig")
        except (ArchiveError, UnicodeDecodeError) as exc:
            raise ApiError(f"{name}: unreadable ({exc})") from None
        return {**device, "device_info": text}

    def get_sselog(self, job_id: str) -> dict:
        """{"file": base64 zip, "file_name": str} of an SSE job; SSE result objects call this."""
        reply = self._api(f"/jobs/{quote(job_id, safe='')}/sselog", "sselog")
        if not isinstance(reply, dict):
            raise ApiError(f"GET /jobs/{job_id}/sselog: expected a JSON object")
        return reply

    def download(self, url: str, *, limit: int | None = None) -> bytes:
        """The body at a presigned URL (no token sent), refused once it passes `limit` bytes."""
        limit = self.archive_limit if limit is None else limit
        return self.transport.get(url, kind="storage", limit=limit).body
