"""An SSE job's log archive as the API gives it: the presigned `job_info.sse_log`, as oqtopus-client 1.3.0 reads
it, or GET /jobs/{id}/sselog on older servers.

Saving the archives is the export's (`sse`); this module only fetches them, through the client (`api.ApiClient`,
which imports this module: `Client` names what it uses of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from oqtopus_data.client import presigned
from oqtopus_data.client.archives import check_zip, is_url, url_problem
from oqtopus_data.client.limits import Hold
from oqtopus_data.errors import ApiError


class Client(presigned.Client, Protocol):
    """What fetching a log uses of `api.ApiClient`."""

    def sselog_file(self, job_id: str) -> bytes | None:
        """GET /jobs/{id}/sselog: the zip its `file` field holds, None when the job has no log."""
        ...


def sse_log_archive(client: Client, job_id: str, job: Mapping[str, Any] | None = None) -> bytes | None:
    """The raw zip of an SSE job's log, or None when the job has none (not run, cancelled, failed early).

    As oqtopus-client 1.3.0: the presigned archive `job_info.sse_log` of `job` (default: a fresh GET
    /jobs/{id}), renewed when it expired (`presigned.presigned`); GET /jobs/{id}/sselog only on older servers
    (job_info without any URL), a 404 there meaning no log. The archive may hold several files: only its zip
    directory is checked. Raises ApiError or ArchiveError when a log exists but cannot be had."""
    if job is None:
        job = _job_or_none(client, job_id)
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

        return _sselog_endpoint(client, job_id)

    def read(key: str, data: bytearray, hold: Hold) -> bytes:
        check_zip(data, key=key)
        return bytes(data)

    try:
        _, logs = presigned.presigned(client, job_id, job, ("sse_log",), read)
    except ApiError as exc:
        if exc.status == 404:
            return None  # no such object, or the job was deleted meanwhile: no log
        raise
    return logs.get("sse_log")


def _job_or_none(client: Client, job_id: str) -> dict | None:
    try:
        return client.get_job(job_id)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _sselog_endpoint(client: Client, job_id: str) -> bytes | None:
    """GET /jobs/{id}/sselog of older servers, its zip directory checked; None when it has no log."""
    data = client.sselog_file(job_id)
    if data is not None:
        check_zip(data, key="sse_log")
    return data
