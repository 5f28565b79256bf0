"""The few statistics the report states: Wilson score intervals for rates, shot-weighted means for trends."""

from __future__ import annotations

import math
from collections.abc import Iterable

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95 %
#: The one high percentile the report shows (whiskers, monthly lines, tables), named as the usage views name it.
HIGH, HIGH_NAME = 0.9, "p90"
#: The quantiles of a box: whisker, box, median, box, whisker (HIGH's mirror image at the low end).
BOX_QUANTILES = (round(1 - HIGH, 9), 0.25, 0.5, 0.75, HIGH)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes`/`n` (95 % by default).

    Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point at 0 % or 100 %, which
    is what a month of 3 jobs needs. (0, 1) when n is 0.
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}), not {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """The mean of values weighted by their weights ((value, weight) pairs); None without positive weight."""
    total = weight = 0.0
    for value, w in pairs:
        total += value * w
        weight += w
    return total / weight if weight > 0 else None
