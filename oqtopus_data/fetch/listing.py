"""Walking GET /jobs so that no job is lost and none is listed twice, on the real server's terms.

What the server does (oqtopus-cloud's paginated user router): it keeps `start_time <= created_at <= end_time` and
orders by creation time, a time it never returns; created_at may be whole seconds; the bounds may be compared in
another time zone (a constant shift); pages are fastapi-pagination's `page`/`size` (size 1..100, a bigger one is a
500) and a page past the end is `[]` (older servers repeat the last page); a job it cannot render is left out of its
page without notice, so a short page is not the end.

So the walk never moves a cursor along jobs' timestamps. It covers creation time with contiguous windows whose
bounds are whole seconds taken from the calendar and the run's start: each bound ends one window and starts the
next, both inclusive, so a shift or a rounding of the bounds moves every window alike and leaves no gap; jobs created
in a boundary second are listed by both windows and de-duplicated by id. A window is walked page by page until `[]`
(or a repeated page), then walked again: a walk is complete when the next walk of the same window still holds every
job it saw. (A job deleted behind a walk shifts later pages left and can hide one job; the next walk no longer holds
the deleted job, which gives the shift away; jobs created meanwhile only add to the next walk.) A window whose first
page is full is split into smaller windows, walked concurrently. Where a window cannot be shown complete (the server
ignored a filter, pages kept changing, the listing never ends), it is reported by name and the run must not claim
completeness.

The walk of one window is `window_walk`'s; `Lister` here runs the windows on threads and keeps the ids that
de-duplicate them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from oqtopus_data.errors import ApiError
from oqtopus_data.fetch.pages import DEFAULT_PAGE_SIZE, JobPages, PageSize, job_identity
from oqtopus_data.fetch.window_walk import Limits, ListingError, Walking, WindowWalk
from oqtopus_data.fetch.windows import Window, lower, whole

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient

__all__ = ["Limits", "Listed", "Lister", "ListingError"]


@dataclass(frozen=True)
class Listed:
    """One job as listed, and the window (by number) that listed it."""

    job: Any  # a JSON object, unless the server sent something else (the export records that as an error)
    window: int


@dataclass(eq=False)
class _Slot:
    """A window of this run and what the walk knows of it."""

    number: int
    window: Window
    state: str = "queued"  # queued, walking, split, complete, failed
    ids: set[str] = field(default_factory=set)  # ids first listed by this window, for de-duplication
    emitted: int = 0  # jobs put on the way to the consumer
    handed: int = 0  # of those, jobs the consumer has taken


class Lister:
    """Lists every job created in `root` once, walking windows on up to `workers` threads; iterate for `Listed`.

    After iteration, `failures` holds the windows that could not be shown complete (ListingError), `notes` what the
    walk noticed (jobs the server left out, a page size it refused), and `resume_point()` the earliest bound before
    which everything was listed.
    """

    def __init__(self, api: ApiClient, root: Window, *, now: datetime, page_size: int = DEFAULT_PAGE_SIZE,
                 workers: int = 4, limits: Limits | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        self.api = api
        self.now = whole(now, up=True)
        self.limits = limits or Limits()
        self.workers = max(1, workers)
        self.notes: list[str] = []
        self.failures: list[ListingError] = []
        self.requests = 0
        self._notice = notice or (lambda _message: None)
        self.size = PageSize(page_size, notice=self._note)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._slots: list[_Slot] = []
        self._queue: list[_Slot] = []
        self._busy = 0
        self._seen: dict[str, int] = {}
        self._odd: set[str] = set()  # jobs whose submitted_at lies before the window that listed them, noted once
        self._holding: list[_Slot] = []  # finished windows whose ids are still kept
        self._walking: set[_Slot] = set()
        self._out: queue.Queue[Listed | BaseException | None] = queue.Queue(maxsize=4 * DEFAULT_PAGE_SIZE)
        self._stop = threading.Event()
        self._walks = Walking(_Counted(api, self._stop, self._count), self.size, self.limits, self.now,
                              note=self._note, note_new=self._note_new)
        self._add([root])

    # ------------------------------------------------------------------------------------------- public
    def __iter__(self) -> Iterator[Listed]:
        threads = [threading.Thread(target=self._worker, name=f"oqtopus-list-{i}", daemon=True)
                   for i in range(self.workers)]
        for thread in threads:
            thread.start()
        finished = 0
        try:
            while finished < len(threads):
                item = self._out.get()
                if item is None:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    with self._lock:
                        self._slots[item.window].handed += 1
                    yield item
        finally:
            self._stop.set()
            with self._work:
                self._work.notify_all()
            while any(t.is_alive() for t in threads):  # unblock workers waiting to put
                with contextlib.suppress(queue.Empty):
                    self._out.get(timeout=0.05)

    def complete(self, window: int) -> bool:
        """Whether a window's walk is over (complete, split into others, or failed)."""
        with self._lock:
            return self._slots[window].state in ("complete", "split", "failed")

    def resume_point(self, unprocessed: Iterable[int] = ()) -> datetime | None:
        """A bound before which every window was listed completely and, but for the windows `unprocessed` (whose
        jobs the caller has not finished with), processed; None: the listing must start from the root."""
        held = set(unprocessed)
        with self._lock:  # a window is behind us once walked and every job it listed was taken and processed
            open_starts = [lower(s.window.start) for s in self._slots
                           if s.state not in ("complete", "split") or s.handed < s.emitted or s.number in held]
        if not open_starts:
            return self.now
        earliest = min(open_starts)
        return None if earliest == lower(None) else earliest

    def open_windows(self) -> list[tuple[int, Window]]:
        """Windows whose walk is not over, by number."""
        with self._lock:
            return [(s.number, s.window) for s in self._slots if s.state in ("queued", "walking")]

    # ------------------------------------------------------------------------------------------ workers
    def _add(self, windows: list[Window], front: bool = False) -> list[_Slot]:
        """Register windows (the caller holds the lock, or no thread runs yet)."""
        if len(self._slots) + len(windows) > self.limits.max_windows:
            raise ListingError(windows[0], f"the listing needed more than {self.limits.max_windows:,} windows: "
                                           "GET /jobs returns full pages for every slice of time")
        slots = [_Slot(len(self._slots) + i, w) for i, w in enumerate(windows)]
        self._slots += slots
        self._queue = slots + self._queue if front else self._queue + slots
        return slots

    def _worker(self) -> None:
        try:
            while True:
                with self._work:
                    while not self._queue and self._busy and not self._stop.is_set():
                        self._work.wait()
                    if self._stop.is_set() or not self._queue:
                        self._work.notify_all()
                        return
                    slot = self._queue.pop(0)
                    slot.state = "walking"
                    self._walking.add(slot)
                    self._busy += 1
                try:
                    self._walk(slot)
                except ListingError as exc:
                    with self._lock:
                        slot.state = "failed"
                        self.failures.append(exc)
                except ApiError as exc:
                    with self._lock:
                        slot.state = "failed"
                        self.failures.append(ListingError(slot.window, str(exc)))
                finally:
                    with self._work:
                        self._busy -= 1
                        self._walking.discard(slot)
                        self._retire(slot)
                        self._work.notify_all()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the consumer, which raises it
            self._stop.set()
            self._put(exc)
        finally:
            self._put(None)

    def _put(self, item: Listed | BaseException | None) -> None:
        while True:
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set() and item is not None and not isinstance(item, BaseException):
                    raise _Stopped() from None

    def _walk(self, slot: _Slot) -> None:
        """Walk one window; mark it complete, or register the windows it was split into."""
        pieces = WindowWalk(slot.window, self._walks, lambda page: self._emit(slot, page)).run()
        with self._lock:
            if pieces is None:
                slot.state = "complete"
                return
            slot.state = "split"
            self._add(pieces, front=True)

    def _emit(self, slot: _Slot, page: list[Any]) -> None:
        """Hand on the jobs of a checked page that no window listed before."""
        for job in page:
            ident = job_identity(job)
            with self._lock:
                if ident in self._seen:
                    continue
                self._seen[ident] = slot.number
                slot.ids.add(ident)
                slot.emitted += 1
            self._put(Listed(job, slot.number))

    def _retire(self, finished: _Slot) -> None:
        """Forget the ids of finished windows that no unfinished window touches (memory stays flat).

        Called with the lock held. Windows are walked roughly in order, so few finished windows are held."""
        if finished.ids:
            self._holding.append(finished)
        unfinished = [s.window for s in (*self._queue, *self._walking)]
        keep = []
        for slot in self._holding:
            if any(slot.window.touches(w) for w in unfinished):
                keep.append(slot)
                continue
            for ident in slot.ids:
                self._seen.pop(ident, None)
            slot.ids = set()
        self._holding = keep

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def _note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)
        self._notice(message)

    def _note_new(self, notes: list[tuple[str, str]]) -> None:
        """Say the notes whose key (a job) no page of this run brought up before."""
        with self._lock:
            fresh = [message for key, message in notes if key not in self._odd]
            self._odd.update(key for key, _ in notes)
        for message in fresh:
            self._note(message)


class _Stopped(Exception):
    """The consumer stopped iterating: workers leave quietly."""


class _Counted:
    """GET /jobs as the walks of one listing see it: no page once the consumer stopped, every page counted."""

    def __init__(self, api: JobPages, stop: threading.Event, count: Callable[[], None]) -> None:
        self.api = api
        self.stop = stop
        self.count = count

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        """One page of GET /jobs (`ApiClient.list_page`), unless the consumer stopped iterating."""
        if self.stop.is_set():
            raise _Stopped()
        jobs = self.api.list_page(params, tries=tries)
        self.count()
        return jobs
