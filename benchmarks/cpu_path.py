"""Benchmark 2: the CPU path (read_job -> flatten -> write_dataset) on in-memory payloads, against the
parse floor (orjson.loads of the same JSON) and against a DuckDB script that builds the same tables from a
JSON-lines dump. Targets (issue 24): at most 60 us of CPU per history job and faster than the DuckDB script there; at
most 5x the parse floor on count-heavy jobs. A missed target says by how much.

`read_job` is what the exporter calls on each fetched job (its JSON already parsed by the client and its archives):
msgspec's typed decoder checks it against the declarations of `tables.typed` in C, and a job it refuses is read
into its result object as before (`result_from_raw`). The parse floor is orjson.loads of the same JSON, so the
ratio is "everything after parsing" over "parsing".

Two inputs: the synthetic history (all job types, about 28 count rows per job: per-job costs dominate) and
count-heavy sampling jobs (1,000 count rows per job: per-row costs dominate). From the two, the cost model
`CPU = a x jobs + b x count rows` used by docs/scaling.md.
"""

from __future__ import annotations

import gc
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import Mode, dir_bytes, met, run_child, scratch, table

NAME = "cpu"
BATCH = 500  # jobs per flatten call, as the exporter does
WARM = 100  # jobs run through the path once before timing it
EXPORTED_AT = datetime(2025, 1, 1, tzinfo=UTC)
US_PER_JOB = 60  # target: CPU us per history job (read_job + flatten + write_dataset)
HEAVY_X_FLOOR = 5  # target: count-heavy jobs, oqtopus-data / parse floor


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(20_000, 100_000)
    heavy_jobs = mode.pick(1_000, 5_000)
    from .payloads import history_jsonl

    dump = history_jsonl(n)  # cached between runs; generating it is not timed
    with scratch("cpu") as tmp:
        hist = run_child(["benchmarks.cpu_path", json.dumps({"dump": str(dump), "tmp": str(tmp / "h")})]).value
        heavy_dump = tmp / "heavy.jsonl"
        _write_heavy(heavy_dump, heavy_jobs)
        heavy = run_child(["benchmarks.cpu_path", json.dumps({"dump": str(heavy_dump), "tmp": str(tmp / "c")})]).value
    for label, r in ((f"synthetic history, {r_jobs(hist)} jobs", hist),
                     (f"count-heavy, {r_jobs(heavy)} jobs x 1,000 outcomes", heavy)):
        rows = r["count_rows"]
        ours = r["ours"]["total"]
        table(f"2. CPU path: {label}, {rows:,} count rows [python -m benchmarks --only cpu]",
              ["", "seconds", "CPU s", "count rows/s", "jobs/s", "x floor"],
              [["oqtopus-data: read_job + flatten + write_dataset", ours, r["ours"]["cpu"], rows / ours,
                r["jobs"] / ours, ours / r["floor_results"]],
               ["   read_job (typed decode, or result_from_raw)", r["ours"]["from_raw"], "", "", "", ""],
               ["   flatten (batches of 500), concat", r["ours"]["flatten"], "", "", "", ""],
               ["   write_dataset (Parquet zstd, fsync, commit)", r["ours"]["write"], "", "", "", ""],
               ["oqtopus-data from the JSON-lines file (+ read, orjson.loads)", r["ours_file"]["total"],
                r["ours_file"]["cpu"], rows / r["ours_file"]["total"], r["jobs"] / r["ours_file"]["total"],
                r["ours_file"]["total"] / r["floor_results"]],
               ["DuckDB script from the JSON-lines file (read_json, unnest, COPY)", r["duckdb"]["seconds"],
                r["duckdb"]["cpu"], rows / r["duckdb"]["seconds"], r["jobs"] / r["duckdb"]["seconds"],
                r["duckdb"]["seconds"] / r["floor_results"]],
               ["parse floor: orjson.loads of each result archive's JSON", r["floor_results"], "",
                rows / r["floor_results"], r["jobs"] / r["floor_results"], 1.0],
               ["orjson.loads of each whole job (job_info inline)", r["floor_all"], "", rows / r["floor_all"],
                r["jobs"] / r["floor_all"], r["floor_all"] / r["floor_results"]]],
              note=f"Input: result archives' JSON {r['result_bytes'] / 2**20:.1f} MiB, whole jobs "
                   f"{r['all_bytes'] / 2**20:.1f} MiB. Payloads are parsed dicts in memory, frozen out of the garbage "
                   f"collector (gc.freeze) before timing; the path runs once on {WARM} jobs first (imports, first "
                   "calls are paid once per process). The read_job row is the typed decode of the parsed job (and "
                   "the result object of a job it refuses); the parse floor is orjson.loads of the result archives' "
                   "JSON alone. Both oqtopus-data and the DuckDB script write the four tables jobs, counts, "
                   "divided_counts, estimations as zstd Parquet partitioned by month; same row counts: "
                   f"{'yes' if r['duckdb']['rows'] == r['ours']['rows'] else 'NO'}. DuckDB uses "
                   f"{r['duckdb']['threads']} threads, oqtopus-data one. Parquet bytes per count row: "
                   f"{r['ours']['bytes_per_count_row']:.1f}.")
    a, b = _cost_model(hist, heavy)
    per_job = hist["ours"]["cpu"] / hist["jobs"] * 1e6
    heavy_floor = heavy["ours"]["total"] / heavy["floor_results"]
    vs_duckdb = hist["ours"]["total"] / hist["duckdb"]["seconds"]
    heavy_duckdb = heavy["ours"]["total"] / heavy["duckdb"]["seconds"]
    table("   targets", ["", "value", "target", "met", "missed by"], [
        ["history: CPU per job (read_job + flatten + write_dataset)", f"{per_job:.0f} us",
         f"<= {US_PER_JOB} us", met(per_job <= US_PER_JOB), _missed(per_job, US_PER_JOB)],
        ["history: oqtopus-data / DuckDB script", f"{vs_duckdb:.2f}x", "< 1x", met(vs_duckdb < 1),
         _missed(vs_duckdb, 1)],
        ["count-heavy: oqtopus-data / parse floor", f"{heavy_floor:.1f}x", f"<= {HEAVY_X_FLOOR}x",
         met(heavy_floor <= HEAVY_X_FLOOR), _missed(heavy_floor, HEAVY_X_FLOOR)],
        ["count-heavy: oqtopus-data / DuckDB script", f"{heavy_duckdb:.2f}x", "< 1x", met(heavy_duckdb < 1),
         _missed(heavy_duckdb, 1)],
        ["history: oqtopus-data / parse floor (for reference)",
         f"{hist['ours']['total'] / hist['floor_results']:.1f}x", "", "", ""],
    ], note=f"cost model fitted on both inputs: {a * 1e6:.0f} us per job + {b * 1e6:.2f} us per count row. Run "
            "alone: `python -m benchmarks --only cpu` (the DuckDB script uses every core: a loaded machine slows it "
            "more than the one-threaded path). The figures before a change beside these: --baseline FILE "
            "(benchmarks/baselines/).")
    return {"history": hist, "heavy": heavy, "us_per_job": a * 1e6, "us_per_count_row": b * 1e6,
            "cpu_us_per_history_job": per_job, "heavy_x_floor": heavy_floor}


