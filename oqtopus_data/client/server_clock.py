"""The server's clock, read from the Date header of its latest API answer: a run's time and presigned URLs'
expiry rest on it rather than on this machine's clock, which may be wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from oqtopus_data.times import to_utc


class ServerClock:
    """The Date header last heard and when; `clock` is this machine's, for `now` before any Date was heard."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._date: tuple[str | None, float] = (None, 0.0)  # the last API answer's Date header, and when it came
        self._parsed: tuple[str | None, datetime] = (None, datetime.min)  # that header parsed

    def heard(self, header: str | None) -> None:
        """Record an API answer's Date header (None: it had none), received now."""
        self._date = (header, time.monotonic())

    def time(self) -> datetime | None:
        """The server's time now: the Date header of its last API answer plus the time since; None before any
        answer with a readable Date."""
        header, seen = self._date
        if not header:
            return None
        if self._parsed[0] != header:  # parsed once per second of the server's clock, not per call
            try:
                self._parsed = (header, to_utc(parsedate_to_datetime(header)))
            except (TypeError, ValueError, IndexError):
                return None
        return self._parsed[1] + timedelta(seconds=time.monotonic() - seen)

    def now(self) -> datetime:
        """The server's time now (`time`), or this machine's clock where the server sent no Date: the clock
        presigned URLs are signed on."""
        return self.time() or self._clock()
