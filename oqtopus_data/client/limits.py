"""Bounded time and memory for the transport, whatever the server does.

`Deadline`: every request attempt (connect, headers and the whole body) gets an overall deadline. A per-read
timeout alone lets a server that sends one byte per second hold an attempt for ever, because each byte restarts
the read timeout; the loop that drives a libcurl transfer (`curl`) and the body reader (`body`) look at the
attempt's deadline between the network's events, and give it up once it has passed.

`ByteBudget`: body bytes held by all threads at once (downloads and what is decoded from them) stay under one
shared limit. A thread reserves before it reads; a body larger than the whole budget proceeds alone.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The throughput below which a body is given up: an attempt has its floor (a small multiple of the configured
#: timeout, `http.Transport`) plus one second per 32 KiB declared or received. A legitimate 256 MiB archive then
#: has 2 h 17 min, so it passes on any link faster than 32 KiB/s (256 kbit/s); a server that trickles one byte per
#: second fails at the floor (60 s with the default timeout of 30 s).
MIN_THROUGHPUT = 32 * 1024

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_pinned = False


class Attempt:
    """One request attempt: its deadline grows with the bytes declared or received (`allow`)."""

    def __init__(self, floor: float, min_rate: float, clock: Callable[[], float]) -> None:
        self.start = clock()
        self.floor = floor
        self.min_rate = min_rate
        self.nbytes = 0
        self._clock = clock
        self._paused = False

    @property
    def deadline(self) -> float:
        """The monotonic time at which the attempt is given up (never while it is paused)."""
        return float("inf") if self._paused else self.start + self.floor + self.nbytes / self.min_rate

    @property
    def allowed(self) -> float:
        """The seconds the attempt may take so far."""
        return self.floor + self.nbytes / self.min_rate

    @property
    def expired(self) -> bool:
        """Whether the attempt is past its deadline."""
        return self._clock() > self.deadline

    def allow(self, nbytes: int) -> None:
        """Grant time for `nbytes` of body (the declared length, or what has arrived)."""
        self.nbytes = max(self.nbytes, nbytes)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the clock while waiting on something other than the server (the byte budget)."""
        began = self._clock()
        self._paused = True
        try:
            yield
        finally:
            self.start += self._clock() - began
            self._paused = False


class Deadline:
    """Starts attempts under a deadline: `floor` seconds plus one per `min_rate` bytes of body."""

    def __init__(self, floor: float, min_rate: float = MIN_THROUGHPUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not floor > 0 or not min_rate > 0:
            raise ValueError("the deadline floor and the minimum throughput must be positive")
        self.floor = floor
        self.min_rate = min_rate
        self._clock = clock

    def attempt(self) -> Attempt:
        """An attempt whose clock starts now."""
        return Attempt(self.floor, self.min_rate, self._clock)

    def overdue(self, attempt: Attempt) -> bool:
        """Whether the attempt is past its deadline (checked between chunks and while a transfer runs)."""
        return attempt.expired


class Hold:
    """Bytes of the budget one thread holds; `grow` before allocating, `shrink_to` after dropping."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.nbytes = 0

    def grow(self, nbytes: int) -> None:
        """Reserve `nbytes` more, waiting while other holders use the budget."""
        if nbytes > 0:
            self._budget._grow(self, nbytes)

    def shrink_to(self, nbytes: int) -> None:
        """Give back what is held beyond `nbytes`."""
        if nbytes < self.nbytes:
            self._budget._release(self, self.nbytes - nbytes)


class ByteBudget:
    """Body bytes in flight across threads, capped at `limit`.

    A reservation waits while it would pass the limit. A thread that already holds bytes and needs more (to
    inflate what it downloaded) goes first, and passes the limit when every other holder is waiting too: nobody
    could release, and two half-done downloads must not wait for each other for ever. A new reservation passes
    the limit only alone. So the bytes held stay under the limit plus what one job alone needs.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the byte budget must be positive")
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._holders: set[Hold] = set()
        self._waiting: set[Hold] = set()

    @contextmanager
    def hold(self) -> Iterator[Hold]:
        """A reservation given back in full when the block ends."""
        hold = Hold(self)
        try:
            yield hold
        finally:
            hold.shrink_to(0)

    def _grow(self, hold: Hold, nbytes: int) -> None:
        with self._cond:
            while not self._fits(hold, nbytes):
                self._waiting.add(hold)
                try:
                    self._cond.wait()
                finally:
                    self._waiting.discard(hold)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            hold.nbytes += nbytes
            self._holders.add(hold)

    def _fits(self, hold: Hold, nbytes: int) -> bool:
        others = self._holders - {hold}
        if hold.nbytes == 0:  # a new reservation: alone it always fits, else after the holders' own growth
            return not others or (self.used + nbytes <= self.limit and not others & self._waiting)
        if self.used + nbytes <= self.limit:
            return True
        return others <= self._waiting  # a holder may pass the limit when every other holder is blocked too

    def _release(self, hold: Hold, nbytes: int) -> None:
        with self._cond:
            self.used -= nbytes
            hold.nbytes -= nbytes
            if hold.nbytes == 0:
                self._holders.discard(hold)
            self._cond.notify_all()


def return_large_buffers_to_the_os() -> None:
    """Pin glibc's mmap threshold at 1 MiB, once per process, so that a freed body buffer goes back to the OS.

    By default glibc raises the threshold after the first large free (up to 32 MiB), and from then on each worker
    thread's arena keeps the buffers it freed: resident memory then grows to every thread's own high-water mark
    (workers x the largest job) although the byte budget never holds more than its limit at once. Measured on 16
    archives of 24 MiB with 8 workers: 344 MiB more resident without this, 100 MiB with it. Nothing is changed
    off Linux or when MALLOC_MMAP_THRESHOLD_ is set by the user.
    """
    global _pinned
    if _pinned or not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    _pinned = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or no C library to ask)
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)
