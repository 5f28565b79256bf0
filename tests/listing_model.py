"""A pure-Python model of GET /jobs as the OQTOPUS server's code runs it, for testing the listing walk fast.

It filters `start_time <= created_at <= end_time` on whole-second creation times the client never sees, shifted by
`shift` (a server comparing bounds in another time zone), orders by (created_at, job_id), pages like
fastapi-pagination (size 1..max_size, a bigger size is HTTP 500, `[]` past the end, or the last page again with
`repeat_last`), leaves unrenderable jobs out of their page, and can cap pages silently or ignore start_time.
`hook(model, params)` runs before each answer, to insert or delete jobs mid-walk.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from oqtopus_data.errors import ApiError

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def iso(seconds: float) -> str:
    """An instant `seconds` after EPOCH as the API writes it."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@dataclass
class ModelJobs:
    """The server's jobs table and its listing endpoint."""

    shift: float = 0.0  # seconds added to every bound before comparing
    max_size: int = 100
    repeat_last: bool = False
    cap: int = 0
    ignore_start: bool = False
    unrenderable: set[str] = field(default_factory=set)
    hook: Callable[[ModelJobs, dict[str, Any]], None] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    _rows: list[tuple[int, str]] = field(default_factory=list)  # (created second, job_id), sorted
    _jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, job_id: str, created: int, submitted: float | None) -> None:
        """A job created at second `created` and submitted `submitted` seconds after EPOCH (None: registered)."""
        with self._lock:
            job: dict[str, Any] = {"job_id": job_id, "status": "succeeded" if submitted is not None else "registered"}
            if submitted is not None:
                job["submitted_at"] = iso(submitted)
            self._jobs[job_id] = job
            bisect.insort(self._rows, (created, job_id))

    def delete(self, job_id: str) -> None:
        with self._lock:
            row = next(r for r in self._rows if r[1] == job_id)
            self._rows.remove(row)
            del self._jobs[job_id]

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        """GET /jobs with `params`, as the ApiClient method of the same name."""
        with self._lock:
            self.calls.append(dict(params))
            if self.hook is not None:
                self.hook(self, params)
            size = int(params.get("size", 100))
            page = int(params.get("page", 1))
            if not 1 <= size <= self.max_size or page < 1:
                raise ApiError("GET /jobs: HTTP 500: Internal Server Error", status=500)
            low = self._bound(params.get("start_time"), float("-inf"))
            if self.ignore_start:
                low = float("-inf")
            high = self._bound(params.get("end_time"), float("inf"))
            rows = [r for r in self._rows if low <= r[0] <= high]
            if params.get("order", "ASC") == "DESC":
                rows.reverse()
            chunk = rows[(page - 1) * size: page * size]
            if not chunk and self.repeat_last and rows:
                last = (len(rows) - 1) // size
                chunk = rows[last * size: (last + 1) * size]
            if self.cap:
                chunk = chunk[: self.cap]
            return [dict(self._jobs[i]) for _, i in chunk if i not in self.unrenderable]

    def _bound(self, text: str | None, default: float) -> float:
        if text is None:
            return default
        moment = datetime.fromisoformat(text)
        return (moment - EPOCH).total_seconds() + self.shift
