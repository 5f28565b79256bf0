"""The three aggregate queries of the query and scale benchmarks, per engine, in a child process:
`python -m benchmarks.queries ENGINE OUT_DIR` prints the time of each query and a digest of its answer.

- job_timings: per device, jobs, median queue seconds, mean run seconds (the `job_timings` view);
- device_daily: the `device_daily` view in full (jobs, shots, execution seconds per day, device, status);
- top_bitstrings: the 10 bitstrings with the most counts over every job (a full scan of `counts`).

DuckDB reads through `oqtopus_data.connect` (the bundled views), polars through `oqtopus_data.scan`, Spark (local
mode) through the Parquet files the newest manifest names (`Dataset(out).uris(table)`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

QUERIES = ("job_timings", "device_daily", "top_bitstrings")

DUCKDB_SQL = {
    "job_timings": "SELECT device_id, count(*) AS jobs, median(queue_seconds) AS median_queue_s, "
                   "avg(run_seconds) AS mean_run_s FROM job_timings GROUP BY device_id ORDER BY device_id",
    "device_daily": "SELECT * FROM device_daily ORDER BY day, device_id, status",
    "top_bitstrings": "SELECT bitstring, sum(count) AS n FROM counts GROUP BY bitstring "
                      "ORDER BY n DESC, bitstring LIMIT 10",
}

SPARK_SQL = {
    "job_timings": "SELECT device_id, count(*) AS jobs, "
                   "median((unix_micros(running_at) - unix_micros(submitted_at)) / 1e6) AS median_queue_s, "
                   "avg((unix_micros(ended_at) - unix_micros(running_at)) / 1e6) AS mean_run_s "
                   "FROM jobs GROUP BY device_id ORDER BY device_id",
    "device_daily": "SELECT to_date(submitted_at) AS day, device_id, status, count(*) AS jobs, sum(shots) AS shots, "
                    "sum(execution_time) AS execution_seconds FROM jobs WHERE submitted_at IS NOT NULL "
                    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    "top_bitstrings": DUCKDB_SQL["top_bitstrings"],
}


def _timed(queries: dict[str, Callable[[], list[tuple[Any, ...]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, query in queries.items():
        t0 = time.perf_counter()
        rows = query()
        out[name] = {"seconds": time.perf_counter() - t0, "rows": len(rows), "digest": _digest(name, rows)}
    return out


def _digest(name: str, rows: list[tuple[Any, ...]]) -> Any:
    """A small engine-independent summary of an answer, to check that engines agree."""
    if name == "top_bitstrings":
        return [[str(r[0]), int(r[1])] for r in rows]
    if name == "job_timings":
        return [[str(r[0]), int(r[1])] for r in rows]
    return [len(rows), int(sum(int(r[3]) for r in rows))]


def duckdb_engine(out: str) -> dict[str, Any]:
    import oqtopus_data as od

    t0 = time.perf_counter()
    con = od.connect(out)
    opened = time.perf_counter() - t0
    result = _timed({name: (lambda sql=sql: con.execute(sql).fetchall()) for name, sql in DUCKDB_SQL.items()})
    return {"open_seconds": opened, "queries": result}


def polars_engine(out: str) -> dict[str, Any]:
    import polars as pl

    import oqtopus_data as od

    t0 = time.perf_counter()
    jobs, counts = od.scan(out, "jobs"), od.scan(out, "counts")
    opened = time.perf_counter() - t0

    def timings() -> list[tuple[Any, ...]]:
        frame = (jobs.select(
            "device_id",
            queue=(pl.col("running_at") - pl.col("submitted_at")).dt.total_microseconds() / 1e6,
            run=(pl.col("ended_at") - pl.col("running_at")).dt.total_microseconds() / 1e6)
            .group_by("device_id").agg(pl.len().alias("jobs"), pl.col("queue").median(), pl.col("run").mean())
            .sort("device_id").collect())
        return frame.rows()

    def daily() -> list[tuple[Any, ...]]:
        frame = (jobs.filter(pl.col("submitted_at").is_not_null())
                 .group_by(pl.col("submitted_at").dt.date().alias("day"), "device_id", "status")
                 .agg(pl.len().alias("jobs"), pl.col("shots").sum(), pl.col("execution_time").sum())
                 .sort("day", "device_id", "status").collect())
        return frame.rows()

    def top() -> list[tuple[Any, ...]]:
        frame = (counts.group_by("bitstring").agg(pl.col("count").sum().alias("n"))
                 .sort(["n", "bitstring"], descending=[True, False]).head(10).collect())
        return frame.rows()

    return {"open_seconds": opened, "queries": _timed({"job_timings": timings, "device_daily": daily,
                                                       "top_bitstrings": top})}


def spark_engine(out: str) -> dict[str, Any]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from oqtopus_data.dataset.dataset import Dataset

    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").appName("oqtopus-data-benchmark")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "2g").config("spark.sql.shuffle.partitions", "4")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = Dataset(out)
    manifest = dataset.require_latest()
    for table in ("jobs", "counts"):
        files = dataset.uris(table, manifest)
        frame = spark.read.option("basePath", os.path.join(out, table)).parquet(*files)
        frame.createOrReplaceTempView(table)
    opened = time.perf_counter() - t0
    result = _timed({name: (lambda sql=sql: [tuple(r) for r in spark.sql(sql).collect()])
                     for name, sql in SPARK_SQL.items()})
    jvm = _jvm_peak_mib(spark)
    spark.stop()
    return {"start_seconds": started, "open_seconds": opened, "queries": result, "jvm_peak_mib": jvm}


def _jvm_peak_mib(spark: Any) -> float | None:
    """VmHWM of the JVM that pyspark started (a grandchild: wait4 of the Python child does not include it)."""
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    pid = getattr(proc, "pid", None)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


ENGINES = {"duckdb": duckdb_engine, "polars": polars_engine, "spark": spark_engine}

if __name__ == "__main__":
    print(json.dumps(ENGINES[sys.argv[1]](sys.argv[2]), default=str))
