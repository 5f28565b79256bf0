"""Benchmark 4: peak RSS of an export of N jobs and of 10 N jobs. Target: ratio under 1.3 (memory stays flat).

The cloud serves job_info inline (the legacy form, `FakeCloud(legacy=True)`): the export then makes only listing
requests, so 10 N jobs take minutes instead of the hours 2.8 archive downloads per job would on this machine. The
rest of the path (listing, the fetch pool, parsing, flattening, buffered writes, checkpoints, compaction) is the
one every export runs; archive downloads add a bounded number of jobs in flight (4 x workers) on top.
"""

from __future__ import annotations

import json
from typing import Any

from .cloud import CloudProcess
from .common import Mode, met, mib, run_child, scratch, table

NAME = "memory"
COMPACT_AFTER = 1  # compaction on: every run ends by merging its files (the automatic trigger at its lowest)


def run(mode: Mode) -> dict[str, Any]:
    from oqtopus_data.run.export import ExportOptions

    # The small run fills the write buffer (500,000 count rows: about 18,000 jobs) as the large one does.
    small, large = mode.pick((20_000, 50_000), (20_000, 200_000))
    figures = []
    for n in (small, large):
        with CloudProcess(n, latency=0.0, legacy=True) as cloud, scratch("memory") as tmp:
            child = run_child(["benchmarks.tasks", "export", json.dumps(
                {"url": cloud.url, "token": cloud.token, "out": str(tmp / "out"),
                 "compact_after_files": COMPACT_AFTER})])
            figures.append((n, child))
    rows = [[f"{n:,} jobs", c.value["exported"], c.value["rows"].get("counts", 0), c.wall, mib(c.peak_rss),
             *_quarters(c.value["rss_samples"]), c.value["version"], "yes" if c.value.get("compacted") else "no"]
            for n, c in figures]
    ratio = figures[1][1].peak_rss / figures[0][1].peak_rss
    table("4. memory: peak RSS of the export process (wait4 ru_maxrss), job_info inline, latency 0 "
          "[python -m benchmarks --only memory]",
          ["", "jobs", "count rows", "seconds", "peak RSS MiB", "max RSS 1st quarter", "2nd", "3rd", "4th",
           "commits", "auto-compacted"], rows,
          note="RSS sampled every 0.5 s in the export process, max per quarter of its run: it levels off once the "
               f"write buffer ({ExportOptions().flush_rows:,} count rows, or a fixed number of batches of "
               f"{ExportOptions().batch_jobs} jobs) is full, then saws between flushes. Each run ends with a "
               f"compaction (compact_after_files={COMPACT_AFTER}), which streams each partition's files into one, one "
               "input file at a time.")
    table("   target", ["", "value", "target", "met"],
          [[f"peak RSS {large:,} / {small:,} jobs, compaction on", f"{ratio:.2f}", "<= 1.3",
            met(ratio <= 1.3)]])
    return {"sizes": [small, large], "peak_rss": [c.peak_rss for _, c in figures],
            "seconds": [c.wall for _, c in figures], "ratio": ratio}


def _quarters(samples: list[float]) -> list[float | str]:
    if len(samples) < 4:
        return ["", "", "", ""]
    k = len(samples)
    return [max(samples[i * k // 4:(i + 1) * k // 4]) for i in range(4)]
