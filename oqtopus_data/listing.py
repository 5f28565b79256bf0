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
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from oqtopus_data.errors import ApiError, OqtopusDataError
from oqtopus_data.pages import DEFAULT_PAGE_SIZE, PageSize, Walk, job_identity
from oqtopus_data.times import parse_time
from oqtopus_data.windows import DAY, SECOND, SHIFT_SLACK, Window, day_start, lower, text, whole

if TYPE_CHECKING:
    from oqtopus_data.api import ApiClient

#: Jobs of one page submitted before its window that prove the server ignored start_time, when they are also most
#: of the page (fewer are the jobs' own oddity: a bogus timestamp).
MIN_IGNORED = 2


class ListingError(OqtopusDataError):
    """One window of creation time cannot be shown to have been listed completely; the message names it."""

    def __init__(self, window: Window, problem: str) -> None:
        super().__init__(f"GET /jobs, jobs created in {window}: {problem}")
        self.window = window
        self.problem = problem


@dataclass(frozen=True)
class Limits:
    """Guards that end a listing a server would never let end; tests make them small."""

    max_walks: int = 6  # walks of one window before it is declared unstable
    max_pages: int = 20_000  # pages in one walk of one window (2 million jobs in one second is no real history)
    max_windows: int = 100_000  # windows planned in one run (a million-job history needs a few thousand)
    split_parts: int = 64  # at most this many windows from one split
    target_pages: int = 4  # pages a split aims each window at
    split_above: int = 10  # pages a window must be estimated to hold before it is split (fewer: walked as is)


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
                    self._walk_window(slot)
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

    def _walk_window(self, slot: _Slot) -> None:
        """Walk one window until two walks in a row agree; or split it; or fail it with ListingError."""
        previous: Walk | None = None
        confirmed = False
        for number in range(self.limits.max_walks):
            walk = Walk(slot.window, self.size.current)
            first = self._page(walk, slot)
            if number == 0 and walk.done:
                break  # empty in one answer: nothing a deletion could have hidden
            if number == 0 and len(first) >= walk.size and self._split(slot, first, walk.size):
                return
            while not walk.done:
                if walk.page > self.limits.max_pages:
                    raise ListingError(slot.window, f"the listing did not end after {self.limits.max_pages:,} pages")
                self._page(walk, slot)
            short = walk.short_pages()
            if short and not confirmed:
                confirmed = True
                checked = self._confirm(slot, walk, min(short))
                if checked is None:
                    break  # the confirming walk held everything this one saw: this one is complete
                walk = checked  # the server caps its pages: the walk at the smaller size starts over
            if previous is not None and previous.ids <= walk.ids:
                break
            previous = walk
        else:
            raise ListingError(slot.window, f"jobs kept disappearing between {self.limits.max_walks} walks in a row "
                                            "(deleted while listing?): run the export again")
        with self._lock:
            slot.state = "complete"

    def _confirm(self, slot: _Slot, walk: Walk, short: int) -> Walk | None:
        """A walk had short pages mid-list: a cap on page sizes, or jobs the server could not render. Tell which.

        Walks again at the short size: more jobs means a cap (that walk is returned, to be checked like a first
        walk); the same jobs mean jobs left out, and the smaller walk checks the first one (None is returned)."""
        small = Walk(slot.window, short)
        while not small.done:
            if small.page > self.limits.max_pages:
                raise ListingError(slot.window, f"the listing did not end after {self.limits.max_pages:,} pages")
            self._page(small, slot, size=short)
        if small.ids - walk.ids:  # smaller pages found more: the server caps its pages
            self.size.reduce(short)
            return small
        missing = sum(walk.size - n for n in walk.short_pages())
        self._note(f"GET /jobs left out {missing} job(s) created in {slot.window} (the server could not render "
                   "them; they cannot be exported until it can)")
        return None

    def _page(self, walk: Walk, slot: _Slot, size: int | None = None) -> list[Any]:
        if self._stop.is_set():
            raise _Stopped()
        params = walk.params()
        if size is None:
            jobs, walk.size = self.size.fetch(self.api, params)
        else:
            jobs = self.api.list_page({**params, "size": size})
        with self._lock:
            self.requests += 1
        page = walk.update(jobs)
        self._emit(slot, page)
        return page

    def _emit(self, slot: _Slot, page: list[Any]) -> None:
        """Check a page, then hand on its jobs that no window listed before."""
        self._check_filter(slot.window, page)
        for job in page:
            ident = job_identity(job)
            with self._lock:
                if ident in self._seen:
                    continue
                self._seen[ident] = slot.number
                slot.ids.add(ident)
                slot.emitted += 1
            self._put(Listed(job, slot.number))

    def _split(self, slot: _Slot, first: list[Any], size: int) -> bool:
        """Replace a window whose first page is full by smaller ones, when it holds many pages; False otherwise.

        Its newest page (order=DESC) says how many jobs it holds: the two pages overlap when it fits in them, and
        their times spread against the window's give an estimate (a burst in one second stays one window)."""
        window = slot.window
        if window.end is None and window.start is not None and window.start >= self.now:
            return False  # nothing to split past the run's start: walk it page by page
        newest, _size = self.size.fetch(self.api, {"order": "DESC", "page": 1, **window.params()})
        with self._lock:
            self.requests += 1
        self._emit(slot, newest)
        if {job_identity(j) for j in newest} & {job_identity(j) for j in first}:
            return False
        oldest = _stamps(first)
        latest = _stamps(newest)
        estimate = _estimate(oldest, latest, len(first) + len(newest))
        if estimate < self.limits.split_above * size or not oldest:
            return False
        pieces: list[Window] = []
        start, end = window.start, window.end
        if start is None:  # unbounded below: one open window up to the oldest listed day, the rest finite
            start = day_start(oldest[0])
            if end is not None and start >= end:
                return False
            pieces.append(Window(None, start))
        tail = None
        if end is None:  # unbounded above: the finite part ends at the run's start; an open window after it
            end = max(self.now, start + SECOND)
            tail = Window(end, None)
        # The jobs end around the newest listed day: the time after it (up to the run's start) is one window.
        top = min(end, max(day_start(latest[-1]) + DAY, start + SECOND)) if latest else end
        middle = Window(start, top)
        if middle.can_split():
            parts = math.ceil(estimate / (self.limits.target_pages * size))
            pieces += middle.split(max(2, min(self.limits.split_parts, parts)))
        else:
            pieces.append(middle)
        if top < end:
            pieces.append(Window(top, end))
        if tail is not None:
            pieces.append(tail)
        if len(pieces) < 2:
            return False
        with self._lock:
            slot.state = "split"
            self._add(pieces, front=True)
        return True

    def _check_filter(self, window: Window, page: list[Any]) -> None:
        """Most of a page submitted long before the window starts proves the server ignored start_time; a few such
        jobs are their own oddity (a bogus timestamp), named in a note once, and listed like the others."""
        if window.start is None:
            return
        floor = window.start - SHIFT_SLACK
        dated, before = 0, []
        for job in page:
            submitted = parse_time(job.get("submitted_at")) if isinstance(job, dict) else None
            if submitted is None:
                continue
            dated += 1
            if submitted < floor:
                before.append((job_identity(job), submitted))
        if not before:
            return
        if len(before) >= MIN_IGNORED and 2 * len(before) > dated:
            raise ListingError(window, f"the server ignored start_time ({len(before)} of the {dated} jobs of a page "
                                       f"were submitted before it, e.g. at {text(before[0][1])}); the listing "
                                       "cannot be trusted")
        with self._lock:
            fresh = [(ident, at) for ident, at in before if ident not in self._odd]
            self._odd.update(ident for ident, _ in fresh)
        for ident, at in fresh:
            self._note(f"GET /jobs listed job {ident} among the jobs created in {window}, but it says it was "
                       f"submitted at {text(at)}, before that: its submitted_at is not to be trusted")

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

    def _note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)
        self._notice(message)


