"""`--sse-logs` added on a later run fetches the missing logs of the SSE jobs already exported, once, with progress;
later runs never ask again for a job whose log is saved or that was found to have none."""

from __future__ import annotations

import contextlib
import io
import threading
import zipfile
from collections import Counter

import pytest

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.enums import TERMINAL
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.run.info import Interrupted
from oqtopus_data.testing import FakeCloud

FAST = {"max_tries": 3, "backoff": 0.001, "max_backoff": 0.01}


def run(cloud: FakeCloud, out, progress: Counter | None = None, notes: list[str] | None = None, **options):
    events = progress if progress is not None else Counter()
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8, **FAST) as api:
        return export(api, out, ExportOptions(devices_snapshot=False, **options),
                      progress=lambda event, n: events.update({event: n}),
                      notice=(notes.append if notes is not None else None))


def saved_logs(out) -> dict[str, str]:
    rows = connect(out).execute("SELECT job_id, path FROM sse_logs").fetchall()
    assert len(rows) == len({r[0] for r in rows}), "a job's log is indexed twice"
    out_logs = {}
    for job_id, path in rows:
        with zipfile.ZipFile(io.BytesIO((out / path).read_bytes())) as archive:
            out_logs[job_id] = archive.read("sse_log.log").decode()
    return out_logs


def expected_logs(cloud: FakeCloud) -> dict[str, str]:
    """The logs the server holds for SSE jobs that finished."""
    out = {}
    for job_id in cloud.history.job_ids():
        job = cloud.history.job(job_id)
        if job.get("job_type") == "sse" and job["status"] in TERMINAL and "sse_log" in job.get("job_info", {}):
            out[job_id] = job["job_info"]["sse_log"]
    return out


def finished_sse(cloud: FakeCloud) -> set[str]:
    return {j for j in cloud.history.job_ids() if cloud.history.status(j) in TERMINAL
            and cloud.history.job(j).get("job_type") == "sse"}


def pending(cloud: FakeCloud) -> int:
    return sum(cloud.history.status(j) not in TERMINAL for j in cloud.history.job_ids())


@pytest.mark.parametrize("legacy", [False, True], ids=["presigned", "sselog-endpoint"])
def test_sse_logs_added_later_fetch_the_missing_logs_once(tmp_path, legacy):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=500, seed=13, legacy=legacy) as cloud:
        assert run(cloud, out).ok
        assert saved_logs(out) == {}
        finished = finished_sse(cloud)
        assert any(cloud.history.status(j) == "cancelled" for j in finished)

        events: Counter = Counter()
        notes: list[str] = []
        cloud.requests.reset()
        second = run(cloud, out, events, notes, sse_logs=True)
        assert second.ok, second.errors
        assert saved_logs(out) == expected_logs(cloud)
        assert events["logs"] == len(finished)  # one progress step per job asked
        assert any(f"{len(finished)} SSE job(s) exported without their log" in n for n in notes), notes
        assert second.rows["sse_logs"] == len(expected_logs(cloud))

        cloud.requests.reset()
        third = run(cloud, out, sse_logs=True)
        assert third.ok and third.rows["sse_logs"] == 0
        counts = cloud.requests.snapshot()
        assert counts["storage"] == counts["sselog"] == 0
        assert counts["job"] <= pending(cloud)  # only the jobs still pending are fetched again


def test_a_run_without_sse_logs_in_between_leaves_only_its_own_jobs_to_fetch(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=400, seed=14) as cloud:
        assert run(cloud, out, sse_logs=True).ok
        before = finished_sse(cloud)
        new = cloud.add_jobs(300, unfinished=0.0)
        assert run(cloud, out).ok  # these jobs are exported without their logs
        added = finished_sse(cloud) - before
        assert added and added <= set(new)
        events: Counter = Counter()
        cloud.requests.reset()
        assert run(cloud, out, events, sse_logs=True).ok
        assert events["logs"] == len(added)  # the jobs of the run without --sse-logs, not the earlier ones
        assert saved_logs(out) == expected_logs(cloud)
        assert cloud.requests["job"] <= len(added) + pending(cloud)


def test_a_backfill_stopped_on_request_keeps_its_logs_and_the_next_run_goes_on(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=400, seed=15) as cloud:
        assert run(cloud, out).ok
        stop = threading.Event()
        events: Counter = Counter()

        def progress(event: str, n: int) -> None:
            events.update({event: n})
            if events["logs"] >= 5:
                stop.set()

        with (ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=2, **FAST) as api,
              contextlib.suppress(Interrupted)):  # it commits what it has, then stops
            export(api, out, ExportOptions(devices_snapshot=False, sse_logs=True, workers=2), progress=progress,
                   stop=stop)
        first = saved_logs(out)
        assert 0 < len(first) < len(expected_logs(cloud))
        rest: Counter = Counter()
        assert run(cloud, out, rest, sse_logs=True).ok
        assert saved_logs(out) == expected_logs(cloud)
        assert rest["logs"] == len(finished_sse(cloud)) - events["logs"]  # none asked twice
