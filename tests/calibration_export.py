"""A small export built by hand for the calibration and usage views: one QPU calibrated twice, a simulator, and jobs
before, between, at and after the calibrations (tests/ is on sys.path under pytest).

Every value is a sum of powers of two, so means and medians are exact and rows can be compared whole.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from oqtopus_data import write_dataset
from oqtopus_data.tables import schema as S
from oqtopus_data.tables.calibrations import calibration_rows
from oqtopus_data.tables.devices import devices_snapshot

CAL1 = datetime(2025, 1, 1, tzinfo=UTC)
CAL2 = datetime(2025, 1, 2, tzinfo=UTC)
SEEN1 = datetime(2025, 1, 1, 0, 15, tzinfo=UTC)
SEEN2 = datetime(2025, 1, 2, 0, 15, tzinfo=UTC)


def qubit(q: int, t1: float, t2: float, fidelity: float, **meas: float) -> dict[str, Any]:
    return {"id": q, "physical_id": 100 + q, "fidelity": fidelity, "meas_error": meas,
            "qubit_lifetime": {"t1": t1, "t2": t2}}


FIRST = {"qubits": [qubit(0, 100, 50, 0.75, readout_assignment_error=0.25),
                    qubit(1, 200, 150, 0.5, prob_meas1_prep0=0.0625, prob_meas0_prep1=0.1875),  # readout 0.125
                    qubit(2, 300, 250, 1.0, readout_assignment_error=0.5)],
         "couplings": [{"control": 0, "target": 1, "fidelity": 0.5}, {"control": 1, "target": 2, "fidelity": 0.75}]}
SECOND = {"qubits": [qubit(0, 50, 25, 0.875, readout_assignment_error=0.0625),
                     qubit(1, 150, 100, 0.625, readout_assignment_error=0.375)],  # qubit 2 is not calibrated
          "couplings": [{"control": 0, "target": 1, "fidelity": 0.875}]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def job(job_id: str, device: str, submitted: str | None, running: str | None, mapping: Any, *,
        status: str = "succeeded", job_type: str = "sampling", shots: int = 1000,
        seconds: float | None = 2.0) -> dict[str, Any]:
    submitted_at = at(submitted) if submitted else None
    return {**dict.fromkeys(S.JOBS.column_names), "job_id": job_id, "name": job_id, "job_type": job_type,
            "status": status, "device_id": device, "shots": shots, "submitted_at": submitted_at,
            "running_at": at(running) if running else None, "execution_time": seconds,
            "virtual_physical_mapping": mapping if mapping is None or isinstance(mapping, str) else json.dumps(
                {"qubit_mapping": {str(v): p for v, p in enumerate(mapping)}, "bit_mapping": {}}),
            "submitted_month": submitted_at.strftime("%Y-%m") if submitted_at else S.UNKNOWN_MONTH}


JOBS = [
    job("a-before", "QPU", "2024-12-31T23:00", "2024-12-31T23:30", [0, 1], seconds=4.0),
    job("b-between", "QPU", "2025-01-01T05:00", "2025-01-01T06:00", [1, 0], shots=2000, seconds=8.0),
    job("c-at-the-instant", "QPU", "2025-01-01T20:00", "2025-01-02T00:00", [0], status="failed", seconds=1.0),
    job("d-after-some-uncalibrated", "QPU", "2025-01-02T23:00", "2025-01-03T00:00", [0, 1, 2, 7],
        job_type="estimation", seconds=16.0),
    job("e-never-ran", "QPU", "2025-01-01T12:00", None, None, status="cancelled", shots=500, seconds=None),
    job("f-simulator", "SIM", "2025-01-02T11:00", "2025-01-02T12:00", [0, 1], seconds=0.5),
    job("g-no-mapping", "QPU", "2025-01-02T05:00", "2025-01-02T06:00", None, status="cancelled", seconds=0.25),
    job("h-bad-mapping", "QPU", "2025-01-01T02:00", "2025-01-01T03:00", "not json", seconds=2.0),
]


def devices(info: dict[str, Any], calibrated: datetime) -> list[dict[str, Any]]:
    return [{"device_id": "QPU", "device_type": "QPU", "n_qubits": 8, "calibrated_at": calibrated.isoformat(),
             "device_info": json.dumps(info)},
            {"device_id": "SIM", "device_type": "simulator", "device_info": json.dumps({"max_qubits": 30})}]


def build(out: str | os.PathLike[str]) -> Path:
    """Write the export: the jobs, and two device snapshots, each seeing one calibration."""
    known: set = set()
    tables: dict[str, list[pa.Table]] = {"devices": [], "qubit_calibrations": [], "coupling_calibrations": []}
    for info, calibrated, seen in ((FIRST, CAL1, SEEN1), (SECOND, CAL2, SEEN2)):
        records = devices(info, calibrated)
        rows = calibration_rows(records, seen, known)
        tables["devices"].append(devices_snapshot(records, seen).table)
        tables["qubit_calibrations"].append(rows.qubits)
        tables["coupling_calibrations"].append(rows.couplings)
    write_dataset({"jobs": pa.Table.from_pylist(JOBS, schema=S.SCHEMAS["jobs"]),
                   **{name: pa.concat_tables(parts) for name, parts in tables.items()}}, out)
    return Path(out)
