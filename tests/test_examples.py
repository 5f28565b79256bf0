"""The scripts in examples/ run as a researcher runs them (real subprocesses) on the demo export and say true things."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from demo_export import build_demo_export, demo_jobs, write_export

import oqtopus_data
from oqtopus_data.report.drift import CircuitDrift, calibration_times
from oqtopus_data.results.circuits import circuit_key

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


def drift_table(out: str) -> list[tuple[str, str, int, int, float | None]]:
    """(device, period, runs, low-shot runs, fidelity) rows of device_drift.py's table."""
    rows = re.findall(r"│ (\S+)\s+┆ ((?:calibration|day) [\d: -]+?)\s+┆ (\d+)\s+┆ (\d+)\s+┆ [\d: -]+┆ ([\d.]+|null)",
                      out)
    return [(d, p, int(n), int(low), None if f == "null" else float(f)) for d, p, n, low, f in rows]


def test_device_drift_defaults_to_the_most_repeated_circuit_grouped_by_calibration(export) -> None:
    out = run(EXAMPLES / "device_drift.py", export)
    with CircuitDrift(oqtopus_data.connect(export)) as drift:
        top = drift.circuits(limit=1)[0]
        runs = drift.runs([top])
    assert out.startswith(f"{top.name} (circuit {top.key[:12]}): Hellinger fidelity to the pooled simulator runs, "
                          f"{len(runs)} runs in {export}\n")
    table = drift_table(out)
    assert sum(n for _, _, n, _, _ in table) == len(runs) and len(table) > 5
    assert {d for d, p, *_ in table if p.startswith("calibration 2024")} == {"Kawasaki", "Urchin"}  # QPUs
    assert {d for d, p, *_ in table if p.startswith("day 2024")} >= {"SVSim", "qulacs"}  # simulators: by day
    # The table's fidelity is the shot-weighted mean of the same function's runs, low-shot runs left out.
    first_kawasaki = next(row for row in table if row[0] == "Kawasaki" and row[1].startswith("calibration"))
    since = datetime.strptime(first_kawasaki[1][len("calibration "):], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    later = [c for c in calibration_times(oqtopus_data.connect(export))["Kawasaki"] if c > since + timedelta(minutes=1)]
    mine = [r for r in runs if r.device_id == "Kawasaki" and since <= r.submitted_at < (later or [datetime.max.replace(
        tzinfo=UTC)])[0] and not r.low_shots]
    assert first_kawasaki[4] == round(sum(r.fidelity * r.shots for r in mine) / sum(r.shots for r in mine), 4)
    assert all(f is None or 0.5 < f <= 1.0 for *_, f in table)


def test_device_drift_finds_circuits_on_an_export_without_the_demos_names(tmp_path) -> None:
    jobs, devices = demo_jobs(150, seed=2)
    for k, job in enumerate(jobs):
        job["name"] = f"calib {k}"  # every job named differently: the circuit is the program
    out_dir = write_export(jobs, tmp_path / "renamed", [(datetime(2025, 1, 1, tzinfo=UTC), devices)])
    bell = circuit_key(jobs[0]["job_info"]["input"]["program"])  # the first job is a Bell pair
    runs = sum(j["job_info"]["input"].get("program") == jobs[0]["job_info"]["input"]["program"]
               and "result" in j["job_info"] for j in jobs)
    header = (f"calib 0 (circuit {bell[:12]}): Hellinger fidelity to the pooled simulator runs, {runs} runs in "
              f"{out_dir}\n")
    assert run(EXAMPLES / "device_drift.py", out_dir).startswith(header)  # the most repeated circuit
    assert run(EXAMPLES / "device_drift.py", out_dir, "calib 0").startswith(header)  # named by one of its jobs


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


def test_vqe_trace_without_matplotlib_says_which_extra_brings_it(tmp_path) -> None:
    """matplotlib is the `examples` extra, not a dependency: without it the script says so, with no traceback."""
    script = EXAMPLES / "vqe_trace.py"
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; sys.argv = ['vqe_trace.py']; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "pip install '.[examples]'" in done.stderr and "Traceback" not in done.stderr
