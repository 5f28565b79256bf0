"""`oqtopus-data info` (issue 11, items 4 and 5; issue 12, item 4): where the export came from, its last sync, the
keys the server sent that no column declares, and a damaged dataset named on stderr as `warning:` lines or one
sentence, never a traceback."""

from __future__ import annotations

import json
import os

import pytest
from cli_support import one_sentence, run_data, run_export
from hostile import Hostile, job, payload, serve_job, zipped

from oqtopus_data.dataset.dataset import Dataset

pytest_plugins = ["cli_env"]  # the `env` fixture
TOKEN = "tok-info-1234567890"


@pytest.fixture
def exported(tmp_path, env):
    """An export of one job with keys no schema declares, from a server that says whose account it is."""
    out = tmp_path / "out"
    with Hostile() as server:
        result = zipped({"result.json": json.dumps({"sampling": {"counts": {"00": 6, "11": 4}, "seed": 7}}).encode()})
        listed = serve_job(server, job("j1", {"message2": "hi"}, priority=3, tags=["a", "b"]), {"result": result})
        server.on("/users/me", payload({"id": "u-42", "name": "Ada", "organization": "acme", "email": "a@b.c"}))
        server.on("/jobs", payload([listed]), payload([]))
        server.on("/devices", payload([{"device_id": "SVSim", "status": "available"}]))
        env.setenv("OQTOPUS_URL", server.url)
        env.setenv("OQTOPUS_API_TOKEN", TOKEN)
        done = run_export("-q", out)
        assert done.exit_code == 0, done.output
        return out, server.url


def test_info_shows_the_source_the_selection_and_the_last_sync(exported):
    out, url = exported
    shown = run_data("info", out)
    assert shown.exit_code == 0 and shown.stderr == ""
    lines = shown.stdout.splitlines()
    assert lines[1] == f"source: {url} (account u-42, organization acme)"
    assert lines[2] == "selection: all jobs (no --status/--job-type/--device)"
    assert lines[3].startswith("last sync ") and lines[3].endswith("Z: listed 1 job, exported 1, 0 failed")
    assert lines[4].startswith("listed up to ") and lines[4].endswith(
        "Z; 0 jobs not yet terminal, 0 to retry, 0 SSE logs to retry (fetched again by the next run)")
    assert TOKEN not in shown.output and "a@b.c" not in shown.output


def test_info_lists_the_keys_no_column_declares(exported):
    out, _ = exported
    lines = run_data("info", out).stdout.splitlines()
    assert ("undeclared keys (kept as JSON text in jobs.extra): job.priority (1 job), job.tags (1 job), "
            "job_info.message2 (1 job), result.sampling.seed (1 job)") in lines


def test_a_skipped_commit_is_a_warning_line_not_a_python_warning(exported):
    out, _ = exported
    manifests = out / "_oqtopus" / "manifests"
    newest = sorted(manifests.iterdir())[-1]
    newest.rename(manifests / f"{int(newest.stem) + 1:020d}.json")
    (manifests / newest.name).write_text(newest.with_name(f"{int(newest.stem) + 1:020d}.json").read_text())
    (manifests / f"{int(newest.stem) + 1:020d}.json").write_text('{"format": "oqtopus-data", "vers')
    shown = run_data("info", out)
    assert shown.exit_code == 0, shown.output
    warnings = shown.stderr.splitlines()
    assert [w.split(": ", 1)[0] for w in warnings] == ["warning", "warning"]
    assert "is not a readable oqtopus-data manifest" in warnings[0]
    assert "read commit 1 of " in warnings[1] and "instead, the newest readable one" in warnings[1]
    assert "DatasetWarning" not in shown.stderr and ".py:" not in shown.stderr


def test_a_lost_data_file_is_one_sentence_suggesting_repair(exported):
    out, _ = exported
    (lost,) = Dataset(out).latest().entries("counts")
    os.remove(out / lost.path)
    shown = run_data("info", out)
    assert shown.exit_code == 2
    message = one_sentence(shown, "oqtopus-data")
    assert f"1 data file(s) of commit 1 are missing ({lost.path})" in message and "--repair" in message


def test_a_location_without_an_export_says_so(tmp_path, env):
    shown = run_data("info", tmp_path / "nothing")
    assert shown.exit_code == 2
    assert one_sentence(shown, "oqtopus-data") == f"{tmp_path / 'nothing'} holds no oqtopus-data export " \
                                                  "(no _oqtopus/manifests/)"
