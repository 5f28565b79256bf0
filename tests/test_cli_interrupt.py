"""Ctrl-C and SIGTERM during an export (issue 12, item 13), with the command as a real process: the first signal
commits what was fetched and stops, saying so; a second one stops at once; either way the next run completes."""

from __future__ import annotations

import signal
import time

import pytest
from cli_support import export_process
from groundtruth import assert_matches_ground_truth

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.testing import FakeCloud, Faults

HANG_GUARD = 60.0  # seconds: only there so that a regression fails instead of hanging the suite
ARGS = ("--workers", "2", "--page-size", "20")


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def finished(proc) -> tuple[int, str]:
    _, stderr = proc.communicate(timeout=HANG_GUARD)
    assert "Traceback" not in stderr, stderr
    return proc.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_commits_what_was_fetched_and_the_next_run_completes_it(tmp_path, signum):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=300, seed=31, faults=Faults(latency=0.01)) as cloud:
        proc = export_process(out, *ARGS, cloud=cloud)
        wait_for(lambda: cloud.requests["storage"] >= 30, "archive downloads")
        proc.send_signal(signum)
        status, stderr = finished(proc)
        assert status == 1, stderr
        assert "oqtopus-export: stopping: committing what was fetched so far" in stderr
        assert "stopped on request: commit 1 holds the " in stderr
        assert stderr.rstrip().endswith("jobs exported so far; run the same command again to continue")
        committed = Dataset(out).latest()
        assert committed.version == 1 and 0 < committed.rows("jobs") < 300

        cloud.faults.latency = 0.0
        again = export_process(out, "-q", *ARGS, cloud=cloud)
        assert finished(again) == (0, "")
        assert_matches_ground_truth(out, cloud)


def test_a_second_ctrl_c_stops_at_once_and_the_next_run_completes(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=300, seed=32, faults=Faults(latency=0.01)) as cloud:
        proc = export_process(out, *ARGS, cloud=cloud)
        wait_for(lambda: cloud.requests["storage"] >= 30, "archive downloads")
        cloud.faults.latency = 30.0  # every request now hangs: the run cannot reach its next checkpoint
        time.sleep(0.5)  # what was in flight has arrived and been taken
        proc.send_signal(signal.SIGINT)
        assert proc.stderr.readline().startswith("oqtopus-export: stopping: committing what was fetched")
        proc.send_signal(signal.SIGINT)
        status, stderr = finished(proc)
        assert status == 1
        assert stderr == (f"oqtopus-export: stopped at once: {out} holds its last commit; run the same command "
                          "again to continue\n")

        cloud.faults.latency = 0.0
        again = export_process(out, "-q", *ARGS, cloud=cloud)
        assert finished(again) == (0, "")
        assert_matches_ground_truth(out, cloud)
