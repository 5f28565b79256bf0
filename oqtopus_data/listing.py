"""Walking GET /jobs: which pages to ask for so that no job is lost and none is seen twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from oqtopus_data.errors import ApiError
from oqtopus_data.times import format_time, parse_time, to_utc

if TYPE_CHECKING:
    from oqtopus_data.api import ApiClient

SKEW = timedelta(seconds=1)


def list_jobs(
    api: ApiClient,
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
        yield from pager.update(api.list_page({**pager.params(), **fixed}))


class WindowPager:
    """State of one time-window walk over GET /jobs: `params()` for the next request, `update()`."""

    def __init__(self, *, since: datetime | None, until: datetime | None, page_size: int) -> None:
        if not 1 <= page_size <= 65535:
            raise ValueError("page_size must be between 1 and 65535")
        self.cursor = to_utc(since) if since else None
        self.cursor_text = format_time(since) if since else None
        self.until = to_utc(until) if until else None
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


def _job_id(job: dict) -> str | None:
    job_id = job.get("job_id")
    return job_id if isinstance(job_id, str) and job_id else None


def _identity(job: Any) -> str:
    if not isinstance(job, dict):
        raise ApiError(f"GET /jobs: a listed job is {type(job).__name__}, not a JSON object")
    # A job without a job_id is still de-duplicated, by its content.
    return _job_id(job) or "content:" + repr(sorted(job.items(), key=lambda item: item[0]))
