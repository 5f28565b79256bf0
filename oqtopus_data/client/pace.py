"""One request budget shared by every thread of a transport: a server that says "too many requests" slows them all.

Without it, a 429 slows only the worker that got it: the fifteen others keep asking, get 429s of their own and burn
their tries, and a server that counts refused requests too never recovers. With it:

- a Retry-After pauses every worker until it has passed, while refusals are at least half the answers of the
  window: a server refusing most requests wants them all to stop. One refusing a minority (a gateway answering 429
  to one request in ten whatever the pace) accepts the rest: only the refused requests wait their Retry-After
  (a shared pause on each refusal held 16 workers to a few requests a second: 294 jobs took 106 s, not 12);
- a few throttled answers (429, or 503: S3's SlowDown) in a window cut the pace of all workers to 90 % of what
  the server accepted in the last second, and each second without one raises it by 10 % again, so the pace settles
  just under the server's limit (the adaptive idea of the AWS SDKs' retry mode, in a few lines). One stray 429
  while the workers ask little, say during the listing, cuts nothing: it would measure their demand, not the limit;
- the pace never falls below half of what the server accepted at the first cut: a gateway that refuses a share of
  requests however slowly it is asked would otherwise cut it every second, down to a crawl. At that floor, refused
  requests back off one by one again;
- answers to requests sent before a cut are old news and cut nothing.

Until a server throttles, there is no pace: workers go as fast as they can.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 1.0  # seconds over which accepted answers are counted, and the least time between two changes of pace
CUT = 0.9  # the pace after a throttled answer, as a share of the rate the server accepted
RAISE = 1.1  # the pace after a window without one, as a share of the pace before
MIN_MEASURE = 2  # fewer accepted answers in the window than this: too few to measure a rate (no pace is set)
MAX_COUNTED = 8192  # accepted answers remembered: rates above this many a second are measured as this
FLOOR = 0.5  # the least pace, as a share of the rate the server accepted at the first cut
MIN_THROTTLED = 3  # throttled answers in the window before the pace is cut
SHARED_PAUSE = 0.5  # the least share of throttled answers in the window for a Retry-After to pause every worker


class Pace:
    """The shared pace; `turn()` before each request, then `accepted()` or `throttled()` with its answer."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate: float | None = None  # requests per second for all workers together; None: no limit
        self.paused_until = 0.0
        self.cuts = 0
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0.0  # the earliest time the next request may start, at the current pace
        self._accepted: deque[float] = deque(maxlen=MAX_COUNTED)
        self._throttled: deque[float] = deque(maxlen=MAX_COUNTED)
        self._changed = 0.0  # when the pace last changed
        self._cut_at = -WINDOW  # when it was last cut
        self._floor = 0.0  # the least pace (FLOOR x the rate accepted at the first cut)

    @property
    def at_floor(self) -> bool:
        """True when the pace is set and as low as it goes: throttled requests then back off one by one."""
        return self.rate is not None and self.rate <= self._floor

    def turn(self, served: float = 0.0) -> float:
        """Wait for this request's turn and return when it started. `served`: the end of a pause the calling
        thread has already waited out (it waited for its own Retry-After)."""
        now = self._clock()
        if self.rate is None and (self.paused_until <= served or self.paused_until <= now):
            return now  # nothing to wait for (the usual case): no lock taken
        with self._lock:
            now = self._clock()
            start = now
            if self.paused_until > served:
                start = max(start, self.paused_until)
            if self.rate is not None:
                start = max(start, self._next)
                self._next = start + 1.0 / self.rate
        if start > now:
            self._sleep(start - now)
        return start

    def accepted(self) -> None:
        """An answer the server did not throttle."""
        now = self._clock()
        self._accepted.append(now)  # atomic; the deque's length bounds it, the window is cut when measuring
        if self.rate is None:
            return
        with self._lock:
            self._forget(now)
            if self.rate is not None and now - self._changed >= WINDOW:
                self._changed = now
                if self.rate > 2 * len(self._accepted) / WINDOW:
                    self.rate = None  # the workers, not the pace, set the speed now: no limit left to respect
                else:
                    self.rate *= RAISE

    def throttled(self, sent: float, wait: float | None) -> float:
        """A throttled answer to a request sent at `sent` (`turn()`'s value); `wait`: its Retry-After, if any.
        Returns the end of the pause it asked for (0 without one), which the caller waits out itself."""
        with self._lock:
            now = self._clock()
            self._throttled.append(now)
            self._forget(now)
            measured = len(self._accepted) / WINDOW
            # Sent at the current pace (older requests are old news), a window after the last cut (the server's
            # own budget needs that long to show the new pace), with enough answers counted to measure a rate and
            # enough refused to show a limit.
            if (sent >= self._cut_at and now - self._cut_at >= WINDOW and measured >= MIN_MEASURE
                    and len(self._throttled) >= MIN_THROTTLED):
                if not self.cuts:
                    self._floor = FLOOR * measured
                self.rate = max(self._floor, CUT * (measured if self.rate is None else min(self.rate, measured)))
                self._changed = self._cut_at = now
                self._next = now
                self.cuts += 1
            if not wait:
                return 0.0
            until = now + wait
            if len(self._throttled) >= SHARED_PAUSE * (len(self._throttled) + len(self._accepted)):
                self.paused_until = max(self.paused_until, until)
            return until

    def _forget(self, now: float) -> None:
        """Drop answers older than the window (called with the lock held; appends may race in at the right end)."""
        for seen in (self._accepted, self._throttled):
            while seen and seen[0] <= now - WINDOW:
                seen.popleft()
