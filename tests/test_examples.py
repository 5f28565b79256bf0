"""The scripts in examples/ run as a researcher runs them (real subprocesses) on the demo export and say true things."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from demo_export import build_demo_export

import oqtopus_data

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("examples") / "demo-out")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    return done.stdout


def query(export: Path, sql: str) -> list[tuple]:
    return oqtopus_data.connect(export).execute(sql).fetchall()


def test_queue_times_sql_gives_percentiles_per_device_and_month(export) -> None:
    con = oqtopus_data.connect(export)
    result = con.execute((EXAMPLES / "queue_times.sql").read_text())
    columns = [d[0] for d in result.description]
    rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    assert columns[:4] == ["device_id", "month", "jobs", "queue_p50_s"]
    expected = dict(((d, m), (n, p)) for d, m, n, p in con.execute(
        "SELECT device_id, submitted_month, count(*), round(median(queue_seconds), 1) FROM job_timings "
        "WHERE queue_seconds IS NOT NULL GROUP BY ALL").fetchall())
    assert {(r["device_id"], r["month"]): (r["jobs"], r["queue_p50_s"]) for r in rows} == expected
    assert all(r["queue_p50_s"] <= r["queue_p90_s"] <= r["queue_p99_s"] <= r["queue_max_s"] for r in rows)


def test_queue_times_sql_runs_through_the_sql_command(export) -> None:
    out = run("-m", "oqtopus_data.cli", "sql", export, (EXAMPLES / "queue_times.sql").read_text(), "--format", "csv")
    lines = out.splitlines()
    assert lines[0].startswith('"device_id","month","jobs","queue_p50_s"')
    assert len(lines) - 1 == len(query(export, "SELECT DISTINCT device_id, submitted_month FROM job_timings "
                                               "WHERE queue_seconds IS NOT NULL"))


def test_device_drift_groups_bell_pair_runs_by_calibration(export) -> None:
    out = run(EXAMPLES / "device_drift.py", export)
    (runs,) = query(export, "SELECT count(*) FROM jobs WHERE name = 'bell-pair' AND status = 'succeeded' "
                            "AND total_count > 0")[0]
    assert out.startswith(f"bell-pair: success = P(00 + 11), {runs} runs in {export}\n")
    assert re.search(r"Kawasaki\s+┆ calibration 2024-\d\d-\d\d \d\d:\d\d", out)  # QPUs have calibrations
    assert re.search(r"SVSim\s+┆ day 2024-\d\d-\d\d", out)  # simulators have none: by day
    means = [float(v) for v in re.findall(r"┆ ([\d.]+)\s+┆ [\d.]+\s+┆ [\d.]+\s+│", out)]  # mean_success column
    assert len(means) == out.count("calibration 2024") + out.count("day 2024")
    assert all(0.5 < v <= 1.0 for v in means)


def test_vqe_trace_writes_a_png_of_the_largest_series(export, tmp_path) -> None:
    png = tmp_path / "trace.png"
    out = run(EXAMPLES / "vqe_trace.py", export, png)
    (jobs,) = query(export, "SELECT count(*) FROM estimations JOIN jobs USING (job_id) "
                            "WHERE name LIKE 'vqe-h2-step-%' AND exp_value IS NOT NULL")[0]
    assert out.startswith(f"vqe-h2-step-: {jobs} jobs in ")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_vqe_trace_defaults_to_demo_out_and_vqe_trace_png(export) -> None:
    out = run(EXAMPLES / "vqe_trace.py", cwd=export.parent)
    assert "wrote vqe_trace.png" in out
    assert (export.parent / "vqe_trace.png").stat().st_size > 0


def test_counts_to_numpy_defaults_to_the_newest_small_sampling_job(export) -> None:
    out = run(EXAMPLES / "counts_to_numpy.py", cwd=export.parent)  # the default export dir is ./demo-out
    (job_id,) = query(export, """
        SELECT job_id FROM jobs JOIN counts USING (job_id) WHERE job_type = 'sampling'
        GROUP BY job_id, submitted_at HAVING max(n_bits) <= 20 ORDER BY submitted_at DESC LIMIT 1""")[0]
    assert out.startswith(f"job {job_id}: ")
    assert out.endswith("sum of probabilities: 1.000000\n")


def test_counts_to_numpy_vector_is_the_jobs_counts_over_their_total(export) -> None:
    job_id, total = query(export, "SELECT job_id, total_count FROM jobs WHERE name = 'bell-pair' "
                                  "AND total_count > 0 ORDER BY submitted_at LIMIT 1")[0]
    counts = dict(query(export, f"SELECT outcome, count FROM counts WHERE job_id = '{job_id}'"))
    out = run(EXAMPLES / "counts_to_numpy.py", export, job_id)
    assert "2 bits -> probability vector of length 4" in out
    vector = [float(v) for v in re.search(r"probs = \[([^\]]+)\]", out).group(1).split()]
    assert vector == [round(counts.get(k, 0) / total, 4) for k in range(4)]
    assert out.endswith("sum of probabilities: 1.000000\n")


def test_counts_to_numpy_says_which_job_is_unknown(export) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "counts_to_numpy.py"), str(export), "no-such-job"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip()) == (1, f"no job no-such-job in {export}")
