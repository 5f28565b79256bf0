"""The walk of one window of creation time: its pages to the end, again until two walks agree, or a split.

A window is walked page by page (`pages.Walk`) until `[]` or a repeated page, then walked again: it is complete
when the next walk still holds every job the last one saw. Short pages mid-list are told apart by a walk at the
short size (a cap on page sizes steps the run's size down; jobs the server could not render are noted). A window
whose first page is full is sized by its newest page and, when it holds many pages, split into smaller windows.
Why the listing works this way is `listing`'s docstring; the threads and the ids of a run are `listing.Lister`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oqtopus_data.errors import OqtopusDataError
from oqtopus_data.fetch.pages import JobPages, PageSize, Walk, job_identity
from oqtopus_data.fetch.windows import DAY, SECOND, SHIFT_SLACK, Window, day_start, text
from oqtopus_data.times import parse_time

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
class Walking:
    """What the walks of one listing share: the pages, the run's page size, its guards and start, where notes go."""

    api: JobPages
    size: PageSize
    limits: Limits
    now: datetime  # the run's start, whole seconds
    note: Callable[[str], None]
    note_new: Callable[[list[tuple[str, str]]], None]  # (key, note) pairs: says those whose key is new this run


class WindowWalk:
    """Walks one window until two walks in a row agree, handing each page to `take`; `run()` says how it ended."""

    def __init__(self, window: Window, walking: Walking, take: Callable[[list[Any]], None]) -> None:
        self.window = window
        self.walking = walking
        self.limits = walking.limits
        self.take = take

    def run(self) -> list[Window] | None:
        """None: the window is complete; windows: it was split into them. ListingError: it cannot be shown complete."""
        previous: Walk | None = None
        confirmed = False
        for number in range(self.limits.max_walks):
            walk = Walk(self.window, self.walking.size.current)
            first = self._page(walk)
            if number == 0 and walk.done:
                break  # empty in one answer: nothing a deletion could have hidden
            if number == 0 and len(first) >= walk.size:
                pieces = self._split(first, walk.size)
                if pieces:
                    return pieces
            self._to_the_end(walk)
            short = walk.short_pages()
            if short and not confirmed:
                confirmed = True
                checked = self._confirm(walk, min(short))
                if checked is None:
                    break  # the confirming walk held everything this one saw: this one is complete
                walk = checked  # the server caps its pages: the walk at the smaller size starts over
            if previous is not None and previous.ids <= walk.ids:
                break
            previous = walk
        else:
            raise ListingError(self.window, f"jobs kept disappearing between {self.limits.max_walks} walks in a row "
                                            "(deleted while listing?): run the export again")
        return None

    def _to_the_end(self, walk: Walk, size: int | None = None) -> None:
        while not walk.done:
            if walk.page > self.limits.max_pages:
                raise ListingError(self.window, f"the listing did not end after {self.limits.max_pages:,} pages")
            self._page(walk, size=size)

    def _confirm(self, walk: Walk, short: int) -> Walk | None:
        """A walk had short pages mid-list: a cap on page sizes, or jobs the server could not render. Tell which.

        Walks again at the short size: more jobs means a cap (that walk is returned, to be checked like a first
        walk); the same jobs mean jobs left out, and the smaller walk checks the first one (None is returned)."""
        small = Walk(self.window, short)
        self._to_the_end(small, size=short)
        if small.ids - walk.ids:  # smaller pages found more: the server caps its pages
            self.walking.size.reduce(short)
            return small
        missing = sum(walk.size - n for n in walk.short_pages())
        self.walking.note(f"GET /jobs left out {missing} job(s) created in {self.window} (the server could not "
                          "render them; they cannot be exported until it can)")
        return None

    def _page(self, walk: Walk, size: int | None = None) -> list[Any]:
        """The walk's next page, at the run's size (or at `size`), checked and handed on."""
        params = walk.params()
        if size is None:
            jobs, walk.size = self.walking.size.fetch(self.walking.api, params)
        else:
            jobs = self.walking.api.list_page({**params, "size": size})
        page = walk.update(jobs)
        self._take(page)
        return page

    def _take(self, page: list[Any]) -> None:
        """Check a page (a job dated before the window is noted once a run), then hand it on."""
        odd = check_filter(self.window, page)
        if odd:
            self.walking.note_new([(ident, f"GET /jobs listed job {ident} among the jobs created in {self.window}, "
                                           f"but it says it was submitted at {text(at)}, before that: its "
                                           "submitted_at is not to be trusted") for ident, at in odd])
        self.take(page)

    def _split(self, first: list[Any], size: int) -> list[Window] | None:
        """Smaller windows for one whose first page is full, when it holds many pages; None otherwise.

        Its newest page (order=DESC) says how many jobs it holds: the two pages overlap when it fits in them."""
        window = self.window
        if window.end is None and window.start is not None and window.start >= self.walking.now:
            return None  # nothing to split past the run's start: walk it page by page
        newest, _size = self.walking.size.fetch(self.walking.api, {"order": "DESC", "page": 1, **window.params()})
        self._take(newest)
        if {job_identity(j) for j in newest} & {job_identity(j) for j in first}:
            return None
        return split_plan(window, first, newest, size, now=self.walking.now, limits=self.limits)


