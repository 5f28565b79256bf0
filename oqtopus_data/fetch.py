"""List a user's jobs from the OQTOPUS Cloud user API and resolve their result archives.

Paging: `GET /jobs` answers a page number past the end with its last page again, and page numbers
shift while jobs are submitted or deleted, so counting pages can loop forever or skip jobs. We page
by time window instead: ask for `start_time=<cursor>&order=ASC&page=1`, de-duplicate by job_id and
move the cursor to the newest submitted_at seen, inclusive, so the boundary is read again. Only
when a page lies entirely at the cursor's timestamp (more jobs share it than fit a page) do we step
`page` for that cursor. The walk ends when a page brings no job we have not seen, never on an empty
or short page (gateways cap page sizes). Only ids at or after the cursor are remembered.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from oqtopus_data import __version__
from oqtopus_data.archives import ArchiveError, read_archive, read_entry
from oqtopus_data.config import Credentials
from oqtopus_data.errors import ApiError, AuthError, JobError
from oqtopus_data.http import Stats, Transport

ARCHIVE_KEYS = ("input", "combined_program", "result", "transpile_result")
MAX_URL_REFRESHES = 2
SKEW = timedelta(seconds=1)


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

    def _api(self, path: str, kind: str, params: dict[str, Any] | None = None) -> Any:
        reply = self.transport.get(self.base_url + path, kind=kind, params=params, want_json=True)
        return reply.data

    def list_jobs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        page_size: int = 500,
        q: str | None = None,
    ) -> Iterator[dict]:
        """Every job submitted in [since, until] once, oldest first, and registered jobs."""
        pager = WindowPager(since=since, until=until, page_size=page_size)
        fixed: dict[str, Any] = {"order": "ASC", "size": page_size}
        if until is not None:
            fixed["end_time"] = format_time(until)
        if status is not None:
            fixed["status"] = status
        if q is not None:
            fixed["q"] = q
        while not pager.done:
            jobs = self._api("/jobs", "list", {**pager.params(), **fixed})
            if not isinstance(jobs, list):
                kind = type(jobs).__name__
                raise ApiError(f"GET /jobs: expected a JSON array of jobs, got {kind}")
            yield from pager.update(jobs)

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


class WindowPager:
    """State of one time-window walk over GET /jobs: `params()` for the next request, `update()`."""

    def __init__(self, *, since: datetime | None, until: datetime | None, page_size: int) -> None:
        if not 1 <= page_size <= 65535:
            raise ValueError("page_size must be between 1 and 65535")
        self.cursor = _aware(since) if since else None
        self.cursor_text = format_time(since) if since else None
        self.until = _aware(until) if until else None
        self.page = 1
        self.done = False
        self._seen: dict[str, datetime] = {}  # ids at or after the cursor
        self._unstamped: set[str] = set()  # ids without submitted_at (registered jobs)
        self._streak: set[tuple[str, ...]] = set()  # pages at this cursor that brought nothing new

    @property
    def remembered(self) -> int:
        """How many job ids the pager holds to de-duplicate (those at or after the cursor)."""
        return len(self._seen) + len(self._unstamped)

    def params(self) -> dict[str, Any]:
        """Query parameters for the next page."""
        params: dict[str, Any] = {"page": self.page}
        if self.cursor_text is not None:
            params["start_time"] = self.cursor_text
        return params

    def update(self, jobs: list[Any]) -> list[dict]:
        """Take one page: return the jobs not seen before, in served order, and move the cursor."""
        ids = tuple(_identity(job) for job in jobs)
        new: list[dict] = []
        newest: tuple[datetime, str] | None = None
        behind = 0
        for job, ident in zip(jobs, ids, strict=True):
            stamp = parse_time(job.get("submitted_at"))
            if stamp is not None:
                if self.cursor is not None and stamp < self.cursor:
                    # Walked past already; far behind means start_time was not applied at all.
                    behind += stamp < self.cursor - SKEW
                    continue
                if self.until is not None and stamp > self.until:
                    continue
                if newest is None or stamp > newest[0]:
                    newest = (stamp, job["submitted_at"])
            if ident in self._seen or ident in self._unstamped:
                continue
            if stamp is None:
                self._unstamped.add(ident)
            else:
                self._seen[ident] = stamp
            new.append(job)
        if behind:
            raise ApiError(
                f"GET /jobs: the server ignored start_time (sent jobs older than {self.cursor_text}); "
                "cannot page through the job list safely"
            )
        self._advance(ids, new, newest)
        return new

    def _advance(
        self, ids: tuple[str, ...], new: list[dict], newest: tuple[datetime, str] | None
    ) -> None:
        at_cursor = newest is None or newest[0] == self.cursor
        if new and not at_cursor:
            assert newest is not None
            self.cursor, self.cursor_text = newest
            self.page = 1
            self._seen = {i: t for i, t in self._seen.items() if t >= newest[0]}
            self._streak = set()
        elif not ids or (not new and (not at_cursor or ids in self._streak)):
            self.done = True  # nothing new, and no more jobs can hide at the cursor's timestamp
        else:
            # The whole page sits at the cursor's timestamp: the next jobs are on the next page.
            self._streak = {ids} if new else self._streak | {ids}
            self.page += 1


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


def is_url(value: object) -> bool:
    """Whether a job_info item is a (presigned) http(s) URL rather than inline content."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def parse_time(value: object) -> datetime | None:
    """An API date-time as an aware UTC datetime; None when absent or unparseable."""
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with a Z, as the API writes it."""
    return _aware(value).isoformat().replace("+00:00", "Z")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _job_id(job: dict) -> str | None:
    job_id = job.get("job_id")
    return job_id if isinstance(job_id, str) and job_id else None


def _identity(job: Any) -> str:
    if not isinstance(job, dict):
        raise ApiError(f"GET /jobs: a listed job is {type(job).__name__}, not a JSON object")
    # A job without a job_id is still de-duplicated, by its content.
    return _job_id(job) or "content:" + repr(sorted(job.items(), key=lambda item: item[0]))
