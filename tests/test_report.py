"""The HTML report: self-contained, every section present, each section's numbers as SQL over the same export has
them, the selection checked against the export."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from demo_export import build_demo_export, demo_jobs, write_export
from report_html import sections, table_rows, titles

import oqtopus_data
from oqtopus_data.cli import main
from oqtopus_data.errors import StoreError
from oqtopus_data.query.usage import usage_figures
from oqtopus_data.report import SelectionError, write_report
from oqtopus_data.report.drift import CircuitDrift
from oqtopus_data.report.formats import format_count, format_duration, percent
from oqtopus_data.report.results import DRIFT_CIRCUITS, DRIFT_NEWEST
from oqtopus_data.report.stats import wilson_interval

ALL_SECTIONS = ("overview", "jobs-per-week", "timings", "status-rates", "usage", "devices", "top-bitstrings", "drift",
                "estimation", "jobs")


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("report") / "demo-out")


@pytest.fixture(scope="session")
def full(export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[oqtopus_data.report.ReportSummary, str]:
    summary = write_report(export, tmp_path_factory.mktemp("html") / "report.html")
    return summary, summary.path.read_text(encoding="utf-8")


def sql(export: Path, query: str, params: dict | None = None) -> list[tuple]:
    return oqtopus_data.connect(export).execute(query, params or {}).fetchall()


def test_report_is_one_file_that_needs_no_network(full) -> None:
    summary, page = full
    assert summary.path.name == "report.html" and page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"url\((?!#)|@import|<link|<img|<iframe|\bfetch\(|XMLHttpRequest", page, flags=re.I)
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]  # one inline script, no src
    assert not list(summary.path.parent.glob(".*.tmp"))


def test_every_section_is_present_with_its_charts(full) -> None:
    summary, page = full
    found = sections(page)
    assert tuple(found) == ALL_SECTIONS
    for key in ("jobs-per-week", "timings", "status-rates", "usage", "drift", "estimation"):
        assert "<svg" in found[key] and 'class="empty"' not in found[key], key
    assert summary.charts == page.count("<figure>")
    assert found["top-bitstrings"].count('class="card"') == 10


def test_summary_counts_every_exported_job(export, full) -> None:
    summary, page = full
    (jobs,), = sql(export, "SELECT count(*) FROM jobs")
    assert summary.jobs == jobs
    assert f"<b>{jobs:,}</b><span>jobs</span>" in page


def test_every_bar_and_point_has_a_tooltip(full) -> None:
    for key, part in sections(full[1]).items():
        for element in re.findall(r"<(?:rect|circle)\b[^>]*?(?:/>|>.*?</(?:rect|circle)>)", part, flags=re.S):
            assert "<title>" in element, (key, element)


def test_median_queue_and_run_times_are_duckdb_medians(export, full) -> None:
    timings = sections(full[1])["timings"]
    rows = sql(export, "SELECT device_id, median(queue_seconds), median(run_seconds) FROM job_timings "
                       "WHERE queue_seconds IS NOT NULL GROUP BY 1")
    assert len(rows) == 4
    for device, queue, run in rows:
        row = re.search(rf"<tr><td>{device}</td>(.*?)</tr>", timings).group(1)
        cells = re.findall(r'data-seconds="([0-9.]+)"[^>]*>([^<]+)<', row)
        assert cells[0] == (f"{queue:.3f}", format_duration(queue))
        assert cells[2] == (f"{run:.3f}", format_duration(run))
        assert f">{format_duration(queue)}</text>" in timings  # the median written on its box


def test_queue_time_per_month_is_the_median_and_90th_percentile_per_device(export, full) -> None:
    drawn = {t for t in titles(sections(full[1])["timings"]) if "queue time" in t and " over " in t}
    expected = set()
    for device, month, n, p50, p90 in sql(export, """
            SELECT device_id, submitted_month, count(*), median(queue_seconds), quantile_cont(queue_seconds, 0.9)
            FROM job_timings WHERE queue_seconds IS NOT NULL GROUP BY ALL"""):
        expected.add(f"{device}, {month}: median queue time {format_duration(p50)} over {n:,} jobs")
        expected.add(f"{device}, {month}: p90 queue time {format_duration(p90)} over {n:,} jobs")
    assert drawn == expected and len(expected) > 20


def test_one_percentile_named_the_same_in_chart_table_and_usage(export, full) -> None:
    timings = sections(full[1])["timings"]
    assert "95" not in re.sub(r"<[^>]+>|\d+\.\d+|=\"[^\"]*\"", " ", timings)  # no 95th anywhere in the text
    assert re.findall(r"<th[^>]*>([^<]*p\d\d[^<]*)</th>", timings) == ["p90 queue", "p90 run"]
    for device, p90_queue, p90_run in sql(export, """
            SELECT device_id, quantile_cont(queue_seconds, 0.9), quantile_cont(run_seconds, 0.9) FROM job_timings
            WHERE queue_seconds IS NOT NULL GROUP BY 1"""):
        cells = re.findall(r'data-seconds="([0-9.]+)"', re.search(rf"<tr><td>{device}</td>(.*?)</tr>", timings)[1])
        assert (cells[1], cells[3]) == (f"{p90_queue:.3f}", f"{p90_run:.3f}")
    assert "p90_queue_seconds" in usage_figures(export).column_names  # what `usage` prints


def test_success_rates_count_succeeded_over_succeeded_and_failed_with_cancelled_beside(export, full) -> None:
    part = sections(full[1])["status-rates"]
    rows = sql(export, """
        SELECT device_id, submitted_month, count(*) FILTER (status = 'succeeded'),
               count(*) FILTER (status = 'failed'), count(*) FILTER (status = 'cancelled')
        FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY ALL""")
    expected = set()
    for device, month, ok, failed, cancelled in rows:
        if ok + failed:
            low, high = wilson_interval(ok, ok + failed)
            expected.add(f"{device}, {month}: {ok:,} of {ok + failed:,} succeeded or failed jobs succeeded "
                         f"({percent(ok / (ok + failed))}; 95% interval {percent(low)}–{percent(high)}); "
                         f"{cancelled:,} cancelled beside them")
    assert set(titles(part)) == expected
    assert part.count("<svg") == 4 and part.count(">0%</text>") == 4 and part.count(">100%</text>") == 4
    totals = sql(export, """
        SELECT device_id, count(*) FILTER (status = 'succeeded'), count(*) FILTER (status = 'failed'),
               count(*) FILTER (status = 'cancelled') FROM jobs
        WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY 1 ORDER BY count(*) DESC, 1""")
    assert any(c for *_, c in totals)  # the demo has cancelled jobs: the rate must leave them out
    assert table_rows(part, "rates") == [
        [d, f"{ok:,}", f"{f:,}", f"{c:,}", percent(ok / (ok + f)), "–".join(map(percent, wilson_interval(ok, ok + f)))]
        for d, ok, f, c in totals]
    assert "succeeded / (succeeded + failed)" in part and "cancelled" in part


def test_the_overview_rate_leaves_cancelled_jobs_out_and_counts_them_beside(export, full) -> None:
    (ok, failed, cancelled), = sql(export, "SELECT count(*) FILTER (status = 'succeeded'), "
                                           "count(*) FILTER (status = 'failed'), "
                                           "count(*) FILTER (status = 'cancelled') FROM jobs")
    tiles = dict((k, v) for v, k in re.findall(r"<b>([^<]*)</b><span>([^<]*)</span>", sections(full[1])["overview"]))
    assert tiles["success rate"] == f"{percent(ok / (ok + failed))} of {ok + failed:,}"
    assert tiles["cancelled"] == f"{cancelled:,}"


def test_usage_comes_from_the_usage_view_and_matches_sums_over_jobs(export, full) -> None:
    part = sections(full[1])["usage"]
    expected = sql(export, """
        SELECT submitted_month, count(*), sum(shots), sum(execution_time),
               count(*) FILTER (status IN ('failed', 'cancelled')),
               coalesce(sum(execution_time) FILTER (status IN ('failed', 'cancelled')), 0)
        FROM jobs GROUP BY 1 ORDER BY 1""")
    assert table_rows(part, "usage-months") == [
        [m, f"{n:,}", f"{s:,}", format_duration(e), f"{w:,}", format_duration(ws)] for m, n, s, e, w, ws in expected]
    assert "From the <code>usage_monthly</code> view" in part and "Cost appears when a price table is given" in part


def test_devices_without_calibration_data_say_how_to_collect_it(export, full) -> None:
    part = sections(full[1])["devices"]
    assert ("No calibration data in this export (run oqtopus-export --devices-only regularly to collect it)."
            in part)
    assert [r[:4] for r in table_rows(part, "devices")] == [
        [d, t, s, f"{q:,}"] for d, t, s, q in sql(export, """
            SELECT device_id, device_type, status, n_qubits FROM devices
            QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY snapshot_at DESC) = 1
            ORDER BY CASE device_id WHEN 'SVSim' THEN 0 WHEN 'Kawasaki' THEN 1 WHEN 'qulacs' THEN 2 ELSE 3 END""")]


def test_drift_draws_each_run_of_the_most_repeated_circuits(export, full) -> None:
    part = sections(full[1])["drift"]
    con = oqtopus_data.connect(export)
    with CircuitDrift(con) as drift:
        circuits = drift.circuits(limit=DRIFT_CIRCUITS)
        runs = drift.runs(circuits, newest=DRIFT_NEWEST)
    assert re.findall(r'<h3 class="circuit">([^<]+)</h3>', part)[:2] == ["bell-pair", "ghz-5"]
    assert len(re.findall(r'<h3 class="circuit">', part)) == len(circuits)
    points = [t for t in titles(part) if "\nF = " in t]
    assert len(points) == len(runs)
    newest = max(runs, key=lambda x: (x.submitted_at, x.job_id))
    assert (f"{newest.name} · {newest.job_id}\n{newest.submitted_at:%Y-%m-%d %H:%M} UTC · {newest.shots:,} shots"
            f"{' (low-shot: not in the trend)' if newest.low_shots else ''}\n"
            f"F = {newest.fidelity:.4f} ± {newest.stderr:.4f}") in points
    marks = [t for t in titles(part) if "recalibrated" in t]
    assert "Kawasaki recalibrated 2024-03-31 01:21 UTC" in marks  # from the monthly device snapshots


def test_recalibrations_are_ticks_counted_in_each_drift_panels_title_at_any_count(tmp_path) -> None:
    from datetime import timedelta

    jobs, devices = demo_jobs(400, seed=0)
    times = [datetime.fromisoformat(job["submitted_at"].replace("Z", "+00:00")) for job in jobs]
    first, last = min(times), max(times)
    snapshots, at = [], first
    while at <= last:  # a recalibration every 4 days: 70-odd in a panel, which lines across it made a barcode
        stamp = (at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        snapshots.append((at, [{**d, "calibrated_at": stamp} if "calibrated_at" in d else d for d in devices]))
        at += timedelta(days=4)
    summary = write_report(write_export(jobs, tmp_path / "out", snapshots), tmp_path / "r.html")
    part = sections(summary.path.read_text(encoding="utf-8"))["drift"]
    panels = re.findall(r'<div class="panel">(<svg.*?</svg>)</div>', part, flags=re.S)
    counted = []
    for svg in panels:
        counted_title = re.search(r'font-weight="bold">([^<]+) · ([\d,]+) recalibrations?</text>', svg)
        if counted_title is None:  # a simulator: no calibration at all, nothing to count or mark
            assert "recalibrated" not in svg
            continue
        device, n = counted_title.groups()
        ticks = re.findall(rf"<title>{re.escape(device)} recalibrated [^<]+</title>", svg)
        assert len(ticks) == int(n.replace(",", "")), device  # every one marked, whatever the count
        assert 'stroke-dasharray="3 3"' not in svg  # no lines across the panel
        counted.append(int(n.replace(",", "")))
    assert max(counted) > 40 and "Brown ticks on the time axis mark the device's recalibrations" in part


def test_drift_finds_repeated_circuits_whatever_the_jobs_are_named(tmp_path) -> None:
    jobs, devices = demo_jobs(240, seed=5)
    for k, job in enumerate(jobs):
        job["name"] = ("vqe-step-17", "calib 284", "量子実験 12")[k % 3]
    summary = write_report(write_export(jobs, tmp_path / "out", [(datetime(2025, 1, 1, tzinfo=UTC), devices)]),
                           tmp_path / "r.html")
    part = sections(summary.path.read_text(encoding="utf-8"))["drift"]
    assert 'class="empty"' not in part
    names = re.findall(r'<h3 class="circuit">([^<(]+?)(?: \(also named ([^)]+)\))?</h3>', part)
    every = {"vqe-step-17", "calib 284", "量子実験 12"}
    assert names and {n for n, _ in names} <= every
    assert any(other for _, other in names)  # one circuit, several names: each is said
    for name, other in names:
        assert not other or {name, *other.split(", ")} == every, (name, other)


def test_job_table_lists_the_newest_jobs_and_each_rows_results(export, tmp_path) -> None:
    summary = write_report(export, tmp_path / "r.html", table_rows=50)
    part = sections(summary.path.read_text(encoding="utf-8"))["jobs"]
    newest = sql(export, "SELECT job_id, name, device_id, status, job_type FROM jobs "
                         "ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT 50")
    row = (r'<tr><td>\d{4}-\d\d-\d\d \d\d:\d\d</td><td data-v="([^"]*)">.*?<p>job <code>([^<]+)</code>.*?'
           r"</details></td>" + r"<td>(.*?)</td>" * 3)
    rows = re.findall(row, part.split("<tbody>", 1)[1], flags=re.S)
    assert [(i, html.unescape(n), d, s, t) for n, i, d, s, t in rows] == newest
    assert "The newest 50 of the selection's 398 jobs, newest first (at most 50" in part
    job_id, total = next((i, t) for i, t in sql(export, "SELECT job_id, total_count FROM jobs WHERE total_count > 0 "
                                                        "ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT 1"))
    top = sql(export, "SELECT bitstring, count FROM counts WHERE job_id = $id ORDER BY count DESC, bitstring LIMIT 8",
              {"id": job_id})
    opened = part.split(f"<code>{job_id}</code>", 1)[1].split("</details>", 1)[0]
    assert re.findall(r'<tr><td><span class="bits1">([01]+)</span></td><td>([\d,]+)</td><td>([\d.]+)%</td></tr>',
                      opened) == [
        (b, f"{c:,}", f"{100 * c / total:.1f}") for b, c in top]
    (est_id, value, stds), = sql(export, """
        SELECT j.job_id, e.exp_value, e.stds FROM jobs AS j JOIN estimations AS e USING (job_id)
        WHERE j.job_id IN (SELECT job_id FROM jobs ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT 50)
        ORDER BY j.submitted_at DESC LIMIT 1""")
    assert f"exp_value = {value:.6g} ± {stds:.3g}" in part.split(f"<code>{est_id}</code>", 1)[1]


def test_top_outcome_of_the_newest_sampling_job_matches_its_counts(export, full) -> None:
    (job_id, name, bits, p), = sql(export, """
        SELECT j.job_id, j.name, c.bitstring, c.count / j.total_count FROM jobs AS j JOIN counts AS c USING (job_id)
        WHERE j.job_type IN ('sampling', 'multi_manual') AND j.total_count > 0
        ORDER BY j.submitted_at DESC, c.count DESC, c.bitstring LIMIT 1""")
    first = sections(full[1])["top-bitstrings"].split('class="card"')[1]
    assert f"<h3>{name}</h3>" in first and job_id in first
    assert re.search(rf'<td class="bitstring"><span class="bits1">{bits}</span></td>.*?<td class="num">{100 * p:.1f}%'
                     "</td>", first)


def test_a_device_the_export_lacks_is_refused_with_the_likely_one(export, tmp_path) -> None:
    with pytest.raises(SelectionError) as caught:
        write_report(export, tmp_path / "r.html", devices=["kawasaki", "Urchin"], statuses=["cancelling"],
                     job_types=["estimaton"])
    assert str(caught.value) == (
        "no job in this export has device 'kawasaki'; did you mean Kawasaki?; no job in this export has status "
        "'cancelling'; its statuses are: cancelled, failed, ready, running, submitted, succeeded; no job in this "
        "export has job type 'estimaton'; its job types are: estimation, multi_manual, sampling, sse")
    assert not (tmp_path / "r.html").exists()


def test_a_selection_of_no_jobs_writes_nothing_and_exits_1(export, tmp_path) -> None:
    with pytest.raises(SelectionError, match=r"^no jobs match this selection \(submitted at or after 2030-01-01 "
                                             r"00:00 UTC; devices Kawasaki\): nothing to report$"):
        write_report(export, tmp_path / "r.html", since=datetime(2030, 1, 1), devices=["Kawasaki"])
    with pytest.raises(SelectionError, match=r"^this export holds no jobs: nothing to report$"):
        write_report(write_export([], tmp_path / "empty"), tmp_path / "r.html")
    done = CliRunner().invoke(main, ["report", str(export), str(tmp_path / "r.html"), "--device", "kawasaki"])
    assert (done.exit_code, done.output) == (
        1, "oqtopus-data: no job in this export has device 'kawasaki'; did you mean Kawasaki?\n")
    assert not (tmp_path / "r.html").exists()


def test_statuses_and_job_types_narrow_the_report(export, tmp_path) -> None:
    summary = write_report(export, tmp_path / "r.html", statuses=["succeeded", "failed"], job_types=["sampling"])
    (n,), = sql(export, "SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed') AND job_type = 'sampling'")
    assert summary.jobs == n
    page = summary.path.read_text(encoding="utf-8")
    assert "narrowed to statuses succeeded, failed; job types sampling." in page
    assert "estimation 0" not in page and sections(page)["estimation"].count('class="empty"') == 1


def test_since_and_until_narrow_the_jobs_covered(export, full, tmp_path) -> None:
    since, until = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    summary = write_report(export, tmp_path / "r.html", since=since, until=until.replace(tzinfo=None))
    (expected,), = sql(export, "SELECT count(*) FROM jobs WHERE submitted_at BETWEEN $a AND $b",
                       {"a": since, "b": until})
    assert 0 < summary.jobs == expected < full[0].jobs
    page = summary.path.read_text(encoding="utf-8")
    assert "submitted at or after 2024-03-01 00:00 UTC; submitted at or before 2024-05-31 23:59 UTC" in page
    months = re.findall(r"<td[^>]*>(2024-\d\d)-\d\d</td>", sections(page)["overview"])
    assert months and set(months) <= {"2024-03", "2024-04", "2024-05"}


def test_device_filter_keeps_only_that_device(export, tmp_path) -> None:
    summary = write_report(export, tmp_path / "r.html", devices=["Kawasaki"], top_jobs=3)
    (expected,), = sql(export, "SELECT count(*) FROM jobs WHERE device_id = 'Kawasaki'")
    assert summary.jobs == expected
    found = sections(summary.path.read_text(encoding="utf-8"))
    assert re.findall(r"<tr><td>([^<]+)</td>", found["timings"]) == ["Kawasaki"]
    assert found["top-bitstrings"].count("Kawasaki ·") == 3 == found["top-bitstrings"].count('class="card"')
    assert set(re.findall(r"</details></td><td>([^<]+)</td>", found["jobs"])) == {"Kawasaki"}


def test_names_from_the_data_are_escaped_in_tables_charts_and_tooltips(tmp_path) -> None:
    jobs, _ = demo_jobs(120, seed=3)
    nasty = "<script>alert('x')</script> $_{$ & _co"
    for job in jobs:
        if job["name"] == "bell-pair":
            job["name"] = nasty
        if job["device_id"] == "Urchin":
            job["device_id"] = "<i>Urchin</i>"
    summary = write_report(write_export(jobs, tmp_path / "out"), tmp_path / "r.html")
    page = summary.path.read_text(encoding="utf-8")
    assert page.count("<script") == 1 and "<i>" not in page
    found = sections(page)
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; $_{$ &amp; _co"
    assert escaped in found["top-bitstrings"] and escaped in found["jobs"]
    assert "&lt;i&gt;Urchin&lt;/i&gt;" in found["overview"]
    assert f'<h3 class="circuit">{escaped}</h3>' in found["drift"]
    assert any(t.startswith(nasty + " · ") for t in titles(found["drift"]))


def test_chart_text_is_at_least_10px_in_an_800px_window(full) -> None:
    """Every chart is at most 760 units wide (a full-width figure) or 370 (a panel, two to a row), and its text
    at least 11 units: at 800 px (752 px of content, 368 per panel) no text is under 10 px."""
    page = full[1]
    panels = re.findall(r'<div class="panel"><svg[^>]*viewBox="0 0 ([\d.]+) ', page)
    widths = [float(w) for w in re.findall(r'<svg[^>]*viewBox="0 0 ([\d.]+) ', page)]
    assert panels and max(float(w) for w in panels) <= 370 and max(widths) <= 760
    sizes = [float(s) for s in re.findall(r'<text[^>]*font-size="([\d.]+)"', page)]
    assert sizes and min(sizes) >= 11


def test_cjk_names_get_a_cjk_font(full) -> None:
    assert re.search(r'font:14px/1.45 [^;]*"Noto Sans CJK JP"[^;]*"Hiragino Sans"|font:14px/1.45 [^;]*"Hiragino Sans"'
                     r'[^;]*"Noto Sans CJK JP"', full[1])
    assert "svg text{font-family:inherit}" in full[1]


def test_a_price_table_turns_usage_into_costs(export, tmp_path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("device_id,per_shot,per_second,currency,valid_from\nKawasaki,0.01,2.5,JPY,\n")
    write_report(export, tmp_path / "r.html", prices=prices)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    by_device = usage_figures(export, by="device", prices=prices).to_pylist()
    kawasaki = next(row for row in by_device if row["device_id"] == "Kawasaki")
    assert kawasaki["cost"] > 0 and kawasaki["currency"] == "JPY"
    assert f"{kawasaki['cost']:,.2f} JPY" in page  # the device table's cost, as usage_figures computes it
    result = CliRunner().invoke(main, ["report", str(export), str(tmp_path / "p.html"), "--prices", str(prices)])
    assert result.exit_code == 0, result.output


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


def test_estimation_colour_means_the_device_everywhere_with_a_legend(full) -> None:
    part = sections(full[1])["estimation"]
    legend_colors = dict(re.findall(r'<span><i style="background:(#[0-9a-f]{6})"></i>([^<]+)</span>', part))
    by_device = {html.unescape(device): color for color, device in legend_colors.items()}
    assert by_device, "the estimation panels have a legend"
    overview_colors = dict((d, c) for c, d in re.findall(r'<span><i style="background:(#[0-9a-f]{6})"></i>([^<]+)'
                                                         r"</span>", sections(full[1])["usage"]))
    points = re.findall(r'<circle [^>]*?(?:fill="(#[0-9a-f]{6})"|stroke="(#[0-9a-f]{6})")[^>]*><title>[^<]*? on '
                        r"([^,<]+), ", part)
    assert len(points) > 20
    for fill, stroke, device in points:
        assert (fill or stroke) == by_device[device] == overview_colors[device], device
    assert "Colour is the device" in part and "older ones dashed" in part


def test_one_huge_job_clips_the_shots_axis_instead_of_flattening_every_other_month(export, full) -> None:
    part = sections(full[1])["usage"]
    svg = re.search(r"<svg.*?</svg>", part, flags=re.S)[0]
    heights: dict[str, float] = {}
    for x, h, month in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="([\d.]+)"[^>]*><title>'
                                  r"[^,]+, (\d{4}-\d\d): ", svg):
        if float(x) < 380:  # the shots frame (the left half)
            heights[month] = heights.get(month, 0) + float(h)
    (month, shots, biggest, following), = sql(export, """
        SELECT arg_max(submitted_month, s), max(s), max(big), (SELECT max(s) FROM (SELECT sum(shots) AS s FROM jobs
               GROUP BY submitted_month) WHERE s < (SELECT max(s) FROM (SELECT sum(shots) AS s FROM jobs
               GROUP BY submitted_month)))
        FROM (SELECT submitted_month, sum(shots) AS s, max(shots) AS big FROM jobs GROUP BY 1)""")
    assert biggest == 10_000_000 and shots > 4 * following  # the demo's one 10-million-shot job
    second = sorted(heights.values())[-2]
    assert second > 0.6 * heights[month]  # the next month is drawn near the top, not flattened to a sliver
    assert f'font-weight="bold">{format_count(shots)}</text>' in svg  # the clipped month's total, written
    assert "axis clipped at" in svg and "the axis is linear but clipped" in part