def _missed(value: float, target: float) -> str:
    """By how much a figure misses its upper target ("" when it meets it): the excess as a factor of the target."""
    return "" if value <= target else f"{value / target:.2f}x the target"


def r_jobs(r: dict[str, Any]) -> str:
    return f"{r['jobs']:,}"


def _cost_model(hist: dict[str, Any], heavy: dict[str, Any]) -> tuple[float, float]:
    """Solve total = a x jobs + b x count rows on the two inputs (count rows include divided counts)."""
    j1, r1, t1 = hist["jobs"], hist["all_count_rows"], hist["ours"]["total"]
    j2, r2, t2 = heavy["jobs"], heavy["all_count_rows"], heavy["ours"]["total"]
    det = j1 * r2 - j2 * r1
    if det == 0:
        return t1 / j1, 0.0
    a = (t1 * r2 - t2 * r1) / det
    b = (j1 * t2 - j2 * t1) / det
    return max(a, 0.0), max(b, 0.0)


def _write_heavy(path: Path, n_jobs: int) -> None:
    import orjson

    from . import synthetic

    with open(path, "wb") as fh:
        for first in range(0, n_jobs, 1000):
            for job in synthetic.jobs(min(1000, n_jobs - first), 1000, first=first, total=n_jobs, seed=7):
                fh.write(orjson.dumps(job) + b"\n")


