"""Resolving listed jobs: each job_info archive URL replaced by its decoded content, on a bounded thread pool,
and SSE logs fetched on request.

Presigned URLs expire: `ApiClient.presigned` renews them (one fresh GET /jobs/{id} serves every archive of a
job). A job whose GET /jobs/{id} answers 404 is reported as such (job and error None), not as an error: whether it
is really gone is the export's call (`state.SyncState.answered_404`). A body of another job than the one asked for
is that job's error. Every download reserves its bytes (and what is decoded from them) in the client's byte
budget, so memory stays bounded whatever the number of workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from oqtopus_data.client.api import DownloadFailed, ForeignBody, RefreshFailed
from oqtopus_data.client.archives import ArchiveError, read_archive, url_problem
from oqtopus_data.enums import TERMINAL, JobType
from oqtopus_data.errors import ApiError, JobError

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.limits import Hold

ARCHIVE_KEYS = ("input", "combined_program", "result", "transpile_result")
#: The stage of a job whose GET /jobs/{id} answered with another job's body (an anomaly a reconcile follows up).
FOREIGN = "body"

_T = TypeVar("_T")


class JobGone(Exception):
    """GET /jobs/{id} answered 404 (and its archive too): the job may have been deleted since it was listed."""


@dataclass
class FetchedJob:
    """One input job after resolving: the job, archives decoded, or the error that stopped it.

    `job` and `error` both None means GET /jobs/{id} answered 404 (deleted since it was listed, or so it says).
    With SSE logs asked for, `sse_log` is the raw zip of a finished SSE job's log (None: it has none) and
    `sse_log_error` why it could not be had; a log that failed never makes the job itself an error.
    """

    job_id: str | None
    job: dict | None
    error: JobError | None
    sse_log: bytes | None = None
    sse_log_error: JobError | None = None


def resolve_job(api: ApiClient, job: dict) -> dict:
    """A copy of `job` whose job_info archive URLs are replaced by their decoded content (`ApiClient.presigned`
    downloads them, renewing expired URLs)."""
    job_id = job.get("job_id")
    info = job.get("job_info")
    if job.get("status") == "registered" or not isinstance(info, dict):
        return dict(job)
    _check_urls(job_id, info)

    def read(key: str, body: bytearray, hold: Hold) -> object:
        # No name kept for the body: read_archive drops it as soon as it is inflated.
        return read_archive(body, key=key, limit=api.archive_limit, reserve=hold.grow)

    try:
        base, decoded = api.presigned(job_id if isinstance(job_id, str) else None, job, ARCHIVE_KEYS, read)
    except ArchiveError as exc:
        raise JobError(job_id, "archive", str(exc)) from None
    except ForeignBody as exc:
        raise fetch_error(job_id, exc) from None
    except RefreshFailed as exc:
        raise JobError(job_id, "fetch", str(exc)) from None
    except ApiError as exc:
        if exc.status == 404 and isinstance(job_id, str) and _deleted(api, job_id):
            raise JobGone(job_id) from None
        where = f"{exc.key}: " if isinstance(exc, DownloadFailed) else ""
        raise JobError(job_id, "archive", f"{where}{exc}") from None
    info = base["job_info"]
    _check_urls(job_id, info)
    return {**base, "job_info": {**info, **decoded}}


def _check_urls(job_id: Any, info: dict) -> None:
    """JobError when an archive value is neither a usable http(s) URL nor inline content."""
    for key in ARCHIVE_KEYS:
        problem = url_problem(key, info.get(key))
        if problem is not None:
            raise JobError(job_id, "archive", problem)


def fetch_error(job_id: str, exc: ApiError) -> JobError:
    """A failed GET /jobs/{id} as the job's error; a body of another job gets stage FOREIGN."""
    return JobError(job_id, FOREIGN if isinstance(exc, ForeignBody) else "fetch", str(exc))


def _deleted(api: ApiClient, job_id: str) -> bool:
    """Whether a job whose archive is missing was deleted (GET /jobs/{id} answers 404)."""
    try:
        api.get_job(job_id)
    except ApiError as exc:
        return exc.status == 404
    return False


