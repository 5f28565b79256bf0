"""Round trip: payloads -> results -> flatten -> write -> DuckDB views and polars give the results' values."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oqtopus_data import connect, flatten, read, scan, write_dataset
from oqtopus_data.query.sqltext import views_file
from oqtopus_data.tables.schema import TABLES

AT = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def exported(tmp_path, good_results):
    tables = flatten(good_results, exported_at=AT)
    write_dataset(tables, tmp_path)
    rejected = set(tables["errors"]["job_id"].to_pylist())  # invalid keys etc.: tested in test_flatten
    return tmp_path, {r.job_id: r for r in good_results if r.job_id not in rejected}


def test_views_report_what_the_result_objects_report(exported):
    out, results = exported
    con = connect(out)
    rows = con.execute("SELECT job_id, job_type, status, device_id, shots, submitted_at FROM jobs").fetchall()
    assert len(rows) == len(results)
    for job_id, job_type, status, device_id, shots, submitted_at in rows:
        res = results[job_id]
        assert (job_type, status, device_id, shots) == (res.job_type, res.status, res.device_id, res.shots)
        assert submitted_at == res.submitted_at
    for job_id, res in results.items():
        if res.is_sampling() and res.get_counts():
            got = dict(con.execute("SELECT bitstring, count FROM counts WHERE job_id = ?", [job_id]).fetchall())
            assert got == res.get_counts(), job_id
        if res.is_estimation() and res.exp_value is not None:
            (value,) = con.execute("SELECT exp_value FROM estimations WHERE job_id = ?", [job_id]).fetchone()
            assert value == res.exp_value


def test_polars_reads_the_same_rows_as_duckdb(exported):
    out, _ = exported
    con = connect(out)
    for table in ("jobs", "counts", "divided_counts", "estimations"):
        frame = read(out, table)
        assert frame.columns == TABLES[table].column_names
        assert frame.height == con.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table
    counts = scan(out, "counts").group_by("job_id").agg().collect()
    assert counts.height == con.execute("SELECT count(DISTINCT job_id) FROM counts").fetchone()[0]


def test_job_timings_gives_queue_run_and_total_seconds(exported):
    out, results = exported
    con = connect(out)
    res = results["01JNGQ4W7C9Y1T2R3E5M8A6K0B"]
    row = con.execute("SELECT queue_seconds, run_seconds, total_seconds FROM job_timings "
                  "WHERE job_id = '01JNGQ4W7C9Y1T2R3E5M8A6K0B'").fetchone()
    assert row == pytest.approx((
        (res.running_at - res.submitted_at).total_seconds(),
        (res.ended_at - res.running_at).total_seconds(),
        (res.ended_at - res.submitted_at).total_seconds(),
    ))


def test_device_daily_counts_every_job_once(exported):
    out, results = exported
    con = connect(out)
    total = con.execute("SELECT sum(jobs) FROM device_daily").fetchone()[0]
    assert total == sum(1 for r in results.values() if r.submitted_at is not None)
    day, _device, jobs = con.execute("SELECT day, device_id, sum(jobs) FROM device_daily WHERE device_id = 'Kawasaki' "
                                "GROUP BY ALL ORDER BY 1 LIMIT 1").fetchone()
    expected = sum(1 for r in results.values() if r.device_id == "Kawasaki" and r.submitted_at
                   and r.submitted_at.date() == day)
    assert jobs == expected


def test_count_probabilities_sum_to_one_per_job(exported):
    out, _ = exported
    sums = connect(out).execute("SELECT job_id, sum(probability) FROM count_probabilities GROUP BY job_id").fetchall()
    assert sums and all(s == pytest.approx(1.0) for _, s in sums)


def test_tables_without_files_still_have_their_columns(exported):
    out, _ = exported
    con = connect(out)
    assert [d[0] for d in con.execute("SELECT * FROM devices").description] == TABLES["devices"].column_names
    assert con.execute("SELECT count(*) FROM sse_logs").fetchone() == (0,)
    assert read(out, "devices").columns == TABLES["devices"].column_names


def test_connect_can_keep_the_views_in_a_duckdb_file(exported, tmp_path):
    out, results = exported
    connect(out, database=str(tmp_path / "views.duckdb")).close()
    import duckdb

    con = duckdb.connect(str(tmp_path / "views.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM jobs").fetchone() == (len(results),)


def test_views_sql_ships_inside_the_wheel(tmp_path):
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("oqtopus_data-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("oqtopus_data/sql/views.sql").decode()
    assert shipped == (root / "sql" / "views.sql").read_text() == views_file()
    assert 'CREATE OR REPLACE VIEW "job_timings"' in shipped
