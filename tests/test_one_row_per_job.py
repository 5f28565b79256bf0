"""A commit never holds two rows of one job in `jobs`, whatever the server answers (issue 20 item 6, the writer's
guard): the new rows of a job the dataset holds already, or that one batch brings twice, are refused with a
named errors row, and the stored row is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import result

from oqtopus_data import connect, flatten, write_dataset
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.errors import StoreError
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.run.rows import STORE_STAGE, RunRows
from oqtopus_data.testing import FakeCloud

AT = datetime(2025, 6, 1, tzinfo=UTC)
FINAL = "sampling_current"


def tables(*names: str) -> dict:
    return flatten([result(n) for n in names], exported_at=AT)


def job_rows(out) -> list[tuple]:
    return connect(out).execute("SELECT * EXCLUDE (exported_at) FROM jobs ORDER BY job_id").fetchall()


def test_a_strangers_body_answered_for_pending_jobs_never_makes_a_second_row(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=120, seed=2) as cloud:
        creds = Credentials(url=cloud.url, token=cloud.token)
        with ApiClient(creds, workers=4) as api:
            assert export(api, out, ExportOptions(page_size=50)).ok
        before = job_rows(out)
        manifest = Dataset(out).latest()
        pending = manifest.state["pending"]
        assert pending, "the history has jobs still running: they are fetched again by id"
        stranger = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
        real = ApiClient.get_job
        # A cache or gateway mix-up: every pending job is answered with the body of one final, exported job.
        monkeypatch.setattr(ApiClient, "get_job", lambda self, job_id: real(self, stranger))
        for _ in range(3):
            with ApiClient(creds, workers=4) as api:
                report = export(api, out, ExportOptions(page_size=50))
            assert not report.ok
            assert stranger in {job_id for job_id, _stage, _message in report.errors}
    con = connect(out)
    assert con.execute("SELECT job_id FROM jobs GROUP BY job_id HAVING count(*) > 1").fetchall() == []
    assert con.execute("SELECT count(*) FROM jobs WHERE job_id = ?", [stranger]).fetchone() == (1,)
    kept = [row for row in before if row[0] == stranger]
    assert [row for row in job_rows(out) if row[0] == stranger] == kept  # the stored row, not the second copy


def test_the_writer_refuses_to_write_a_second_row_of_a_committed_job(tmp_path):
    write_dataset(tables(FINAL), tmp_path)
    with Dataset(tmp_path).writer() as writer:
        with pytest.raises(StoreError, match=f"job {result(FINAL).job_id}: the dataset holds this job's row"):
            writer.write("jobs", tables(FINAL)["jobs"])
        assert writer.commit().rows("jobs") == 1


def test_a_batch_that_repeats_a_committed_job_or_one_of_its_own_is_refused_with_an_errors_row(tmp_path):
    write_dataset(tables(FINAL), tmp_path)
    twice = result("estimation_current").job_id
    with Dataset(tmp_path).writer() as writer:
        told: list[tuple[str, str]] = []
        rows = RunRows(writer, AT, flush_rows=10)
        default = rows.refused
        rows.refused = lambda job_id, stage, message: (told.append((job_id, stage)), default(job_id, stage, message))
        batch = tables(FINAL, "estimation_current", "estimation_current", "sampling_running_minimal")
        final_ids = [result(FINAL).job_id, twice]
        rows.add(batch, final_ids)
        # Told as the batch arrives, before the run makes the state of its next commit (which fetches them again).
        assert sorted(told) == sorted([(result(FINAL).job_id, STORE_STAGE), (twice, STORE_STAGE)])
        rows.commit({}, {}, final=True)
    data = Dataset(tmp_path)
    jobs = data.read_table("jobs")["job_id"].to_pylist()
    assert sorted(jobs) == sorted([result(FINAL).job_id, result("sampling_running_minimal").job_id])
    assert twice not in data.read_table("estimations")["job_id"].to_pylist()
    errors = data.read_table("errors").select(["job_id", "stage"]).to_pylist()
    assert sorted(errors, key=str) == sorted([{"job_id": result(FINAL).job_id, "stage": STORE_STAGE},
                                              {"job_id": twice, "stage": STORE_STAGE}], key=str)


def test_a_volatile_row_of_a_job_stored_as_final_is_refused_and_the_final_row_kept(tmp_path):
    write_dataset(tables(FINAL), tmp_path)
    with Dataset(tmp_path).writer() as writer:
        rows = RunRows(writer, AT, flush_rows=10)
        rows.add(tables(FINAL), final_ids=[])  # its body again, taken as not final: a volatile row
        rows.commit({}, {}, final=True)
    data = Dataset(tmp_path)
    assert data.read_table("jobs")["job_id"].to_pylist() == [result(FINAL).job_id]
    assert [e.final for e in data.latest().entries("jobs")] == [True]
    assert data.read_table("errors").select(["job_id", "stage"]).to_pylist() == [
        {"job_id": result(FINAL).job_id, "stage": STORE_STAGE}]


def test_an_incremental_run_reads_the_ids_of_each_stored_jobs_file_once(tmp_path, monkeypatch):
    import oqtopus_data.dataset.writer as writer_module

    out = tmp_path / "out"
    with FakeCloud(n_jobs=150, seed=6) as cloud:
        creds = Credentials(url=cloud.url, token=cloud.token)
        with ApiClient(creds, workers=4) as api:
            assert export(api, out, ExportOptions(page_size=40, checkpoint_jobs=50)).ok
        reads: list[str] = []
        real = writer_module.column_values

        def counted(storage, entries, column, manifest=None):
            reads.extend(e.path for e in entries if e.table == "jobs")
            return real(storage, entries, column, manifest)

        monkeypatch.setattr(writer_module, "column_values", counted)
        with ApiClient(creds, workers=4) as api:
            assert export(api, out, ExportOptions(page_size=40, checkpoint_jobs=50)).ok
    assert reads and len(reads) == len(set(reads))
