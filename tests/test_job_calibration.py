"""The job_calibration and device_calibrations views against rows computed by hand (tests/calibration_export.py):
jobs before, between, at and after two calibrations, qubits missing from a calibration, a simulator, jobs without
a mapping or with one that is not JSON."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from calibration_export import CAL1, CAL2, JOBS, SEEN1, SEEN2, build

from oqtopus_data import connect, write_dataset
from oqtopus_data.tables import schema as S

NULLS = {"calibrated_at": None, "mean_readout_error": None, "min_readout_error": None, "max_readout_error": None,
         "min_t1": None, "min_t2": None, "mean_t1": None, "mean_t2": None, "mean_fidelity_1q": None,
         "min_fidelity_1q": None, "mean_fidelity_2q": None, "min_fidelity_2q": None, "qubits_used": None,
         "qubits_calibrated": None, "couplings_calibrated": None, "calibration_age_seconds": None}
# Qubits 0 and 1 of the first calibration: readout 0.25 and 0.125 (from its two probabilities), T1 100 and 200,
# T2 50 and 150, fidelity 0.75 and 0.5; their coupling 0 -> 1: 0.5.
BOTH_FIRST = {"mean_readout_error": 0.1875, "min_readout_error": 0.125, "max_readout_error": 0.25, "min_t1": 100.0,
              "min_t2": 50.0, "mean_t1": 150.0, "mean_t2": 100.0, "mean_fidelity_1q": 0.625, "min_fidelity_1q": 0.5,
              "mean_fidelity_2q": 0.5, "min_fidelity_2q": 0.5}
# Qubit 0 of the second calibration alone: readout 0.0625, T1 50, T2 25, fidelity 0.875.
Q0_SECOND = {"mean_readout_error": 0.0625, "min_readout_error": 0.0625, "max_readout_error": 0.0625, "min_t1": 50.0,
             "min_t2": 25.0, "mean_t1": 50.0, "mean_t2": 25.0, "mean_fidelity_1q": 0.875, "min_fidelity_1q": 0.875}


def row(job_id: str, device_id: str, month: str, **values: object) -> dict:
    return {"job_id": job_id, "device_id": device_id, **NULLS, **values, "submitted_month": month}


EXPECTED = [
    # Ran before any calibration known: nulls, but its qubits are counted.
    row("a-before", "QPU", "2024-12", qubits_used=2, qubits_calibrated=0, couplings_calibrated=0),
    # Between the two: the first calibration, six hours old.
    row("b-between", "QPU", "2025-01", calibrated_at=CAL1, **BOTH_FIRST, qubits_used=2, qubits_calibrated=2,
        couplings_calibrated=1, calibration_age_seconds=6 * 3600.0),
    # Started at the very instant of the second calibration: that one is in force.
    row("c-at-the-instant", "QPU", "2025-01", calibrated_at=CAL2, **Q0_SECOND, qubits_used=1, qubits_calibrated=1,
        couplings_calibrated=0, calibration_age_seconds=0.0),
    # After the second, on qubits 0, 1, 2 and 7: only 0 and 1 are calibrated, so is the coupling 0 -> 1 (1 -> 2 is
    # not any more): readout 0.0625 and 0.375, T1 50 and 150, T2 25 and 100, fidelity 0.875 and 0.625.
    row("d-after-some-uncalibrated", "QPU", "2025-01", calibrated_at=CAL2, mean_readout_error=0.21875,
        min_readout_error=0.0625, max_readout_error=0.375, min_t1=50.0, min_t2=25.0, mean_t1=100.0, mean_t2=62.5,
        mean_fidelity_1q=0.75, min_fidelity_1q=0.625, mean_fidelity_2q=0.875, min_fidelity_2q=0.875,
        qubits_used=4, qubits_calibrated=2, couplings_calibrated=1, calibration_age_seconds=86400.0),
    # Never ran: the calibration in force when it was submitted; no mapping, so nothing per qubit.
    row("e-never-ran", "QPU", "2025-01", calibrated_at=CAL1, calibration_age_seconds=12 * 3600.0),
    # A simulator has no calibration at all.
    row("f-simulator", "SIM", "2025-01", qubits_used=2, qubits_calibrated=0, couplings_calibrated=0),
    # No mapping, or one that is not JSON: the device's calibration, nulls per qubit.
    row("g-no-mapping", "QPU", "2025-01", calibrated_at=CAL2, calibration_age_seconds=6 * 3600.0),
    row("h-bad-mapping", "QPU", "2025-01", calibrated_at=CAL1, calibration_age_seconds=3 * 3600.0),
]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("calibration") / "out")


def test_each_job_gets_the_calibration_in_force_and_that_of_the_qubits_it_used(out: Path) -> None:
    relation = connect(out).sql("SELECT * FROM job_calibration ORDER BY job_id")
    assert [dict(zip(relation.columns, r, strict=True)) for r in relation.fetchall()] == EXPECTED


def test_device_calibrations_has_one_row_per_device_and_calibration(out: Path) -> None:
    relation = connect(out).sql("SELECT * FROM device_calibrations ORDER BY calibrated_at")
    assert [dict(zip(relation.columns, r, strict=True)) for r in relation.fetchall()] == [
        {"device_id": "QPU", "calibrated_at": CAL1, "n_qubits": 3, "median_t1": 200.0, "median_t2": 150.0,
         "median_fidelity_1q": 0.75, "median_fidelity_2q": 0.625, "median_readout_error": 0.25, "n_couplings": 2,
         "first_seen_at": SEEN1},
        {"device_id": "QPU", "calibrated_at": CAL2, "n_qubits": 2, "median_t1": 100.0, "median_t2": 62.5,
         "median_fidelity_1q": 0.75, "median_fidelity_2q": 0.875, "median_readout_error": 0.21875, "n_couplings": 1,
         "first_seen_at": SEEN2},
    ]


def test_an_export_without_calibrations_keeps_every_job_with_nulls(tmp_path: Path) -> None:
    write_dataset({"jobs": pa.Table.from_pylist(JOBS, schema=S.SCHEMAS["jobs"])}, tmp_path)
    found = connect(tmp_path).execute("SELECT job_id, calibrated_at, qubits_used FROM job_calibration "
                                      "ORDER BY job_id").fetchall()
    assert found == [(r["job_id"], None, e["qubits_used"]) for r, e in zip(JOBS, EXPECTED, strict=True)]
