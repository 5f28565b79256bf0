"""Benchmark 5: the `job_timings` and `device_daily` views and a top-bitstrings query over a dataset of 1 million
(quick) or 10 million (full) count rows, through DuckDB (`oqtopus_data.connect`) and polars (`oqtopus_data.scan`)."""

from __future__ import annotations

import json
from typing import Any

from .common import Mode, met, mib, run_child, scratch, table
from .queries import QUERIES

NAME = "query"
OUTCOMES = 100  # count rows per job: 10,000 jobs per million count rows


def run(mode: Mode) -> dict[str, Any]:
    rows = mode.pick(1_000_000, 10_000_000)
    with scratch("query") as tmp:
        out = str(tmp / "out")
        built = run_child(["benchmarks.build", json.dumps({"out": out, "count_rows": rows, "outcomes": OUTCOMES})])
        engines = {name: run_child(["benchmarks.queries", name, out]) for name in ("duckdb", "polars")}
    b = built.value
    table(f"5. query: {b['count_rows']:,} count rows, {b['jobs']:,} jobs [python -m benchmarks --only query]",
          ["engine", "open s", *(f"{q} s" for q in QUERIES), "peak RSS MiB"],
          [[name, c.value["open_seconds"], *(c.value["queries"][q]["seconds"] for q in QUERIES), mib(c.peak_rss)]
           for name, c in engines.items()],
          note=f"""open = oqtopus_data.connect (DuckDB views over the manifest's files) / oqtopus_data.scan (polars);
each query is run once, cold, and its whole answer fetched. Engines agree on every answer: {_agree(engines)}.
Built with result_from_raw + flatten + write_dataset in batches of 1,000,000 count rows, then compact:
{b['flatten_seconds'] + b['write_seconds']:.1f} s, {b['files_after_compact']} files, counts
{b['counts_bytes'] / b['count_rows']:.1f} bytes per row on disk.""")
    return {"count_rows": b["count_rows"], "jobs": b["jobs"],
            "engines": {name: c.value for name, c in engines.items()}, "agree": _agree(engines)}


def _agree(engines: dict[str, Any]) -> str:
    digests = [{q: c.value["queries"][q]["digest"] for q in QUERIES} for c in engines.values()]
    return met(all(d == digests[0] for d in digests))
