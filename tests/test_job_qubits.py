"""The job_qubits view: one row per virtual qubit a job used, with its physical qubit's calibration in force when
the job ran (tests/calibration_export.py: jobs before, between, at and after two calibrations)."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_export import CAL1, CAL2, build

import oqtopus_data as od
from oqtopus_data import connect

COLUMNS = ["job_id", "device_id", "virtual_qubit", "physical_qubit", "calibrated_at", "t1", "t2",
           "readout_assignment_error", "fidelity", "submitted_month"]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("qubits") / "out")


def test_each_virtual_qubit_gets_its_physical_qubit_and_its_calibration(out: Path) -> None:
    con = connect(out)
    assert [d[0] for d in con.execute("SELECT * FROM job_qubits LIMIT 0").description] == COLUMNS
    rows = con.execute("SELECT job_id, virtual_qubit, physical_qubit, calibrated_at, t1, t2, "
                       "readout_assignment_error, fidelity FROM job_qubits "
                       "WHERE job_id IN ('a-before', 'b-between') ORDER BY job_id, virtual_qubit").fetchall()
    assert rows == [
        # Ran before any calibration: its qubits, nothing known of them.
        ("a-before", 0, 0, None, None, None, None, None), ("a-before", 1, 1, None, None, None, None, None),
        # Virtual 0 on physical 1 and virtual 1 on physical 0, under the first calibration.
        ("b-between", 0, 1, CAL1, 200.0, 150.0, 0.125, 0.5), ("b-between", 1, 0, CAL1, 100.0, 50.0, 0.25, 0.75),
    ]
    after = con.execute("SELECT physical_qubit, calibrated_at, t1 FROM job_qubits "
                        "WHERE job_id = 'd-after-some-uncalibrated' ORDER BY virtual_qubit").fetchall()
    assert after == [(0, CAL2, 50.0), (1, CAL2, 150.0), (2, CAL2, None), (7, CAL2, None)]


def test_job_qubits_agrees_with_job_calibration_for_every_job(out: Path) -> None:
    con = connect(out)
    per_job = con.execute("""
        SELECT job_id, count(*), avg(readout_assignment_error), min(t1), avg(t2), avg(fidelity), count(t1)
        FROM job_qubits GROUP BY job_id ORDER BY job_id""").fetchall()
    expected = con.execute("""
        SELECT job_id, qubits_used, mean_readout_error, min_t1, mean_t2, mean_fidelity_1q, qubits_calibrated
        FROM job_calibration WHERE qubits_used IS NOT NULL ORDER BY job_id""").fetchall()
    assert per_job == expected and len(per_job) >= 4


def test_scan_and_read_accept_every_view(out: Path) -> None:
    con = connect(out)
    for view in od.query.views.VIEW_NAMES:
        frame = od.read(out, view)
        assert frame.columns == [d[0] for d in con.execute(f"SELECT * FROM {view} LIMIT 0").description], view
        assert frame.height == con.execute(f"SELECT count(*) FROM {view}").fetchone()[0], view
    assert od.scan(out, "job_qubits").filter(job_id="b-between").collect().height == 2
    with pytest.raises(ValueError, match=r"unknown table or view 'nope'.*views are: job_timings"):
        od.scan(out, "nope")


def test_the_documented_columns_are_the_views_columns(out: Path) -> None:
    con = connect(out)
    for doc in od.tables.schema.VIEW_DOCS:
        assert [name for name, _ in doc.columns] == [
            d[0] for d in con.execute(f"SELECT * FROM {doc.name} LIMIT 0").description], doc.name


def test_trino_unnests_the_mapping_into_virtual_and_physical_qubits() -> None:
    from oqtopus_data.query.ddl import ddl_statements

    trino = ddl_statements("/d", "trino")
    body = trino[trino.index('CREATE OR REPLACE VIEW "oqtopus"."job_qubits"'):]
    body = body[:body.index(";")]
    assert "TRY(CAST(json_extract(j.\"virtual_physical_mapping\", '$.qubit_mapping') AS map(varchar, bigint)))" in body
    assert 'CROSS JOIN UNNEST(m."mapping") AS "u"("virtual_qubit", "physical_qubit")' in body
    assert 'TRY_CAST(m."virtual_qubit" AS bigint) AS "virtual_qubit"' in body
    assert 'LEFT JOIN "oqtopus"."job_calibration" AS f' in body
