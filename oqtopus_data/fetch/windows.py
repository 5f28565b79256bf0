"""Windows of creation time: the slices of GET /jobs' `start_time`/`end_time` a listing walks.

Bounds are whole seconds in UTC, inclusive on both sides, and every window after the first starts at the bound where
the one before it ends: whatever the server does to a bound (compare it in another time zone, round it to its own
precision), it does to both windows alike, so together they cover creation time without a gap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
#: How far the server's comparison of a bound may be shifted from UTC (time zones reach +14 h), plus clock skew.
SHIFT_SLACK = timedelta(hours=14, minutes=15)


@dataclass(frozen=True)
class Window:
    """A slice of creation time as sent to GET /jobs: whole-second UTC bounds, both inclusive; None = unbounded."""

    start: datetime | None
    end: datetime | None

    def params(self) -> dict[str, str]:
        """The start_time/end_time query parameters (absent for an unbounded side)."""
        out = {}
        if self.start is not None:
            out["start_time"] = text(self.start)
        if self.end is not None:
            out["end_time"] = text(self.end)
        return out

    def can_split(self) -> bool:
        """Whether the window is finite and at least two seconds wide (bounds are whole seconds)."""
        return self.start is not None and self.end is not None and self.end - self.start >= 2 * SECOND

    def split(self, parts: int) -> list[Window]:
        """Contiguous windows covering this one, at whole-second bounds, each sharing a bound with the next."""
        assert self.start is not None and self.end is not None
        seconds = int((self.end - self.start) / SECOND)
        parts = max(1, min(parts, seconds))
        cuts = [self.start + SECOND * (seconds * i // parts) for i in range(parts + 1)]
        return [Window(a, b) for a, b in itertools.pairwise(cuts)]

    def touches(self, other: Window) -> bool:
        """Whether the two windows overlap or share a bound (a job may be listed by both)."""
        low = lower(self.start) <= upper(other.end)
        high = lower(other.start) <= upper(self.end)
        return low and high

    def __str__(self) -> str:
        start = text(self.start) if self.start is not None else "the beginning"
        end = text(self.end) if self.end is not None else "now"
        return f"[{start} .. {end}]"


_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)


def lower(moment: datetime | None) -> datetime:
    """A bound, with None (unbounded) as the earliest instant."""
    return _MIN if moment is None else moment


def upper(moment: datetime | None) -> datetime:
    """A bound, with None (unbounded) as the latest instant."""
    return _MAX if moment is None else moment


def whole(moment: datetime, *, up: bool = False) -> datetime:
    """The instant in UTC, rounded to the second (down, or up)."""
    moment = moment.astimezone(UTC)
    floor = moment.replace(microsecond=0)
    return floor + SECOND if up and floor < moment else floor


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the instant's day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def text(moment: datetime) -> str:
    """The bound as GET /jobs takes it: whole seconds, UTC, with a Z."""
    return whole(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def root_window(start: datetime | None, end: datetime | None) -> Window:
    """The window a run lists: whole seconds, the start rounded down and the end up (None: unbounded)."""
    return Window(None if start is None else whole(start), None if end is None else whole(end, up=True))
