"""Resolving listed jobs: each job_info archive URL replaced by its decoded content, on a bounded thread pool.

Presigned URLs expire: one fresh GET /jobs/{id} serves every expired archive of a job. A job deleted on the server
while the export runs is dropped, not an error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oqtopus_data.archives import ArchiveError, is_url, read_archive
from oqtopus_data.errors import ApiError, AuthError, JobError

if TYPE_CHECKING:
    from oqtopus_data.api import ApiClient

ARCHIVE_KEYS = ("input", "combined_program", "result", "transpile_result")
MAX_URL_REFRESHES = 2


class JobGone(Exception):
    """The job was deleted on the server after it was listed: nothing to export, nothing failed."""


@dataclass
class FetchedJob:
    """One input job after resolving: the job, archives decoded, or the error that stopped it.

    `job` and `error` both None means the job was deleted on the server while the export ran.
    """

    job_id: str | None
    job: dict | None
    error: JobError | None


def resolve_job(api: ApiClient, job: dict) -> dict:
    """A copy of `job` whose job_info archive URLs are replaced by their decoded content."""
    job_id = job.get("job_id")
    info = job.get("job_info")
    if job.get("status") == "registered" or not isinstance(info, dict):
        return dict(job)
    base, decoded = job, {}
    for refresh in range(MAX_URL_REFRESHES + 1):
        expired = _download_archives(api, job_id, info, decoded)
        if expired is None:
            return {**base, "job_info": {**info, **decoded}}
        if not isinstance(job_id, str):
            raise JobError(None, "archive", f"{expired}: the presigned URL was refused (HTTP 403)")
        if refresh == MAX_URL_REFRESHES:
            break
        try:
            base = api.get_job(job_id)
        except AuthError:
            raise
        except ApiError as exc:
            raise JobError(job_id, "fetch", str(exc)) from None
        info = base.get("job_info")
        if not isinstance(info, dict):
            raise JobError(job_id, "fetch", "the job came back without job_info")
    raise JobError(
        job_id,
        "archive",
        f"{expired}: the presigned URL was still refused (HTTP 403) "
        f"after {MAX_URL_REFRESHES} refreshes",
    )


def _download_archives(
    api: ApiClient, job_id: str | None, info: dict, decoded: dict[str, object]
) -> str | None:
    """Decode the pending archives into `decoded`; return the keys whose URLs expired, if any did.

    Every pending archive is tried before a refresh, so one fresh GET /jobs/{id} serves them all.
    """
    expired = []
    for key in ARCHIVE_KEYS:
        url = info.get(key)
        if key in decoded or not is_url(url):
            continue
        try:
            data = api.download(url, limit=api.archive_limit)
        except AuthError:
            raise
        except ApiError as exc:
            if exc.status == 403:
                expired.append(key)
                continue
            if exc.status == 404 and isinstance(job_id, str) and _deleted(api, job_id):
                raise JobGone(job_id) from None
            raise JobError(job_id, "archive", f"{key}: {exc}") from None
        try:
            decoded[key] = read_archive(data, key=key, limit=api.archive_limit)
        except ArchiveError as exc:
            raise JobError(job_id, "archive", str(exc)) from None
    return ", ".join(expired) or None


def _deleted(api: ApiClient, job_id: str) -> bool:
    """Whether a job whose archive is missing was deleted (GET /jobs/{id} answers 404)."""
    try:
        api.get_job(job_id)
    except ApiError as exc:
        return exc.status == 404
    return False


def fetch_jobs(
    api: ApiClient, jobs: Iterable[dict], *, workers: int = 16, resolve: bool = True
) -> Iterator[FetchedJob]:
    """Resolve jobs on a bounded thread pool and yield them in input order, errors per job."""
    limit = max(1, workers) * 4  # futures in flight: memory stays flat for any history
    pending: deque[tuple[Any, Future | None]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="oqtopus-fetch")
    finished = False
    try:
        for job in jobs:
            if len(pending) >= limit:
                yield _collect(*pending.popleft())
            wanted = resolve and isinstance(job, dict) and _job_id(job) is not None
            wanted = wanted and job.get("status") != "registered"
            pending.append((job, pool.submit(resolve_job, api, job) if wanted else None))
        while pending:
            yield _collect(*pending.popleft())
        finished = True
    finally:
        # On an error or an abandoned generator, drop queued work instead of waiting for it.
        pool.shutdown(wait=finished, cancel_futures=True)


def _collect(job: Any, future: Future | None) -> FetchedJob:
    if not isinstance(job, dict):
        return FetchedJob(None, None, JobError(None, "list", "a listed job is not a JSON object"))
    job_id = _job_id(job)
    if job_id is None:
        return FetchedJob(None, None, JobError(None, "list", "a listed job has no job_id"))
    if future is None:
        return FetchedJob(job_id, dict(job), None)
    try:
        return FetchedJob(job_id, future.result(), None)
    except JobError as exc:
        return FetchedJob(job_id, None, exc)
    except JobGone:
        return FetchedJob(job_id, None, None)


def _job_id(job: dict) -> str | None:
    job_id = job.get("job_id")
    return job_id if isinstance(job_id, str) and job_id else None
