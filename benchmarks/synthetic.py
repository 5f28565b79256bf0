"""Count-heavy synthetic jobs, fast to make: the input of the query and scale benchmarks and of the per-row
cost of the CPU path. Shaped like the API's jobs (job_info resolved inline) so they go through the same
`result_from_raw` -> `flatten` -> `write_dataset` path as exported jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

WIDTH = 16
_POOL = [format(i, f"0{WIDTH}b") for i in range(2**WIDTH)]
_DEVICES = ("SVSim", "Kawasaki", "Urchin", "qulacs")
_START = datetime(2024, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 365 * 86400


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jobs(n_jobs: int, outcomes: int, *, first: int = 0, total: int | None = None,
         seed: int = 0) -> list[dict[str, Any]]:
    """Jobs number `first`..`first + n_jobs` of a history of `total` jobs spread over 2024, each a sampling job
    with `outcomes` distinct 16-bit bitstrings (the all-zeros one always, with the largest count)."""
    total = total or first + n_jobs
    rng = np.random.default_rng([seed, first])
    starts = rng.integers(0, 2**WIDTH, n_jobs)
    values = rng.integers(1, 50, (n_jobs, outcomes)).tolist()
    devices = rng.integers(0, len(_DEVICES), n_jobs).tolist()
    queue = rng.exponential(120.0, n_jobs).tolist()
    run = rng.uniform(0.05, 30.0, n_jobs).tolist()
    steps = np.arange(outcomes, dtype=np.int64) * 7919  # odd stride: `outcomes` distinct keys per job
    out = []
    for k in range(n_jobs):
        i = first + k
        submitted = _START + timedelta(seconds=_SPAN_SECONDS * i / total)
        running = submitted + timedelta(seconds=queue[k])
        ended = running + timedelta(seconds=run[k])
        idx = ((int(starts[k]) + steps) % 2**WIDTH).tolist()
        idx[0] = 0
        counts = dict(zip([_POOL[j] for j in idx], values[k], strict=True))
        counts[_POOL[0]] = 5000
        out.append({
            "job_id": f"{i:08x}-0000-4000-8000-{seed:012x}", "name": f"synthetic-{i % 97}",
            "job_type": "sampling", "status": "succeeded", "device_id": _DEVICES[devices[k]],
            "shots": sum(values[k]) + 5000 - values[k][0],
            "job_info": {"result": {"sampling": {"counts": counts}}},
            "execution_time": round(run[k], 3), "submitted_at": _iso(submitted), "ready_at": _iso(submitted),
            "running_at": _iso(running), "ended_at": _iso(ended),
        })
    return out


def batches(count_rows: int, outcomes: int, batch_jobs: int, seed: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Enough jobs for `count_rows` count rows, `batch_jobs` at a time."""
    total = -(-count_rows // outcomes)
    for first in range(0, total, batch_jobs):
        yield jobs(min(batch_jobs, total - first), outcomes, first=first, total=total, seed=seed)
