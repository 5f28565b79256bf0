"""The HTML report: self-contained, every section present, narrowed by time and device, numbers as DuckDB has them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_export import build_demo_export, demo_jobs, write_export

import oqtopus_data
from oqtopus_data.errors import StoreError
from oqtopus_data.report import write_report
from oqtopus_data.report_charts import format_count, format_duration

CHART_SECTIONS = ("jobs-per-week", "timings", "status-rates", "usage", "drift", "estimation")
ALL_SECTIONS = ("overview", *CHART_SECTIONS[:4], "top-bitstrings", *CHART_SECTIONS[4:])


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("report") / "demo-out")


@pytest.fixture(scope="session")
def full(export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[oqtopus_data.report.ReportSummary, str]:
    summary = write_report(export, tmp_path_factory.mktemp("html") / "report.html")
    return summary, summary.path.read_text(encoding="utf-8")


def sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S))


def scalar(export: Path, sql: str, params: dict | None = None):
    return oqtopus_data.connect(export).execute(sql, params or {}).fetchone()[0]


def test_report_is_one_file_that_needs_no_network(full) -> None:
    summary, page = full
    assert summary.path.name == "report.html" and page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"url\((?!#)|@import|<script|<link|<img", page, flags=re.I)  # url(#id): in-file refs
    assert not list(summary.path.parent.glob(".*.tmp"))


def test_every_section_is_present_and_each_chart_section_has_its_svg(full) -> None:
    summary, page = full
    found = sections(page)
    assert tuple(found) == ALL_SECTIONS
    for key in CHART_SECTIONS:
        assert found[key].count("<svg") == 1, key
        assert 'class="empty"' not in found[key], key
    assert found["top-bitstrings"].count('class="card"') == 10
    assert summary.charts == len(CHART_SECTIONS)


def test_summary_counts_every_exported_job(export, full) -> None:
    summary, page = full
    jobs = scalar(export, "SELECT count(*) FROM jobs")
    assert summary.jobs == jobs
    assert f"<b>{jobs:,}</b><span>jobs</span>" in page


def test_median_queue_and_run_times_are_duckdb_medians(export, full) -> None:
    timings = sections(full[1])["timings"]
    rows = oqtopus_data.connect(export).execute(
        "SELECT device_id, median(queue_seconds), median(run_seconds) FROM job_timings "
        "WHERE queue_seconds IS NOT NULL GROUP BY 1").fetchall()
    assert len(rows) == 4
    for device, queue, run in rows:
        row = re.search(rf"<tr><td>{device}</td>(.*?)</tr>", timings).group(1)
        cells = re.findall(r'data-seconds="([0-9.]+)"[^>]*>([^<]+)<', row)
        assert cells[0] == (f"{queue:.3f}", format_duration(queue))
        assert cells[2] == (f"{run:.3f}", format_duration(run))
        assert format_duration(queue) in timings.split("<table")[0]  # the median label drawn on the chart


def test_top_outcome_of_the_newest_sampling_job_matches_its_counts(export, full) -> None:
    job_id, name, bits, p = oqtopus_data.connect(export).execute("""
        SELECT j.job_id, j.name, c.bitstring, c.count / j.total_count FROM jobs AS j JOIN counts AS c USING (job_id)
        WHERE j.job_type IN ('sampling', 'multi_manual') AND j.total_count > 0
        ORDER BY j.submitted_at DESC, c.count DESC, c.bitstring LIMIT 1""").fetchone()
    first = sections(full[1])["top-bitstrings"].split('class="card"')[1]
    assert f"<h3>{name}</h3>" in first and job_id in first
    assert re.search(rf'<td class="bitstring">{bits}</td>.*?<td class="num">{100 * p:.1f}%</td>', first)


def test_unknown_device_leaves_every_section_saying_there_is_no_data(export, tmp_path) -> None:
    summary = write_report(export, tmp_path / "r.html", devices=["NoSuchDevice"])
    page = summary.path.read_text(encoding="utf-8")
    assert (summary.charts, summary.jobs) == (0, 0)
    assert "<svg" not in page
    for key, body in sections(page).items():
        assert re.search(r'<p class="empty">[A-Z][^<]+\.</p>', body), key
    assert "narrowed to devices NoSuchDevice" in page


def test_since_and_until_narrow_the_jobs_covered(export, full, tmp_path) -> None:
    since, until = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    summary = write_report(export, tmp_path / "r.html", since=since, until=until.replace(tzinfo=None))
    expected = scalar(export, "SELECT count(*) FROM jobs WHERE submitted_at BETWEEN $a AND $b",
                      {"a": since, "b": until})
    assert 0 < summary.jobs == expected < full[0].jobs
    page = summary.path.read_text(encoding="utf-8")
    assert "submitted at or after 2024-03-01 00:00 UTC; submitted at or before 2024-05-31 23:59 UTC" in page
    months = re.findall(r"<td[^>]*>(2024-\d\d)-\d\d</td>", sections(page)["overview"])
    assert months and set(months) <= {"2024-03", "2024-04", "2024-05"}


def test_device_filter_keeps_only_that_device(export, tmp_path) -> None:
    summary = write_report(export, tmp_path / "r.html", devices=["Kawasaki"], top_jobs=3)
    assert summary.jobs == scalar(export, "SELECT count(*) FROM jobs WHERE device_id = 'Kawasaki'")
    found = sections(summary.path.read_text(encoding="utf-8"))
    assert re.findall(r"<tr><td>([^<]+)</td>", found["timings"]) == ["Kawasaki"]
    assert found["top-bitstrings"].count('class="card"') == 3
    assert found["top-bitstrings"].count("Kawasaki ·") == 3


def test_names_from_the_data_are_escaped_in_tables_and_charts(tmp_path) -> None:
    jobs, _ = demo_jobs(120, seed=3)
    nasty = "<script>alert('x')</script> $_{$ & _co"
    for job in jobs:
        if job["name"] == "bell-pair":
            job["name"] = nasty
        if job["device_id"] == "Urchin":
            job["device_id"] = "<i>Urchin</i>"
    summary = write_report(write_export(jobs, tmp_path / "out"), tmp_path / "r.html")
    page = summary.path.read_text(encoding="utf-8")
    assert "<script" not in page and "<i>" not in page
    found = sections(page)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; $_{$ &amp; _co" in found["top-bitstrings"]
    assert "&lt;i&gt;Urchin&lt;/i&gt;" in found["overview"]
    assert "&lt;script&gt;alert('x')&lt;/script&gt; $_{$ &amp; _co on" in found["drift"]  # SVG text


def test_empty_export_reports_no_data(tmp_path) -> None:
    summary = write_report(write_export([], tmp_path / "out"), tmp_path / "r.html")
    assert (summary.charts, summary.jobs) == (0, 0)
    assert "No jobs in this selection." in summary.path.read_text(encoding="utf-8")


def test_directory_without_an_export_raises_store_error(tmp_path) -> None:
    with pytest.raises(StoreError):
        write_report(tmp_path / "missing", tmp_path / "r.html")
    with pytest.raises(StoreError):
        write_report(tmp_path, tmp_path / "r.html")


def test_target_in_a_missing_directory_is_a_value_error(export, tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        write_report(export, tmp_path / "no" / "such" / "r.html")
    with pytest.raises(ValueError, match="is a directory"):
        write_report(export, tmp_path)


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250 ms"), (12.34, "12.3 s"), (212.9, "3.5 min"),
                                               (7200, "2.0 h"), (3 * 86400, "3.0 d"), (None, "-")])
def test_durations_read_naturally(seconds, text) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("n", "text"), [(950, "950"), (12_345, "12.3K"), (4_500_000, "4.5M"), (None, "-")])
def test_counts_read_naturally(n, text) -> None:
    assert format_count(n) == text
