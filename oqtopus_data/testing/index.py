"""Live jobs kept in a listing order, so that one page costs O(log n + page) even for 200,000 jobs."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any


class JobOrder:
    """Job indices sorted by `key` (unique per job), windowed by `time` (non-decreasing along it).

    Remove a job before changing what its key depends on, then insert it again.
    """

    def __init__(self, items: Iterable[int], key: Callable[[int], Any],
                 time: Callable[[int], int]) -> None:
        self.items = array("i", items)  # four bytes per job
        self.key, self.time = key, time

    def __len__(self) -> int:
        return len(self.items)

    def position(self, idx: int) -> int:
        """Where job `idx` stands (it must be in the order)."""
        p = bisect_left(self.items, self.key(idx), key=self.key)
        if p >= len(self.items) or self.items[p] != idx:
            raise KeyError(idx)
        return p

    def insert(self, idx: int) -> None:
        """Put job `idx` where its key sorts."""
        self.items.insert(bisect_left(self.items, self.key(idx), key=self.key), idx)

    def remove(self, idx: int) -> None:
        """Take job `idx` out."""
        del self.items[self.position(idx)]

    def span(self, low: int | None, high: int | None) -> tuple[int, int]:
        """Positions [a, b) of the jobs with low <= time <= high (None: unbounded)."""
        a = 0 if low is None else bisect_left(self.items, low, key=self.time)
        b = len(self.items) if high is None else bisect_right(self.items, high, key=self.time)
        return a, max(a, b)


def window(base: list[int] | array, a: int, b: int, skip: list[int], offset: int, size: int,
           desc: bool) -> list[int]:
    """Items `offset`.. of base[a:b] (reversed if desc) leaving out the sorted positions `skip`."""
    skipped, out = set(skip), []
    if not desc:
        p = a + offset
        for s in skip:
            if s > p:
                break
            p += 1
        while p < b and len(out) < size:
            if p not in skipped:
                out.append(base[p])
            p += 1
    else:
        p = b - 1 - offset
        for s in reversed(skip):
            if s < p:
                break
            p -= 1
        while p >= a and len(out) < size:
            if p not in skipped:
                out.append(base[p])
            p -= 1
    return out