class _Stopped(Exception):
    """The consumer stopped iterating: workers leave quietly."""


def _stamps(jobs: list[Any]) -> list[datetime]:
    return sorted(t for t in (parse_time(j.get("submitted_at")) for j in jobs if isinstance(j, dict)) if t)


def _estimate(oldest: list[datetime], newest: list[datetime], listed: int) -> float:
    """Jobs in a window whose oldest and newest pages are given: their count over the time they span, times the
    time between the two (a first guess for splitting; completeness never rests on it)."""
    if not oldest or not newest:
        return float("inf")
    (old_mid, old_span), (new_mid, new_span) = _spread(oldest), _spread(newest)
    spanned = max(old_span + new_span, 1.0)
    between = max((new_mid - old_mid) / SECOND + spanned / 2, 0.0)
    return listed * max(between / spanned, 1.0)


def _spread(stamps: list[datetime]) -> tuple[datetime, float]:
    """The median of sorted times and the seconds from the first to the 85th percentile, scaled to the whole: jobs
    submitted long after their creation (the latest 15 %) do not stretch it, a burst in one second does not shrink
    it to nothing."""
    n = len(stamps)
    return stamps[n // 2], (stamps[min(n - 1, (85 * n) // 100)] - stamps[0]) / SECOND / 0.85
