"""Benchmark `calibration`: the `job_calibration` view over 1 million jobs in DuckDB (`oqtopus_data.connect`).

A year of jobs on the demo's four devices (QPU jobs carry a virtual_physical_mapping of 1 to 8 qubits) and the
local cloud's calibration history of its two QPUs, one calibration every six hours (about 1,460 each, 80 qubits and
136 couplings per pair of them). The jobs table is built column by column (no payloads: this measures the view, not
the flattener). The child `python -m benchmarks.calibration '{"out": ..., "jobs": N}'` builds, then times:

- job_calibration: the whole view fetched as Arrow (every job, its calibration, its qubits' and couplings' figures);
- per_device: jobs with a calibration, mean readout error and mean calibration age per device (one pass over it).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .common import Mode, mib, run_child, scratch, table

NAME = "calibration"
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 366
DEVICES = ("SVSim", "Kawasaki", "Urchin", "qulacs")
QUBITS = {"Kawasaki": 64, "Urchin": 16}


def run(mode: Mode) -> dict[str, Any]:
    jobs = mode.pick(1_000_000, 1_000_000)  # the size either way: the view is DuckDB's work alone
    with scratch("calibration") as tmp:
        child = run_child(["benchmarks.calibration", json.dumps({"out": str(tmp / "out"), "jobs": jobs})])
    v = child.value
    table(f"calibration: the job_calibration view over {v['jobs']:,} jobs in DuckDB "
          "[python -m benchmarks --only calibration]",
          ["jobs", "calibrations", "qubit rows", "build s", "open s", "job_calibration s", "per_device s",
           "peak RSS MiB"],
          [[v["jobs"], v["calibrations"], v["qubit_rows"], v["build_seconds"], v["open_seconds"],
            v["queries"]["job_calibration"], v["queries"]["per_device"], mib(child.peak_rss)]],
          note=f"""job_calibration = SELECT * FROM job_calibration fetched as Arrow, {v['with_calibration']:,} jobs
with a calibration, {v['with_couplings']:,} of them on calibrated couplings; per_device = one aggregate over the
view. Each query is run once, cold. Built column by column with write_dataset (not through the flattener).""")
    return {**v, "peak_rss_mib": mib(child.peak_rss)}


def build(out: str, jobs: int, seed: int = 0) -> dict[str, Any]:
    """Write `jobs` jobs and a year of calibrations to `out`; returns what was written."""
    import numpy as np
    import pyarrow as pa

    from oqtopus_data import write_dataset
    from oqtopus_data.tables import schema as S
    from oqtopus_data.tables.calibrations import calibration_rows
    from oqtopus_data.testing import generate_history

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    span = DAYS * 86400 * 1_000_000
    submitted = np.datetime64(START.replace(tzinfo=None), "us") + (np.arange(jobs) * (span // jobs)).astype(
        "timedelta64[us]")
    running = submitted + (rng.exponential(120.0, jobs) * 1e6).astype("timedelta64[us]")
    device = rng.choice(len(DEVICES), jobs, p=[0.35, 0.3, 0.15, 0.2])
    width = np.minimum(rng.geometric(0.35, jobs), 8)
    mappings = []
    for d, w in zip(device.tolist(), width.tolist(), strict=True):
        n = QUBITS.get(DEVICES[d], 30)
        qubits = rng.choice(n, w, replace=False).tolist() if DEVICES[d] in QUBITS else list(range(w))
        mappings.append(json.dumps({"qubit_mapping": {str(v): p for v, p in enumerate(qubits)},
                                    "bit_mapping": {str(v): v for v in range(w)}}))
    status = rng.choice(["succeeded", "failed", "cancelled"], jobs, p=[0.92, 0.05, 0.03])
    columns = {
        "job_id": pa.array([f"{i:08x}-0000-4000-8000-{seed:012x}" for i in range(jobs)]),
        "job_type": pa.array(["sampling"] * jobs), "status": pa.array(status.tolist()),
        "device_id": pa.array(np.array(DEVICES)[device].tolist()), "shots": pa.array(rng.choice([1000, 4096], jobs)),
        "submitted_at": pa.array(submitted, S.TIMESTAMP), "running_at": pa.array(running, S.TIMESTAMP),
        "execution_time": pa.array(rng.uniform(0.05, 30.0, jobs)), "virtual_physical_mapping": pa.array(mappings),
        "submitted_month": pa.array(np.datetime_as_string(submitted.astype("datetime64[M]")).tolist()),
    }
    schema = S.SCHEMAS["jobs"]
    jobs_table = pa.table({f.name: columns.get(f.name, pa.nulls(jobs, f.type)) for f in schema}, schema=schema)
    history, known = generate_history(0, seed=seed), set()
    qubits, couplings = [], []
    for slot in range(DAYS * 4 + 1):  # one snapshot per six-hour slot, after its calibration
        at = START + timedelta(hours=6 * slot + 3)
        found = calibration_rows(history.devices(at), at, known)
        qubits.append(found.qubits)
        couplings.append(found.couplings)
    write_dataset({"jobs": jobs_table, "qubit_calibrations": pa.concat_tables(qubits),
                   "coupling_calibrations": pa.concat_tables(couplings)}, out)
    qubit_rows = sum(t.num_rows for t in qubits)
    return {"jobs": jobs, "calibrations": len(known), "qubit_rows": qubit_rows,
            "build_seconds": time.perf_counter() - started}


QUERIES = {
    "job_calibration": "SELECT * FROM job_calibration",
    "per_device": "SELECT device_id, count(calibrated_at) AS calibrated, avg(mean_readout_error) AS readout, "
                  "avg(calibration_age_seconds) AS age FROM job_calibration GROUP BY device_id ORDER BY device_id",
}


def measure(out: str, jobs: int) -> dict[str, Any]:
    """Build, then time the view in a fresh connection."""
    import oqtopus_data as od

    built = build(out, jobs)
    t0 = time.perf_counter()
    con = od.connect(out)
    built["open_seconds"] = time.perf_counter() - t0
    built["queries"] = {}
    for name, sql in QUERIES.items():
        t0 = time.perf_counter()
        result = con.sql(sql).to_arrow_table()
        built["queries"][name] = time.perf_counter() - t0
        if name == "job_calibration":
            built["with_calibration"] = result.num_rows - result["calibrated_at"].null_count
            built["with_couplings"] = result.num_rows - result["mean_fidelity_2q"].null_count
    built["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return built


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
