"""SSE jobs that never finished (cancelled, failed before running) have no log: the server's GET /jobs/{id}/sselog
answers `400 {"message": "job has not finished yet"}` for them, which is no log, never an error or an exit 1."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hostile import Hostile, job, status

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.fetch.jobs import fetch_jobs
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud

FAST = {"max_tries": 2, "backoff": 0.001, "max_backoff": 0.01}


def sse_job(job_id: str, status_: str) -> dict[str, Any]:
    return job(job_id, {"result": {"sampling": {"counts": {"0": 1}}}}, job_type="sse", status=status_)


@pytest.mark.parametrize("message", ["job has not finished yet", "job is not an SSE job"])
def test_a_400_of_the_sselog_endpoint_is_no_log(server: Hostile, message: str) -> None:
    server.on("/jobs/c/sselog", status(400, {"message": message}))
    api = ApiClient(Credentials(server.url, "tok", None, 5.0, "test"), sleep=lambda s: None, **FAST)
    [fetched] = fetch_jobs(api, [sse_job("c", "cancelled")], sse_logs=True)
    assert (fetched.job_id, fetched.error, fetched.sse_log, fetched.sse_log_error) == ("c", None, None, None)
    assert server.hits["/jobs/c/sselog"] == 1  # asked once, not retried


def test_the_local_cloud_answers_400_for_logs_of_unfinished_sse_jobs_and_the_export_exits_0(tmp_path) -> None:
    # job_info inline and GET /jobs/{id}/sselog: the server's code at 021f6d91
    with FakeCloud(n_jobs=600, seed=3, legacy=True) as cloud:
        sse = [cloud.history.job(j) for j in cloud.history.job_ids() if cloud.history.status(j) != "registered"]
        sse = [j for j in sse if j["job_type"] == "sse"]
        cancelled = [j["job_id"] for j in sse if j["status"] == "cancelled"]
        assert cancelled, "the history needs a cancelled SSE job"
        answer = requests.get(f"{cloud.url}/jobs/{cancelled[0]}/sselog", headers={"q-api-token": cloud.token},
                              timeout=10)
        assert (answer.status_code, answer.json()) == (400, {"message": "job has not finished yet"})
        cloud.requests.reset()
        with ApiClient(Credentials(url=cloud.url, token=cloud.token), **FAST) as api:
            report = export(api, tmp_path / "out", ExportOptions(sse_logs=True))
        assert report.ok, report.errors
        logged = {r[0] for r in connect(tmp_path / "out").execute("SELECT job_id FROM sse_logs").fetchall()}
        assert logged == {j["job_id"] for j in sse if "sse_log" in j["job_info"]
                          and j["status"] in ("succeeded", "failed")}
        assert cloud.requests["sselog"] >= len(cancelled)
