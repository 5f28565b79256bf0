"""Incremental sync: a rerun costs what is new, replaces what changed, and never duplicates or loses a job."""

from __future__ import annotations

from importlib import import_module

import pytest
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.enums import TERMINAL
from oqtopus_data.errors import StoreError
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud


def run(cloud, out, **options):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8) as api:
        return export(api, out, ExportOptions(page_size=100, **options))


def pending_ids(cloud) -> list[str]:
    """Jobs not yet terminal, registered ones included: the export follows each by id."""
    return [j for j in cloud.history.job_ids() if cloud.history.status(j) not in TERMINAL]


def running_ids(cloud) -> list[str]:
    """Submitted jobs not yet terminal (they have rows that will change)."""
    return [j for j in pending_ids(cloud) if cloud.history.status(j) != "registered"]


@pytest.fixture
def cloud():
    with FakeCloud(n_jobs=150, seed=31) as c:
        yield c


def test_a_rerun_with_nothing_new_makes_a_handful_of_requests(tmp_path, cloud):
    run(cloud, tmp_path / "out")
    cloud.requests.reset()
    report = run(cloud, tmp_path / "out")
    assert report.incremental and report.exported == 0
    counts = cloud.requests.snapshot()
    assert counts["storage"] == 0
    assert counts["job"] == len(pending_ids(cloud))
    assert counts["total"] < 10 + len(pending_ids(cloud))
    assert_matches_ground_truth(tmp_path / "out", cloud)


def test_a_job_that_finished_replaces_its_rows_in_every_table(tmp_path, cloud):
    run(cloud, tmp_path / "out")
    job_id = next(j for j in running_ids(cloud) if cloud.history.job(j)["job_type"] == "sampling")
    con = connect(tmp_path / "out")
    (status,) = con.execute("SELECT status FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    assert status not in TERMINAL
    assert con.execute("SELECT count(*) FROM counts WHERE job_id = ?", [job_id]).fetchone() == (0,)
    cloud.finish(job_id)
    report = run(cloud, tmp_path / "out")
    assert report.exported >= 1
    con = connect(tmp_path / "out")
    assert con.execute("SELECT status FROM jobs WHERE job_id = ?", [job_id]).fetchall() == [("succeeded",)]
    assert con.execute("SELECT count(*) FROM counts WHERE job_id = ?", [job_id]).fetchone()[0] > 0
    assert_matches_ground_truth(tmp_path / "out", cloud)


def test_new_jobs_are_appended_and_the_overlap_is_not_duplicated(tmp_path, cloud):
    run(cloud, tmp_path / "out")
    first = cloud.add_jobs(20)  # created now: the next run's lookback lists them again
    run(cloud, tmp_path / "out")
    added = cloud.add_jobs(30)
    report = run(cloud, tmp_path / "out")
    final = [j for j in first if cloud.history.status(j) in TERMINAL]
    assert final and report.skipped >= len(final)  # the overlap was listed again...
    assert_matches_ground_truth(tmp_path / "out", cloud)  # ...and nothing shows twice
    ids = {r[0] for r in connect(tmp_path / "out").execute("SELECT job_id FROM jobs").fetchall()}
    assert set(added) <= ids | {j for j in added if cloud.history.status(j) == "registered"}


def test_a_pending_job_deleted_on_the_server_leaves_the_dataset(tmp_path, cloud):
    run(cloud, tmp_path / "out")
    victim = pending_ids(cloud)[0]
    cloud.delete(victim)
    run(cloud, tmp_path / "out")
    assert connect(tmp_path / "out").execute("SELECT count(*) FROM jobs WHERE job_id = ?", [victim]).fetchone() == (0,)
    assert victim not in Dataset(tmp_path / "out").latest().state["pending"]


def test_full_refresh_shows_the_old_dataset_until_the_new_one_is_committed(tmp_path, cloud, monkeypatch):
    out = tmp_path / "out"
    run(cloud, out)
    before = connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall()
    export_module = import_module("oqtopus_data.run.export")  # the module, not the function od.export

    real = export_module.flatten_batch
    calls = {"n": 0}

    def failing(results, **kw):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("killed mid-way")
        return real(results, **kw)

    monkeypatch.setattr(export_module, "flatten_batch", failing)
    with pytest.raises(RuntimeError):
        run(cloud, out, full_refresh=True, batch_jobs=50)
    monkeypatch.undo()
    assert connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall() == before
    for job_id in running_ids(cloud):
        cloud.finish(job_id)
    report = run(cloud, out, full_refresh=True)
    assert not report.incremental
    assert_matches_ground_truth(out, cloud)


def test_a_continued_run_keeps_the_exports_since_and_refuses_an_earlier_one(tmp_path, cloud):
    from datetime import UTC, datetime

    since = datetime(2024, 6, 1, tzinfo=UTC)
    run(cloud, tmp_path / "out", since=since)
    run(cloud, tmp_path / "out")  # no --since: continues the same export
    assert Dataset(tmp_path / "out").latest().state["since"] == "2024-06-01T00:00:00Z"
    (first,) = connect(tmp_path / "out").execute("SELECT min(submitted_at) FROM jobs").fetchone()
    assert first >= since
    with pytest.raises(StoreError, match="an earlier --since needs --full-refresh"):
        run(cloud, tmp_path / "out", since=datetime(2024, 1, 1, tzinfo=UTC))


def test_other_filters_on_a_continued_export_are_refused(tmp_path, cloud):
    run(cloud, tmp_path / "out", devices=("SVSim",))
    with pytest.raises(StoreError, match="holds jobs selected by --device SVSim; this run selects all jobs"):
        run(cloud, tmp_path / "out")


def test_many_small_runs_are_compacted_without_changing_results(tmp_path, cloud):
    out = tmp_path / "out"
    compactions = 0
    for _ in range(6):
        cloud.add_jobs(8)
        compactions += run(cloud, out, compact_after_files=12).compacted
    assert compactions >= 1
    from oqtopus_data.dataset.dataset import excess_file_count

    assert excess_file_count(Dataset(out).latest()) < 12
    assert_matches_ground_truth(out, cloud)
