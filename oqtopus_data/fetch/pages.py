"""The pages of one window: one walk over them, and the page size a run settles on.

fastapi-pagination pages are `page` (from 1) and `size`; the OQTOPUS server refuses a size above 100 with a bare
HTTP 500, and answers a page past the end with `[]` (older servers with the last page again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from oqtopus_data.errors import ApiError
from oqtopus_data.fetch.windows import Window

#: fastapi-pagination's largest page, the server's own default.
DEFAULT_PAGE_SIZE = 100
#: Page sizes tried, in order, after the server refused a bigger one.
SIZE_LADDER = (100, 50, 20, 10)


class JobPages(Protocol):
    """What a listing needs of an API client: GET /jobs one page at a time (`ApiClient.list_page`)."""

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        """One page of GET /jobs; `tries=1` asks once without retrying."""
        ...


class PageSize:
    """The page size of a run: the requested one until the server refuses it, then the next that works."""

    def __init__(self, requested: int = DEFAULT_PAGE_SIZE, notice: Callable[[str], None] | None = None) -> None:
        if not 1 <= requested <= 65535:
            raise ValueError("page size must be between 1 and 65535")
        self.current = requested
        self.settled = False
        self._notice = notice or (lambda _message: None)
        self._lock = threading.Lock()

    def fetch(self, api: JobPages, params: dict[str, Any]) -> tuple[list[Any], int]:
        """One page at the current size (probing smaller sizes once if the server refuses it); the page and size."""
        if self.settled:
            return api.list_page({**params, "size": self.current}), self.current
        with self._lock:  # the first request of a run settles the size; other windows wait for it
            while not self.settled:
                size = self.current
                try:
                    page = api.list_page({**params, "size": size}, tries=1)
                except ApiError as exc:
                    smaller = [s for s in SIZE_LADDER if s < size]
                    if exc.status is None or not (exc.status == 400 or exc.status >= 500) or not smaller:
                        break  # not a refusal of the size: ask again the usual way, with retries
                    self._notice(f"GET /jobs refused page size {size} (HTTP {exc.status}); trying {smaller[0]}")
                    self.current = smaller[0]
                    continue
                self.settled = True
                return page, size
            self.settled = True
        return api.list_page({**params, "size": self.current}), self.current

    def reduce(self, size: int) -> None:
        """Use `size` from now on (the server caps pages below the size asked)."""
        with self._lock:
            if size < self.current:
                self._notice(f"GET /jobs returns at most {size} jobs a page; using page size {size}")
                self.current = size


class Walk:
    """One walk of one window at one page size: `params()` for the next page, `update()` with its jobs."""

    def __init__(self, window: Window, size: int) -> None:
        self.window = window
        self.size = size
        self.page = 1
        self.done = False
        self.pages: list[tuple[str, ...]] = []
        self.ids: set[str] = set()

    def params(self) -> dict[str, Any]:
        """Query parameters of the next page (the size is added by PageSize)."""
        return {"order": "ASC", "page": self.page, **self.window.params()}

    def update(self, jobs: list[Any]) -> list[Any]:
        """Take one page; return its jobs (those to look at), marking the walk done at the end of the list."""
        ids = tuple(job_identity(job) for job in jobs)
        if not ids or (self.pages and ids == self.pages[-1]):
            self.done = True  # `[]` past the end, or the last page again (older servers)
            return []
        self.pages.append(ids)
        self.ids.update(ids)
        self.page += 1
        return jobs

    def short_pages(self) -> list[int]:
        """Lengths of pages shorter than the size that were followed by more pages (jobs left out, or a cap)."""
        return [len(p) for p in self.pages[:-1] if len(p) < self.size]


def job_identity(job: Any) -> str:
    """What de-duplicates a listed job: its job_id, or (without one) its content."""
    if not isinstance(job, dict):
        return "content:" + repr(job)  # not a job object: listed once, and the export records it as an error
    job_id = job.get("job_id")
    if isinstance(job_id, str) and job_id:
        return job_id
    return "content:" + repr(sorted(job.items(), key=lambda item: item[0]))
