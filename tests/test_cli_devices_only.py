"""`oqtopus-export --devices-only`: a device snapshot from the command line, into a new directory, an export, and
s3://; the options that select jobs are refused with it."""

from __future__ import annotations

import re

import pytest
from cli_support import one_sentence, point_at, run_data, run_export

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.testing import FakeCloud

pytest_plugins = ["cli_env", "s3server"]
SNAPSHOT_LINE = re.compile(r"device snapshot to (?P<out>.+): commit (?P<commit>\d+), 4 devices, (?P<what>.+) in "
                           r"\d+\.\ds\n")


def test_devices_only_into_a_new_directory_then_again_stores_each_calibration_once(tmp_path, env):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=30, seed=1) as cloud:
        point_at(env, cloud)
        first = run_export("--devices-only", out)
        second = run_export("--devices-only", out)
        shown = {d["device_id"]: d["calibrated_at"] for d in cloud.history.devices() if "calibrated_at" in d}
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    match = SNAPSHOT_LINE.fullmatch(first.stdout)
    assert match and (match["out"], match["commit"]) == (str(out), "1")
    assert match["what"] == f"2 new calibrations (Kawasaki {shown['Kawasaki']}, Urchin {shown['Urchin']})"
    assert SNAPSHOT_LINE.fullmatch(second.stdout)["what"] == (
        "no new calibration (the ones GET /devices shows are stored already)")
    assert Dataset(out).require_latest().state == {}
    rows = run_data("sql", out, "SELECT count(*) AS n FROM qubit_calibrations", "--format", "csv").stdout
    assert rows == '"n"\n80\n'


def test_devices_only_is_quiet_with_quiet(tmp_path, env):
    with FakeCloud(n_jobs=10, seed=2) as cloud:
        point_at(env, cloud)
        done = run_export("--devices-only", "-q", tmp_path / "out")
    assert (done.exit_code, done.output) == (0, "")


@pytest.mark.parametrize(("options", "named"), [
    (["--since", "2025-01-01"], "--since"),
    (["--status", "failed", "--device", "Kawasaki"], "--status, --device"),
    (["--full-refresh", "--sse-logs"], "--sse-logs, --full-refresh"),
    (["--compact"], "--compact"),
])
def test_options_that_select_or_rewrite_jobs_are_refused_with_devices_only(tmp_path, env, options, named):
    done = run_export("--devices-only", *options, tmp_path / "out")
    assert done.exit_code == 2 and done.stdout == ""
    assert f"Error: --devices-only takes a device snapshot only, without {named}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_devices_only_refuses_a_directory_of_another_server(tmp_path, env):
    out = tmp_path / "out"
    assert run_export("--demo", "--demo-jobs", "20", "-q", out).exit_code == 0
    with FakeCloud(n_jobs=10) as other:
        point_at(env, other)
        done = run_export("--devices-only", out)
    assert done.exit_code == 2
    assert one_sentence(done).startswith("this directory holds another export (it was exported from http://127.0.0.1:")


def test_devices_only_into_s3(s3, env):
    url = f"s3://{s3.bucket()}/calibrations"
    with FakeCloud(n_jobs=10, seed=3) as cloud:
        point_at(env, cloud)
        for _ in range(2):
            done = run_export("--devices-only", url, "--storage-option", f"endpoint_url={s3.endpoint}")
            assert done.exit_code == 0, done.output
    assert SNAPSHOT_LINE.fullmatch(done.stdout)["commit"] == "2"
    found = run_data("sql", url, "SELECT count(*) AS n, count(DISTINCT snapshot_at) AS s FROM devices", "--format",
                     "csv", "--storage-option", f"endpoint_url={s3.endpoint}")
    assert found.stdout == '"n","s"\n8,2\n'
