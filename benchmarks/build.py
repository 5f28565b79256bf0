"""A count-heavy dataset built the way a long export writes one: synthetic jobs flattened in batches, each batch
appended with `write_dataset` (one commit), then `compact`. Runs in a child process so its peak RSS is its own:
`python -m benchmarks.build '{"out": ..., "count_rows": ..., "outcomes": ..., "batch_rows": ...}'`."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

EXPORTED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def build(out: str, count_rows: int, outcomes: int = 100, batch_rows: int = 1_000_000,
          compact: bool = True) -> dict[str, Any]:
    """Write about `count_rows` count rows; returns timings, RSS after each batch and the dataset's size."""
    import resource

    from oqtopus_data import flatten, result_from_raw, write_dataset
    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.dataset.dataset import compact as compact_dataset

    from . import synthetic

    generate = convert = write = 0.0
    rss: list[float] = []
    jobs = rows = 0
    started = time.perf_counter()
    for batch in synthetic.batches(count_rows, outcomes, max(1, batch_rows // outcomes)):
        t0 = time.perf_counter()
        results = [result_from_raw(job) for job in batch]
        del batch
        tables = flatten(results, exported_at=EXPORTED_AT)
        del results
        t2 = time.perf_counter()
        write_dataset(tables, out)
        t3 = time.perf_counter()
        jobs += tables["jobs"].num_rows
        rows += tables["counts"].num_rows
        convert += t2 - t0
        write += t3 - t2
        del tables
        rss.append(_rss_mib())
    total = time.perf_counter() - started
    # Generating the synthetic jobs is not oqtopus-data's work: time it apart, on one batch, and scale.
    t0 = time.perf_counter()
    sample = synthetic.jobs(max(1, batch_rows // outcomes), outcomes)
    generate = (time.perf_counter() - t0) * jobs / len(sample)
    del sample
    peak_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dataset = Dataset(out)
    before = dataset.require_latest()
    files_before = sum(len(v) for v in before.files.values())
    t0 = time.perf_counter()
    after = compact_dataset(dataset) if compact else None
    compact_seconds = time.perf_counter() - t0
    manifest = after or before
    counts_bytes = sum(e.bytes for e in manifest.entries("counts"))
    return {"jobs": jobs, "count_rows": rows, "flatten_seconds": convert, "write_seconds": write,
            "generate_seconds_estimate": generate, "rss_after_batches": rss, "peak_build_mib": peak_build,
            "files_before_compact": files_before, "files_after_compact": sum(len(v) for v in manifest.files.values()),
            "compact_seconds": compact_seconds, "commits": manifest.version, "counts_bytes": counts_bytes,
            "jobs_bytes": sum(e.bytes for e in manifest.entries("jobs")), "loop_seconds": total}


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    print(json.dumps(build(**json.loads(sys.argv[1]))))
