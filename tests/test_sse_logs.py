"""SSE logs as oqtopus-client 1.3.0 gets them: the presigned `job_info.sse_log` archive first, the older
GET /jobs/{id}/sselog only where there is no URL; a job without a log is not an error; saved under bounded,
unique names."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hostile import Hostile, job, payload, raw, serve_job, status, zipped

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.errors import ApiError
from oqtopus_data.fetch.jobs import fetch_jobs, refetch_sse_logs
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.run.sse import LOG_DIR, safe_log_name, save_sse_logs

LOG = zipped({"sse_log.log": b"step 1\nstep 2\n", "extra/metrics.txt": b"energy -1.1\n"})


def client(server: Hostile, **options: Any) -> ApiClient:
    return ApiClient(Credentials(server.url, "tok-SECRET-123", None, 5.0, "test"), sleep=lambda s: None,
                     **options)


def sse_job(job_id: str, status_: str = "succeeded", **info: Any) -> dict:
    return job(job_id, {"result": {"sampling": {"counts": {"0": 1}}}, **info}, job_type="sse", status=status_)


def test_finished_sse_jobs_get_their_presigned_log_archive(server: Hostile) -> None:
    done = serve_job(server, sse_job("done"), {"sse_log": LOG})
    running = serve_job(server, sse_job("running", "running"), {"sse_log": LOG})
    sampling = serve_job(server, job("sampling", {}), {"sse_log": LOG})
    fetched = list(fetch_jobs(client(server), [done, running, sampling], sse_logs=True))
    assert [(f.job_id, f.error, f.sse_log, f.sse_log_error) for f in fetched] == [
        ("done", None, LOG, None), ("running", None, None, None), ("sampling", None, None, None)]
    assert server.hits["/storage/done/sse_log.zip"] == 1
    assert server.hits["/storage/running/sse_log.zip"] == server.hits["/storage/sampling/sse_log.zip"] == 0
    assert not any(path.endswith("/sselog") for path in server.hits)


def test_without_sse_logs_asked_for_no_log_is_fetched(server: Hostile) -> None:
    done = serve_job(server, sse_job("done"), {"sse_log": LOG})
    [fetched] = fetch_jobs(client(server), [done])
    assert (fetched.sse_log, fetched.sse_log_error) == (None, None)
    assert server.hits["/storage/done/sse_log.zip"] == 0


def test_a_job_without_a_log_url_uses_the_older_endpoint(server: Hostile) -> None:
    old = sse_job("old")
    server.on("/jobs/old/sselog", payload({"file": base64.b64encode(LOG).decode(), "file_name": "x.zip"}))
    [fetched] = fetch_jobs(client(server), [old], sse_logs=True)
    assert (fetched.sse_log, fetched.sse_log_error) == (LOG, None)


@pytest.mark.parametrize("where", ["endpoint", "storage"])
def test_a_missing_log_is_no_log_not_an_error(server: Hostile, where: str) -> None:
    cancelled = sse_job("c", "cancelled")
    if where == "storage":
        cancelled = serve_job(server, cancelled, {"sse_log": LOG})
        server.on("/storage/c/sse_log.zip", raw(b"<Error><Code>NoSuchKey</Code></Error>", 404))
    [fetched] = fetch_jobs(client(server), [cancelled], sse_logs=True)
    assert (fetched.job_id, fetched.error, fetched.sse_log, fetched.sse_log_error) == ("c", None, None, None)
    assert fetched.job["status"] == "cancelled"


def test_a_log_that_fails_is_a_log_error_and_the_job_is_exported(server: Hostile) -> None:
    done = serve_job(server, sse_job("done"), {"sse_log": LOG})
    server.on("/storage/done/sse_log.zip", status(500))
    [fetched] = fetch_jobs(client(server, max_tries=2), [done], sse_logs=True)
    assert fetched.error is None and fetched.job["job_info"]["result"] == {"sampling": {"counts": {"0": 1}}}
    assert (fetched.sse_log, fetched.sse_log_error.stage) == (None, "sse_log")
    assert fetched.sse_log_error.problem == (
        f"GET {server.url}/storage/done/sse_log.zip failed after 2 tries: HTTP 500")


def test_a_log_that_is_not_a_zip_is_a_log_error(server: Hostile) -> None:
    done = serve_job(server, sse_job("done"), {"sse_log": b"plain text, not a zip"})
    [fetched] = fetch_jobs(client(server), [done], sse_logs=True)
    assert fetched.sse_log_error.problem.startswith("sse_log archive: not a zip archive")


def test_an_expired_log_url_is_renewed_by_a_fresh_get(server: Hostile) -> None:
    done = serve_job(server, sse_job("done"), {"sse_log": LOG})
    server.on("/storage/done/sse_log.zip", status(403), raw(LOG))
    [fetched] = fetch_jobs(client(server), [done], sse_logs=True)
    assert (fetched.sse_log, fetched.sse_log_error) == (LOG, None)
    assert server.hits["/jobs/done"] == 1


def test_logs_are_fetched_again_later_from_fresh_urls(server: Hostile) -> None:
    serve_job(server, sse_job("a"), {"sse_log": LOG})
    serve_job(server, sse_job("b"), {"sse_log": LOG})
    server.on("/storage/b/sse_log.zip", status(500))
    server.on("/jobs/gone", status(404))
    got = list(refetch_sse_logs(client(server, max_tries=1), ["a", "gone", "b"]))
    assert [(job_id, data, error and error.stage) for job_id, data, error in got] == [
        ("a", LOG, None), ("gone", None, None), ("b", None, "sse_log")]
    assert server.hits["/jobs/a"] == server.hits["/jobs/b"] == 1


def test_get_sselog_answers_like_the_sdk_from_the_presigned_archive(server: Hostile) -> None:
    listed = serve_job(server, sse_job("s1"), {"sse_log": LOG})
    api = client(server)
    assert api.get_sselog("s1") == {"file": base64.b64encode(LOG).decode(), "file_name": "sselog_s1.log"}
    result = result_from_raw(listed, client=api)
    assert result.read_log_text() == (
        "===== sse_log.log =====\nstep 1\nstep 2\n\n===== extra/metrics.txt =====\nenergy -1.1")
    server.on("/jobs/none", payload(sse_job("none")))
    with pytest.raises(ApiError, match="the SSE log is not available") as info:
        api.get_sselog("none")
    assert info.value.status == 404


IDS = ["a/b", "a_b", "a?b", "a" * 300, "a" * 299 + "b", "ジョブ" * 100, "ジョ" * 150, ".."]


def test_log_file_names_are_bounded_and_unique_and_the_index_says_which(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path / "out")
    logs = [(job_id, zipped({"sse_log.log": job_id.encode("utf-8", "surrogatepass")})) for job_id in IDS]
    saved = save_sse_logs(dataset, logs)
    rows = saved.table.to_pylist()
    assert saved.errors == []
    assert [row["job_id"] for row in rows] == IDS
    paths = [row["path"] for row in rows]
    assert len(set(paths)) == len(IDS)
    assert all(path.startswith(f"{LOG_DIR}/") and len(path.encode()) <= 100 for path in paths)
    for row, (job_id, data) in zip(rows, logs, strict=True):
        assert row == {"job_id": job_id, "file_name": None, "bytes": len(data), "path": row["path"]}
        stored = (tmp_path / "out" / row["path"]).read_bytes()
        assert zipfile.ZipFile(io.BytesIO(stored)).read("sse_log.log") == job_id.encode("utf-8", "surrogatepass")
    assert safe_log_name("job-1") == safe_log_name("job-1") != safe_log_name("job_1")
    assert safe_log_name("job-1").startswith("job-1-")


def test_saving_a_log_that_is_not_a_zip_or_of_an_unstorable_id_is_that_jobs_error(tmp_path: Path) -> None:
    logs = [("j", b"not a zip"), ("k", LOG), ("k", LOG), ("\udc80lone", LOG)]
    saved = save_sse_logs(Dataset(tmp_path / "out"), logs)
    assert [row["job_id"] for row in saved.table.to_pylist()] == ["k"]
    assert [job_id for job_id, _ in saved.errors] == ["j", "\udc80lone"]
    assert list((tmp_path / "out" / LOG_DIR).iterdir()) == [tmp_path / "out" / LOG_DIR / safe_log_name("k")]


def test_a_403_on_the_sselog_endpoint_is_that_logs_error_not_refused_credentials(server: Hostile) -> None:
    server.on("/jobs/old/sselog", status(403, {"message": "not yours"}))
    [fetched] = fetch_jobs(client(server), [sse_job("old")], sse_logs=True)
    assert (fetched.error, fetched.sse_log) == (None, None)
    assert (fetched.sse_log_error.stage, fetched.sse_log_error.problem) == (
        "sse_log", f"GET {server.url}/jobs/old/sselog: HTTP 403: not yours")
