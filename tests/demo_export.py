"""A realistic export built without HTTP: the fake cloud's synthetic history, flattened and written to Parquet.

Shared by the report and example tests (and handy in a REPL):

    from demo_export import build_demo_export  # tests/ is on sys.path under pytest
    build_demo_export("demo-out")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

import oqtopus_data
from oqtopus_data.tables.devices import devices_table
from oqtopus_data.testing.synth import generate_history


def demo_jobs(n_jobs: int = 400, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The history's submitted jobs (full API payloads, job_info inline) and its device list."""
    history = generate_history(n_jobs, seed=seed)
    jobs = (history.job(job_id) for job_id in history.job_ids())
    # A registered job carries only job_id and status: the exporter never writes it, so neither do we.
    return [job for job in jobs if job["status"] != "registered"], history.devices()


def write_export(jobs: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike[str],
                 snapshots: Iterable[tuple[datetime, Iterable[Mapping[str, Any]]]] = ()) -> Path:
    """Write jobs (API payloads) and device snapshots ((snapshot_at, GET /devices records)) to `out_dir` in one
    commit, as an export run does."""
    tables = oqtopus_data.flatten([oqtopus_data.result_from_raw(job) for job in jobs])
    devices = [devices_table(records, at) for at, records in snapshots]
    if devices:
        tables["devices"] = pa.concat_tables(devices)
    oqtopus_data.write_dataset(tables, out_dir)
    return Path(out_dir)


def monthly_snapshots(devices: list[dict[str, Any]], first: datetime, last: datetime
                      ) -> list[tuple[datetime, list[dict[str, Any]]]]:
    """A device snapshot every 30 days from `first` to after `last`, as monthly incremental exports record them;
    each QPU's calibrated_at is six hours before its snapshot, so calibrations change over the history."""
    out = []
    at = first
    while True:
        at += timedelta(days=30)
        calibrated = (at - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append((at, [{**d, "calibrated_at": calibrated} if "calibrated_at" in d else d for d in devices]))
        if at > last:
            return out


def build_demo_export(out_dir: str | os.PathLike[str], n_jobs: int = 400, seed: int = 0) -> Path:
    """Build the demo export in `out_dir`: `n_jobs` synthetic jobs over 300 days and monthly device snapshots."""
    jobs, devices = demo_jobs(n_jobs, seed)
    times = [datetime.fromisoformat(job["submitted_at"].replace("Z", "+00:00")) for job in jobs]
    return write_export(jobs, out_dir, monthly_snapshots(devices, min(times), max(times)))


if __name__ == "__main__":  # python tests/demo_export.py demo-out
    import sys

    print(build_demo_export(sys.argv[1] if len(sys.argv) > 1 else "demo-out"))
