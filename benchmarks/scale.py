"""Benchmark 6 ("Beyond one machine"): write 5 million (quick) or 50 million (full) count rows in batches with
flat memory (flatten + write_dataset, then compact), then the three aggregate queries through DuckDB, polars and
Spark in local mode (local[2], bound to 127.0.0.1, reading the files the newest manifest names)."""

from __future__ import annotations

import json
from typing import Any

from .common import Mode, mib, run_child, scratch, table
from .queries import QUERIES

NAME = "scale"
OUTCOMES = 500  # count rows per job


def run(mode: Mode) -> dict[str, Any]:
    rows = mode.pick(5_000_000, 50_000_000)
    with scratch("scale") as tmp:
        out = str(tmp / "out")
        built = run_child(["benchmarks.build", json.dumps({"out": out, "count_rows": rows, "outcomes": OUTCOMES})])
        engines = {name: run_child(["benchmarks.queries", name, out], timeout=3600)
                   for name in ("duckdb", "polars", "spark")}
    b = built.value
    write = b["flatten_seconds"] + b["write_seconds"]
    rss = b["rss_after_batches"]
    table(f"6. scale: write {b['count_rows']:,} count rows ({b['jobs']:,} jobs) [python -m benchmarks --only scale]",
          ["", "seconds", "rows/s", "peak RSS MiB", "files", "GiB on disk"],
          [["result_from_raw + flatten + write_dataset, batches of 1M rows", write, b["count_rows"] / write,
            b["peak_build_mib"], b["files_before_compact"], (b["counts_bytes"] + b["jobs_bytes"]) / 2**30],
           ["compact", b["compact_seconds"], b["count_rows"] / max(b["compact_seconds"], 1e-9), "",
            b["files_after_compact"], ""]],
          note=f"RSS after the first batch {rss[0]:.0f} MiB, after the middle one {rss[len(rss) // 2]:.0f} MiB, "
               f"after the last {rss[-1]:.0f} MiB ({len(rss)} batches, {b['commits']} commits). Counts on disk: "
               f"{b['counts_bytes'] / b['count_rows']:.2f} bytes per row. Making the synthetic jobs (not timed "
               f"above) takes about {b['generate_seconds_estimate']:.0f} s.")
    out_rows = []
    for name, c in engines.items():
        v = c.value
        total = sum(v["queries"][q]["seconds"] for q in QUERIES)
        rss_text = f"{mib(c.peak_rss):.0f}" + (f" + JVM {v['jvm_peak_mib']:.0f}" if v.get("jvm_peak_mib") else "")
        out_rows.append([name, v.get("start_seconds", 0.0) + v["open_seconds"],
                         *(v["queries"][q]["seconds"] for q in QUERIES), total,
                         b["count_rows"] / v["queries"]["top_bitstrings"]["seconds"], rss_text])
    digests = [{q: c.value["queries"][q]["digest"] for q in QUERIES} for c in engines.values()]
    table("   queries", ["engine", "start+open s", *(f"{q} s" for q in QUERIES), "total s",
                         "count rows/s (top)", "peak RSS MiB"], out_rows,
          note=f"Engines agree on every answer: {'yes' if all(d == digests[0] for d in digests) else 'NO'}. "
               "Each query runs once, cold. Spark: local[2], spark.driver.memory 2g, 4 shuffle partitions, "
               "session start included in start+open.")
    return {"count_rows": b["count_rows"], "build": b, "engines": {n: c.value for n, c in engines.items()},
            "peak_rss": {n: c.peak_rss for n, c in engines.items()}}
