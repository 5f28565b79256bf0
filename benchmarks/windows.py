"""Benchmark 7: a first export split into two date windows run in parallel (separate OUT_DIRs, --since/--until),
against one export of the whole history, then the two directories queried together. Supports docs/scaling.md:
oqtopus-data has one writer per directory, so windows go to separate directories."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from .cloud import CloudProcess
from .common import Mode, run_child, scratch, table

NAME = "windows"
LATENCY = 0.02


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(2_000, 20_000)
    import duckdb

    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.testing import generate_history
    from oqtopus_data.times import format_time

    history = generate_history(n)
    middle = history.start + timedelta(days=history.days / 2)
    windows = [{"until": format_time(middle - timedelta(microseconds=1))}, {"since": format_time(middle)}]
    with CloudProcess(n, latency=LATENCY) as cloud, scratch("windows") as tmp:
        base = {"url": cloud.url, "token": cloud.token}
        whole = run_child(["benchmarks.tasks", "export", json.dumps({**base, "out": str(tmp / "all")})])
        cloud.reset()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(windows)) as pool:
            parts = list(pool.map(lambda w: run_child(["benchmarks.tasks", "export", json.dumps(
                {**base, "out": str(tmp / f"w{w[0]}"), **w[1]})]), enumerate(windows)))
        parallel = time.perf_counter() - t0
        requests = cloud.stats()["requests"]["total"]
        files = [uri for i in range(len(windows)) for uri in Dataset(tmp / f"w{i}").uris("jobs")]
        t0 = time.perf_counter()
        listed = ", ".join(f"'{f}'" for f in files)
        jobs, distinct = duckdb.execute(f"SELECT count(*), count(DISTINCT job_id) FROM read_parquet([{listed}])"
                                        ).fetchone()
        query = time.perf_counter() - t0
    w = whole.value
    table(f"7. date windows: {n:,} jobs, 2 windows exported in parallel into 2 directories, {LATENCY * 1000:.0f} ms "
          "per request [python -m benchmarks --only windows]",
          ["", "jobs", "seconds", "requests", "client CPU s"],
          [["one export, one directory", w["exported"], whole.wall, sum(w["requests"]["requests"].values()),
            whole.cpu],
           *[[f"  window {i + 1}: {_window(windows[i])}", p.value["exported"], p.wall,
              sum(p.value["requests"]["requests"].values()), p.cpu] for i, p in enumerate(parts)],
           ["two windows in parallel (wall)", sum(p.value["exported"] for p in parts), parallel, requests, ""]],
          note=f"Speed-up {whole.wall / parallel:.2f}x on {_cores()} cores. Both directories read together "
               f"(DuckDB read_parquet over the files of both newest manifests): {jobs:,} job rows, {distinct:,} "
               f"distinct, in {query:.2f} s; the single export has {w['exported']:,}.")
    return {"jobs": n, "whole_seconds": whole.wall, "parallel_seconds": parallel, "speedup": whole.wall / parallel,
            "rows_together": jobs, "distinct_together": distinct, "whole_exported": w["exported"]}


def _window(window: dict[str, str]) -> str:
    return " ".join(f"--{k} {v[:10]}" for k, v in window.items())


def _cores() -> int:
    import os

    return os.cpu_count() or 1
