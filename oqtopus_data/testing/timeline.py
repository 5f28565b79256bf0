"""When synthetic jobs are created and submitted, and how those instants are written.

A job is created (registered) and then submitted: milliseconds later for one-step submission,
seconds to hours later for the two-step kind (oqtopus-client >= 1.1). The server stores creation
time in whole seconds, so bursts of jobs share one `created_at`.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from oqtopus_data.testing.catalog import S
from oqtopus_data.times import to_utc

NO_TIME = -(2**63)  # the submitted_at of a job that is not submitted (registered)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TWO_STEP_MIN = 5 * S  # the shortest registration-to-submission gap of a two-step job


def creation_instants(rng: random.Random, n: int, span_us: int,
                      bursts: Sequence[int] = ()) -> list[int]:
    """`n` strictly increasing creation instants (us after the start) spread over `span_us`.

    Each entry of `bursts` is a batch of that many jobs created within one second, placed at a
    random point of the history; the other jobs arrive one by one (exponential gaps).
    """
    if any(k < 1 or k > S for k in bursts) or sum(bursts) > n:
        raise ValueError("bursts must be batch sizes of 1..1000000 jobs adding up to at most n_jobs")
    slots = n - sum(bursts) + len(bursts)
    gaps = [rng.expovariate(1.0) for _ in range(slots)]
    scale = span_us * 0.995 / (sum(gaps) or 1.0)
    sizes = dict(zip(rng.sample(range(slots), len(bursts)), bursts, strict=True))
    out: list[int] = []
    t, prev = 0.0, -1
    for slot in range(slots):
        t += gaps[slot] * scale
        base = max(int(t), prev + 1)
        k = sizes.get(slot, 1)
        if k == 1:
            out.append(base)
        else:
            end = (base // S + 1) * S
            if end - base < k:  # not enough room left in this second: use the next one
                base, end = end, end + S
            out += sorted(rng.sample(range(base, end), k))
        prev = out[-1]
    return out


def submission_delay(rng: random.Random, two_step: float, max_delay_us: int) -> int:
    """Microseconds from creation to submission: 5 ms..1 s, or for a `two_step` share 5 s..max."""
    if rng.random() < two_step:
        high = max(TWO_STEP_MIN, max_delay_us)
        return int(math.exp(rng.uniform(math.log(TWO_STEP_MIN), math.log(high))))
    return int((0.005 + 0.995 * rng.random() ** 2) * S)


def to_us(when: datetime, epoch_us: int) -> int:
    """`when` (naive = UTC) as microseconds after the instant `epoch_us` (us since 1970)."""
    return (to_utc(when) - EPOCH) // timedelta(microseconds=1) - epoch_us


def from_us(us: int, epoch_us: int) -> datetime:
    """The UTC datetime `us` microseconds after the instant `epoch_us`."""
    return EPOCH + timedelta(microseconds=epoch_us + us)


def iso(us: int, epoch_us: int) -> str:
    """`us` after `epoch_us` as ISO-8601 with `Z`, microseconds written only when not zero."""
    secs, frac = divmod(epoch_us + us, S)
    day, rest = divmod(secs, 86400)
    return f"{_day(day)}T{_hms(rest)}.{frac:06d}Z" if frac else f"{_day(day)}T{_hms(rest)}Z"


@functools.lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


@functools.cache
def _hms(second_of_day: int) -> str:
    hour, rest = divmod(second_of_day, 3600)
    return f"{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"
