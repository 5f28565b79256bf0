"""Benchmark `report`: `oqtopus-data report` (write_report) over exports of 20,000 and 100,000 jobs (quick, the
time for a million extrapolated from the two) or 1,000,000 jobs (full), against the target of 15 s for a million.

The export is built like a long history: sampling and estimation jobs on two simulators and two QPUs over two
years, most statuses succeeded, a fifth of the jobs failed or cancelled, 70 % of the sampling jobs running one of
40 repeated circuits (under many job names) and the rest a circuit of their own, 8 outcomes per sampling job, and
monthly device snapshots with calibrations, so every section of the report has work to do. Building and
reporting run in child processes (times and peak RSS are theirs):

    python -m benchmarks --only report [--full]
    python -m benchmarks.report build '{"out": "OUT", "jobs": 100000}'   # only the export
    python -m benchmarks.report render OUT report.html                   # only the report
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .common import Mode, mib, run_child, scratch, table

NAME = "report"
TARGET_SECONDS = 15.0  # for 1,000,000 jobs
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 730 * 86400
DEVICES = (("SVSim", "simulator"), ("qulacs", "simulator"), ("Kawasaki", "QPU"), ("Urchin", "QPU"))
STATUSES = ("succeeded", "failed", "cancelled", "running")
CIRCUITS = 40  # repeated circuits: GHZ states of 2 to 41 qubits


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ghz(width: int, extra: str = "") -> str:
    gates = "".join(f"cx q[{q}], q[{q + 1}];\n" for q in range(width - 1))
    return f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[{width}] q;\nbit[{width}] c;\n{extra}h q[0];\n{gates}' \
           "c = measure q;\n"


def jobs(first: int, n: int, total: int, seed: int = 0) -> list[dict[str, Any]]:
    """Jobs number `first`..`first + n` of a `total`-job history (see the module docstring)."""
    rng = np.random.default_rng([seed, first])
    device = rng.choice(4, n, p=[0.35, 0.2, 0.3, 0.15]).tolist()
    status = rng.choice(4, n, p=[0.8, 0.12, 0.07, 0.01]).tolist()
    estimation = (rng.random(n) < 0.2).tolist()
    repeated = (rng.random(n) < 0.7).tolist()
    circuit = rng.integers(0, CIRCUITS, n).tolist()
    queue = rng.exponential(300.0, n).tolist()
    run = rng.uniform(0.5, 60.0, n).tolist()
    shots = rng.choice([100, 1000, 4096, 10000], n).tolist()
    noise = rng.uniform(0.0, 0.3, (n, 8))
    out = []
    for k in range(n):
        i = first + k
        submitted = START + timedelta(seconds=SPAN_SECONDS * i / total)
        width = 2 + circuit[k] % CIRCUITS
        program = _ghz(width) if repeated[k] else _ghz(width, f"rz({i * 1e-6:.6f}) q[0];\n")
        state = STATUSES[status[k]]
        qpu = DEVICES[device[k]][1] == "QPU"
        job: dict[str, Any] = {
            "job_id": f"{i:08x}-0000-4000-8000-{seed:012x}", "name": f"ghz-{width}-{i % 50}",
            "job_type": "estimation" if estimation[k] else "sampling", "status": state,
            "device_id": DEVICES[device[k]][0], "shots": shots[k], "submitted_at": _iso(submitted),
            "job_info": {"input": {"program": [program]}},
        }
        if state != "running":
            running = submitted + timedelta(seconds=queue[k])
            job.update(ready_at=_iso(submitted), running_at=_iso(running),
                       ended_at=_iso(running + timedelta(seconds=run[k])), execution_time=round(run[k], 3))
        if state == "succeeded" and estimation[k]:
            job["job_info"]["result"] = {"estimation": {"exp_value": -1.0 + 0.1 * noise[k, 0], "stds": 0.01}}
            job["job_info"]["input"]["operator"] = [{"pauli": "Z 0 Z 1", "coeff": 1.0}]
        elif state == "succeeded":
            job["job_info"]["result"] = {"sampling": {"counts": _counts(width, shots[k], noise[k] * qpu)}}
        elif state == "failed":
            job["job_info"]["message"] = "execution error: device went offline during the run"
        out.append(job)
    return out


def _counts(width: int, shots: int, noise: np.ndarray) -> dict[str, int]:
    """Two GHZ peaks and up to six one-bit errors: 8 outcomes at most."""
    err = float(noise.mean()) * 0.2
    keys = ["0" * width, "1" * width] + ["0" * j + "1" + "0" * (width - j - 1) for j in range(min(6, width))]
    weights = [(1 - err) / 2, (1 - err) / 2] + [err / 6] * (len(keys) - 2)
    counts = np.floor(np.array(weights) / sum(weights) * shots).astype(int)
    counts[0] += shots - counts.sum()
    return {key: int(c) for key, c in zip(keys, counts, strict=True) if c > 0}


def batches(total: int, size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    for first in range(0, total, size):
        yield jobs(first, min(size, total - first), total)


def snapshots() -> list[tuple[datetime, list[dict[str, Any]]]]:
    """A device snapshot every 30 days, each QPU recalibrated six hours before it."""
    out = []
    at = START
    while at < START + timedelta(seconds=SPAN_SECONDS):
        at += timedelta(days=30)
        calibrated = _iso(at - timedelta(hours=6))
        out.append((at, [{"device_id": d, "device_type": kind, "status": "available", "n_qubits": 64,
                          **({"calibrated_at": calibrated} if kind == "QPU" else {})} for d, kind in DEVICES]))
    return out


def build(out: str, n_jobs: int) -> dict[str, Any]:
    """Write the export in batches (one commit each), then compact; returns the time and the size."""
    import pyarrow as pa

    from oqtopus_data import flatten, result_from_raw, write_dataset
    from oqtopus_data.dataset.dataset import Dataset, compact
    from oqtopus_data.tables.devices import devices_table

    started = time.perf_counter()
    written = 0
    for batch in batches(n_jobs):
        tables = flatten([result_from_raw(job) for job in batch], exported_at=START + timedelta(days=800))
        if not written:
            tables["devices"] = pa.concat_tables([devices_table(records, at) for at, records in snapshots()])
        write_dataset(tables, out)
        written += tables["jobs"].num_rows
    compact(Dataset(out))
    bytes_on_disk = sum(p.stat().st_size for p in Path(out).rglob("*.parquet"))
    return {"jobs": written, "seconds": time.perf_counter() - started, "bytes": bytes_on_disk}


def render(out: str, target: str) -> dict[str, Any]:
    """Time write_report over the export (cold: a fresh process, nothing cached)."""
    from oqtopus_data.report import write_report

    started = time.perf_counter()
    summary = write_report(out, target)
    return {"seconds": time.perf_counter() - started, "charts": summary.charts, "jobs": summary.jobs,
            "bytes": Path(target).stat().st_size}


def run(mode: Mode) -> dict[str, Any]:
    sizes = mode.pick((20_000, 100_000), (1_000_000,))
    figures = []
    with scratch("report") as tmp:
        for n_jobs in sizes:
            out, target = str(tmp / f"out-{n_jobs}"), str(tmp / f"report-{n_jobs}.html")
            built = run_child(["benchmarks.report", "build", json.dumps({"out": out, "jobs": n_jobs})])
            report = run_child(["benchmarks.report", "render", out, target])
            figures.append({**report.value, "peak_rss": report.peak_rss, "build_seconds": built.value["seconds"],
                            "export_bytes": built.value["bytes"]})
    if len(figures) == 2:  # a fixed cost plus a cost per job, through the two sizes
        (n1, t1), (n2, t2) = ((f["jobs"], f["seconds"]) for f in figures)
        million = t1 + (t2 - t1) / (n2 - n1) * (1_000_000 - n1)
        how = f"extrapolated linearly from {n1:,} and {n2:,} jobs"
    else:
        million, how = figures[0]["seconds"], "measured"
    met = "met" if million <= TARGET_SECONDS else "MISSED"
    sizes_text = ", ".join(f"{f['jobs']:,}" for f in figures)
    table(f"report: oqtopus-data report over {sizes_text} jobs "
          "[python -m benchmarks --only report]",
          ["jobs", "report s", "charts", "HTML MiB", "peak RSS MiB", "export built s", "export MiB"],
          [[f["jobs"], f["seconds"], f["charts"], mib(f["bytes"]), mib(f["peak_rss"]), f["build_seconds"],
            mib(f["export_bytes"])] for f in figures],
          note=f"""write_report timed in a fresh process (cold caches): every section's DuckDB queries (drift
normalises and hashes each distinct program), the SVG charts and the job table of the newest 2,000 jobs.
1,000,000 jobs: {million:.1f} s ({how}); target {TARGET_SECONDS:.0f} s: {met}.""")
    return {"figures": figures, "million_seconds": million, "million_how": how, "target": met}


if __name__ == "__main__":
    if sys.argv[1] == "build":
        args = json.loads(sys.argv[2])
        print(json.dumps(build(args["out"], args["jobs"])))
    else:
        print(json.dumps(render(sys.argv[2], sys.argv[3])))
