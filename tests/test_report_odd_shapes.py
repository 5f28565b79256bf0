"""The report never crashes on an odd history: zero and negative run or queue times next to long ones, one job, one
device, only estimations, only failures, missing end times, huge shot counts next to tiny ones. Hypothesis draws
such histories from the demo's jobs; `report` writes a page, or for a selection of no jobs exits 1 with one
sentence."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from demo_export import demo_jobs, write_export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data.cli import main
from oqtopus_data.report import write_report
from oqtopus_data.times import parse_datetime

POOL, DEVICES = demo_jobs(120, seed=3)
FINISHED = [j for j in POOL if j["status"] == "succeeded"]


def _moved(text: str | None, seconds: float) -> str | None:
    if text is None:
        return None
    moment: datetime = parse_datetime(text) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@st.composite
def odd_job(draw: st.DrawFn) -> dict[str, Any]:
    """A demo job with its status, device, shots and times bent into a corner case."""
    job = dict(draw(st.sampled_from(FINISHED)))
    job["job_id"] = draw(st.uuids()).hex
    job["status"] = draw(st.sampled_from(["succeeded", "succeeded", "failed", "cancelled", "running"]))
    if draw(st.booleans()):
        job["device_id"] = draw(st.sampled_from(["Kawasaki", "qulacs", "x" * 40, "\x1b]0;pwn\x07dev"]))
    job["shots"] = draw(st.sampled_from([job.get("shots"), 1, 10_000_000, 2**31 - 1]))
    run = draw(st.sampled_from(["same", "zero", "negative", "long", "no end", "no start"]))
    if run == "zero":
        job["ended_at"] = job["running_at"]
    elif run == "negative":
        job["ended_at"] = _moved(job["running_at"], -draw(st.integers(1, 86_400)))
    elif run == "long":
        job["ended_at"] = _moved(job["running_at"], 30 * 86_400)
    elif run == "no end":
        job["ended_at"] = None
    elif run == "no start":
        job["running_at"] = job["ready_at"] = None
    queue = draw(st.sampled_from(["same", "zero", "negative"]))
    if queue == "zero" and job.get("running_at"):
        job["submitted_at"] = job["running_at"]
    elif queue == "negative" and job.get("running_at"):
        job["submitted_at"] = _moved(job["running_at"], draw(st.integers(1, 3600)))
    return job


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(odd_job(), min_size=1, max_size=8), only=st.sampled_from([None, "estimation", "failed"]))
def test_report_of_an_odd_history_writes_a_page(jobs: list[dict[str, Any]], only: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = write_export(jobs, Path(tmp) / "out", snapshots=[(datetime(2025, 1, 1), DEVICES)])
        target = Path(tmp) / "report.html"
        args = ["report", str(out), str(target)]
        if only == "estimation":
            args += ["--job-type", "estimation"]
        elif only == "failed":
            args += ["--status", "failed"]
        result = CliRunner().invoke(main, args)
        if result.exit_code == 0:
            page = target.read_text(encoding="utf-8")
            assert page.startswith("<!DOCTYPE html>") and "</html>" in page
            return
        # only a selection that matches nothing (or names what the export lacks) may end without a page
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and ("nothing to report" in lines[0] or "no job in this export" in lines[0]), lines
        assert not target.exists()


def test_zero_and_negative_run_times_next_to_long_ones(tmp_path: Path) -> None:
    jobs = [dict(j) for j in FINISHED[:12]]
    jobs[0]["ended_at"] = jobs[0]["running_at"]  # started and ended in the same second
    jobs[1]["ended_at"] = _moved(jobs[1]["running_at"], -5)  # clock skew between server components
    jobs[2]["ended_at"] = _moved(jobs[2]["running_at"], 7200)
    jobs[3]["submitted_at"] = jobs[3]["running_at"]
    out = write_export(jobs, tmp_path / "out")
    summary = write_report(out, tmp_path / "report.html")
    assert summary.path.exists() and summary.charts > 0
    shutil.rmtree(out)