def fetch_sse_log(api: ApiClient, job_id: str, job: dict | None = None) -> tuple[bytes | None, JobError | None]:
    """(the raw zip of the job's SSE log or None when it has none, the error that stopped it); `job` is the
    job as listed or resolved (default: a fresh GET /jobs/{id}). AuthError stops everything, as elsewhere."""
    try:
        return api.sse_log_archive(job_id, job), None
    except (ApiError, ArchiveError) as exc:
        return None, JobError(job_id, "sse_log", str(exc))


def fetch_jobs(
    api: ApiClient, jobs: Iterable[dict], *, workers: int = 16, resolve: bool = True, sse_logs: bool = False
) -> Iterator[FetchedJob]:
    """Resolve jobs on a bounded thread pool and yield them in input order, errors per job; with `sse_logs`,
    finished SSE jobs also get their log."""

    def wanted(job: Any) -> bool:
        if not isinstance(job, dict) or _job_id(job) is None or job.get("status") == "registered":
            return False
        return resolve or (sse_logs and has_log(job))

    def work(job: dict) -> FetchedJob:
        job_id = job["job_id"]
        try:
            resolved = resolve_job(api, job) if resolve else dict(job)
        except JobGone:
            return FetchedJob(job_id, None, None)
        except JobError as exc:
            return FetchedJob(job_id, None, _bare(exc))
        if not (sse_logs and has_log(resolved)):
            return FetchedJob(job_id, resolved, None)
        # The job as listed: its archive URLs say the server hands out presigned URLs (and has no sselog endpoint).
        return FetchedJob(job_id, resolved, None, *fetch_sse_log(api, job_id, job))

    for job, future in _in_order(work, jobs, workers, wanted):
        yield _collect(job, future)


def refetch_jobs(
    api: ApiClient, job_ids: Iterable[str], *, workers: int = 16
) -> Iterator[tuple[str, dict | None, JobError | None]]:
    """(job id, the job as GET /jobs/{id} answers now, or None when it answered 404, or the error) for each id in
    order: the exporter's look at jobs that were not terminal, or failed, last time."""

    def get(job_id: str) -> tuple[dict | None, JobError | None]:
        try:
            return api.get_job(job_id), None
        except ApiError as exc:
            return None, None if exc.status == 404 else fetch_error(job_id, exc)

    for job_id, future in _in_order(get, job_ids, workers):
        assert future is not None
        yield (job_id, *future.result())


def refetch_sse_logs(
    api: ApiClient, job_ids: Iterable[str], *, workers: int = 8
) -> Iterator[tuple[str, bytes | None, JobError | None]]:
    """(job id, log zip or None, error or None) for each id in order, each from a fresh GET /jobs/{id} (new
    presigned URLs): the exporter's retry of logs that failed before. A job deleted since has no log."""
    for job_id, future in _in_order(lambda job_id: fetch_sse_log(api, job_id), job_ids, workers):
        assert future is not None
        yield (job_id, *future.result())


def _in_order(
    work: Callable[[_T], Any], items: Iterable[_T], workers: int, wanted: Callable[[_T], bool] = lambda item: True
) -> Iterator[tuple[_T, Future | None]]:
    """(item, the future of `work(item)`, or None when not wanted) in input order, a bounded number ahead."""
    limit = max(1, workers) * 4  # futures in flight: memory stays flat for any history
    pending: deque[tuple[_T, Future | None]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="oqtopus-fetch")
    finished = False
    try:
        for item in items:
            if len(pending) >= limit:
                yield pending.popleft()
            pending.append((item, pool.submit(work, item) if wanted(item) else None))
        while pending:
            yield pending.popleft()
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
    return future.result()


def _bare(error: JobError) -> JobError:
    """The error without its traceback and the exceptions it came from: their frames would keep the job's
    buffers alive for as long as the result waits in the queue."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


def has_log(job: dict) -> bool:
    """Whether a job may have an SSE log: an SSE job that has finished (succeeded, failed or cancelled)."""
    return job.get("job_type") == JobType.SSE and job.get("status") in TERMINAL


def _job_id(job: dict) -> str | None:
    job_id = job.get("job_id")
    return job_id if isinstance(job_id, str) and job_id else None