def split_plan(window: Window, first: list[Any], newest: list[Any], size: int, *, now: datetime,
               limits: Limits) -> list[Window] | None:
    """The windows to walk instead of `window`, from its oldest and newest pages; None: walk it as is.

    The two pages' times spread against the window's give an estimate of its jobs (a burst in one second stays one
    window); the time the jobs occupy is split, the time after the newest listed day up to the run's start is one
    window, and an unbounded side stays one open window."""
    oldest = _stamps(first)
    latest = _stamps(newest)
    estimate = _estimate(oldest, latest, len(first) + len(newest))
    if estimate < limits.split_above * size or not oldest:
        return None
    pieces: list[Window] = []
    start, end = window.start, window.end
    if start is None:  # unbounded below: one open window up to the oldest listed day, the rest finite
        start = day_start(oldest[0])
        if end is not None and start >= end:
            return None
        pieces.append(Window(None, start))
    tail = None
    if end is None:  # unbounded above: the finite part ends at the run's start; an open window after it
        end = max(now, start + SECOND)
        tail = Window(end, None)
    # The jobs end around the newest listed day: the time after it (up to the run's start) is one window.
    top = min(end, max(day_start(latest[-1]) + DAY, start + SECOND)) if latest else end
    middle = Window(start, top)
    if middle.can_split():
        parts = math.ceil(estimate / (limits.target_pages * size))
        pieces += middle.split(max(2, min(limits.split_parts, parts)))
    else:
        pieces.append(middle)
    if top < end:
        pieces.append(Window(top, end))
    if tail is not None:
        pieces.append(tail)
    return pieces if len(pieces) >= 2 else None


def check_filter(window: Window, page: list[Any]) -> list[tuple[str, datetime]]:
    """Jobs of a page submitted long before the window starts, each a bogus timestamp to note; when they are most of
    the page, ListingError: the server ignored start_time."""
    if window.start is None:
        return []
    floor = window.start - SHIFT_SLACK
    dated, before = 0, []
    for job in page:
        submitted = parse_time(job.get("submitted_at")) if isinstance(job, dict) else None
        if submitted is None:
            continue
        dated += 1
        if submitted < floor:
            before.append((job_identity(job), submitted))
    if len(before) >= MIN_IGNORED and 2 * len(before) > dated:
        raise ListingError(window, f"the server ignored start_time ({len(before)} of the {dated} jobs of a page "
                                   f"were submitted before it, e.g. at {text(before[0][1])}); the listing "
                                   "cannot be trusted")
    return before


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
