"""Report sections against SQL over the same export: jobs per week, estimation series, and the devices, usage and
drift sections over the calibration and usage views (made here by the columns the calibration work provides)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from demo_export import build_demo_export
from report_html import sections, table_rows, titles

import oqtopus_data
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.report import Scope, render
from oqtopus_data.report.fleet import NO_CALIBRATION
from oqtopus_data.report.formats import number
from oqtopus_data.run.export import ExportOptions
from oqtopus_data.run.export import export as run_export


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("sections") / "demo-out")


@pytest.fixture(scope="module")
def page(export: Path) -> str:
    return render(oqtopus_data.connect(export), Scope(), "test").text


def sql(export: Path, query: str) -> list[tuple]:
    return oqtopus_data.connect(export).execute(query).fetchall()


def test_jobs_per_week_bars_are_the_weekly_counts_by_status(export, page) -> None:
    drawn = set(titles(sections(page)["jobs-per-week"]))
    rows = oqtopus_data.connect(export).execute("""
        WITH w AS (
            SELECT device_id, strftime(date_trunc('week', submitted_at), '%Y-%m-%d') AS week,
                   CASE WHEN status IN ('succeeded', 'failed', 'cancelled') THEN status ELSE 'in progress' END AS state
            FROM jobs)
        SELECT device_id, week, state, count(*) AS n, sum(count(*)) OVER (PARTITION BY device_id, week) FROM w
        GROUP BY device_id, week, state""").fetchall()
    assert drawn == {f"{d}, {w}: {n:,} {s} of {total:,}" for d, w, s, n, total in rows} and len(rows) > 100


def test_estimation_points_are_the_exported_estimates(export, page) -> None:
    drawn = [t for t in titles(sections(page)["estimation"]) if "exp_value = " in t]
    rows = oqtopus_data.connect(export).execute("""
        SELECT j.name, j.device_id, strftime(j.submitted_at, '%Y-%m-%d %H:%M UTC'), e.exp_value, e.stds
        FROM estimations AS e JOIN jobs AS j USING (job_id) WHERE e.exp_value IS NOT NULL""").fetchall()
    expected = {f"{n} on {d}, {t}\nexp_value = {number(v, 6)} ± {number(s, 3)}" for n, d, t, v, s in rows}
    assert drawn and set(drawn) <= expected
    assert {t for t in expected if t.startswith("vqe-h2-step-")} <= set(drawn)  # the biggest series whole


def calibrated_connection(export: Path):
    """A connection with the calibration and usage views the calibration work provides, by the agreed columns."""
    con = oqtopus_data.connect(export)
    con.execute("""CREATE TEMP TABLE device_calibrations AS SELECT * FROM (VALUES
        ('Kawasaki', TIMESTAMPTZ '2024-03-01 00:00:00+00', 64, 80.5, 60.25, 0.995, 0.97, 0.031),
        ('Kawasaki', TIMESTAMPTZ '2024-06-01 00:00:00+00', 64, 90.5, 65.25, 0.9961, 0.975, 0.025),
        ('Urchin', TIMESTAMPTZ '2024-04-15 06:00:00+00', 16, 70.0, 50.0, 0.99, 0.95, 0.05))
        AS t(device_id, calibrated_at, n_qubits, median_t1, median_t2, median_fidelity_1q, median_fidelity_2q,
             median_readout_error)""")
    con.execute("""CREATE TEMP VIEW job_calibration AS
        SELECT j.job_id, j.device_id, max(d.calibrated_at) AS calibrated_at, 0.03 AS mean_readout_error,
               50.0 AS min_t1, 40.0 AS min_t2
        FROM jobs AS j LEFT JOIN device_calibrations AS d
            ON d.device_id = j.device_id AND d.calibrated_at <= j.submitted_at GROUP BY ALL""")
    con.execute("""CREATE TEMP VIEW usage_monthly AS
        SELECT submitted_month AS month, device_id, job_type, count(*) AS jobs, sum(shots) AS shots,
               sum(execution_time) AS execution_seconds,
               count(*) FILTER (status IN ('failed', 'cancelled')) AS wasted_jobs,
               coalesce(sum(execution_time) FILTER (status IN ('failed', 'cancelled')), 0) AS wasted_seconds,
               NULL AS median_queue_seconds, NULL AS p90_queue_seconds,
               sum(shots) * 0.001 AS cost, 'JPY' AS currency
        FROM jobs GROUP BY ALL""")
    return con


def test_calibration_views_give_the_devices_their_latest_calibration_history_and_marks(export) -> None:
    page = render(calibrated_connection(export), Scope(), "test").text
    part = sections(page)["devices"]
    assert table_rows(part, "calibration") == [
        ["Kawasaki", "2024-06-01 00:00 UTC", "64", "90.5", "65.2", "0.9961", "0.975", "0.025", "2"],
        ["Urchin", "2024-04-15 06:00 UTC", "16", "70", "50", "0.99", "0.95", "0.05", "1"]]
    assert part.count("<svg") == 5  # T1, T2, 1q and 2q fidelity, readout error
    assert "Kawasaki, calibrated 2024-03-01 00:00 UTC: median T1 (µs) 80.5" in titles(part)
    assert not any(t.startswith("Urchin, calibrated") for t in titles(part))  # one calibration: no history drawn
    assert "Urchin: one calibration so far (in the table above), not drawn." in part
    for svg in re.findall(r"<svg.*?</svg>", part, flags=re.S):
        ticks = re.findall(r'text-anchor="end" fill="#666">([^<]+)</text>', svg)
        assert len(ticks) == len(set(ticks)) > 1, ticks  # no label repeated (0.9989, 0.9989, ...)
    assert re.findall(r"<th>([^<]*T[12][^<]*)</th>", part) == ["median T1 (µs)", "median T2 (µs)"]
    (known,), = calibrated_connection(export).execute(
        "SELECT count(calibrated_at) FROM job_calibration").fetchall()
    assert f"{known:,} of the 398 selected jobs ran under a known calibration" in part
    marks = {t for t in titles(sections(page)["drift"]) if "recalibrated" in t}
    assert "Kawasaki recalibrated 2024-06-01 00:00 UTC" in marks  # from device_calibrations, not the snapshots
    assert not any(t.startswith("Kawasaki recalibrated 2024-04-30") for t in marks)


def test_usage_from_the_usage_view_shows_its_costs(export) -> None:
    part = sections(render(calibrated_connection(export), Scope(devices=("Kawasaki",)), "test").text)["usage"]
    expected = sql(export, "SELECT submitted_month, count(*), sum(shots) FROM jobs WHERE device_id = 'Kawasaki' "
                           "GROUP BY 1 ORDER BY 1")
    rows = table_rows(part, "usage-months")
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == [(m, f"{n:,}", f"{s:,}", f"{s * 0.001:,.2f} JPY")
                                                       for m, n, s in expected]
    assert "From the <code>usage_monthly</code> view (whole months; every status counted)." in part


def test_empty_calibration_views_say_so_and_marks_come_from_the_snapshots(export) -> None:
    con = oqtopus_data.connect(export)
    con.execute("CREATE TEMP TABLE device_calibrations (device_id VARCHAR, calibrated_at TIMESTAMPTZ, "
                "n_qubits BIGINT, median_t1 DOUBLE, median_t2 DOUBLE, median_fidelity_1q DOUBLE, "
                "median_fidelity_2q DOUBLE, median_readout_error DOUBLE)")
    found = sections(render(con, Scope(), "test").text)
    assert NO_CALIBRATION in found["devices"]
    assert "Kawasaki recalibrated 2024-03-31 01:21 UTC" in titles(found["drift"])


def test_a_first_export_shows_the_current_calibration_as_numbers_and_how_history_starts(tmp_path: Path) -> None:
    from oqtopus_data.testing import FakeCloud

    out = tmp_path / "out"
    with FakeCloud(n_jobs=150, seed=3) as cloud, ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api:
        assert run_export(api, out, ExportOptions(page_size=100)).ok  # one device snapshot: no history yet
    assert sql(out, "SELECT max(n) FROM (SELECT count(*) AS n FROM device_calibrations GROUP BY device_id)") == [(1,)]
    part = sections(render(oqtopus_data.connect(out), Scope(), "test").text)["devices"]
    assert "<svg" not in part  # no chart of one dot per device
    qpus = sql(out, "SELECT device_id, median_t1 FROM device_calibrations ORDER BY device_id")
    rows = {row[0]: row for row in table_rows(part, "calibration")}
    assert {d: rows[d][3] for d, _ in qpus} == {d: number(t1) for d, t1 in qpus}  # the current calibration, numbers
    assert "*/15 * * * * oqtopus-export --devices-only --quiet OUT_DIR" in part  # README's cron line
    assert "no history to draw yet" in part
    assert "0 of the" not in part and "None of the" in part and "ran under a recorded calibration yet" in part