def convert(source: list[dict[str, Any]], out: Path) -> int:
    """The exporter's CPU path on parsed jobs: read_job and flatten in batches of BATCH, one write_dataset."""
    import pyarrow as pa

    from oqtopus_data import flatten, write_dataset
    from oqtopus_data.tables.typed import read_job

    parts = []
    for i in range(0, len(source), BATCH):
        parts.append(flatten([read_job(job) for job in source[i:i + BATCH]], exported_at=EXPORTED_AT))
    tables = {name: pa.concat_tables([p[name] for p in parts]) for name in parts[0]}
    write_dataset(tables, out)
    return tables["jobs"].num_rows


# ------------------------------------------------------------------------------------------ the child process
def _child(dump: str, tmp: str) -> dict[str, Any]:
    import orjson

    from oqtopus_data import flatten, write_dataset
    from oqtopus_data.tables.typed import read_job

    from . import duckdb_script

    work = Path(tmp)
    raw = Path(dump).read_bytes()
    lines = [line for line in raw.splitlines() if line]
    jobs = [orjson.loads(line) for line in lines]
    results_json = [orjson.dumps(j["job_info"]["result"]) for j in jobs
                    if isinstance(j.get("job_info"), dict) and "result" in j["job_info"]]
    gc.collect()
    gc.freeze()

    def ours(source: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        import pyarrow as pa

        # Batch by batch, as the exporter does: decoded jobs live only while their batch is flattened (keeping
        # all of them alive would make the garbage collector's passes, and so the per-job cost, grow with N).
        c0, t0 = time.process_time(), time.perf_counter()
        parts, from_raw = [], 0.0
        for i in range(0, len(source), BATCH):
            b0 = time.perf_counter()
            results = [read_job(job) for job in source[i:i + BATCH]]
            from_raw += time.perf_counter() - b0
            parts.append(flatten(results, exported_at=EXPORTED_AT))
        tables = {name: pa.concat_tables([p[name] for p in parts]) for name in parts[0]}
        t1 = t0 + from_raw
        t2 = time.perf_counter()
        write_dataset(tables, out)
        t3 = time.perf_counter()
        rows = {name: t.num_rows for name, t in tables.items() if name != "errors"}
        return {"from_raw": from_raw, "flatten": t2 - t1, "write": t3 - t2, "total": t3 - t0,
                "cpu": time.process_time() - c0, "rows": rows,
                "bytes_per_count_row": dir_bytes(out, "counts") / max(1, rows["counts"]),
                "bytes_by_table": {name: dir_bytes(out, name) for name in rows}}

    result = {"jobs": len(jobs), "result_bytes": sum(map(len, results_json)), "all_bytes": sum(map(len, lines))}
    ours(jobs[:WARM], work / "warm")  # imports and first calls: once per process, not per job
    shutil.rmtree(work / "warm", ignore_errors=True)
    result["ours"] = ours(jobs, work / "ours")
    result["count_rows"] = result["ours"]["rows"]["counts"]
    result["all_count_rows"] = result["count_rows"] + result["ours"]["rows"]["divided_counts"]
    shutil.rmtree(work / "ours", ignore_errors=True)

    t0 = time.perf_counter()
    for data in results_json:
        orjson.loads(data)
    result["floor_results"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for data in lines:
        orjson.loads(data)
    result["floor_all"] = time.perf_counter() - t0

    del jobs
    gc.unfreeze()
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    parsed = [orjson.loads(line) for line in Path(dump).read_bytes().splitlines() if line]
    file_part = time.perf_counter() - t0
    inner = ours(parsed, work / "ours_file")
    result["ours_file"] = {"total": file_part + inner["total"], "cpu": time.process_time() - c0}
    del parsed
    gc.collect()

    import duckdb

    c0, t0 = time.process_time(), time.perf_counter()
    rows = duckdb_script.run(Path(dump), work / "duckdb")
    result["duckdb"] = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": rows,
                        "threads": duckdb.execute("SELECT current_setting('threads')").fetchone()[0]}
    return result


if __name__ == "__main__":
    print(json.dumps(_child(**json.loads(sys.argv[1]))))
