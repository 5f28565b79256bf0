"""Exports against the local OQTOPUS Cloud behaving like the server's own code (its default mode).

GET /jobs filters and orders on the job's creation time (whole seconds, bounds shifted to Asia/Tokyo), pages of at
most 100, `[]` past the end, SSE logs as presigned archives: every job exported exactly once, or exit 1 naming the
window; incremental runs keep the guarantee.
"""

from __future__ import annotations

import io
import random
import zipfile
from datetime import timedelta

from groundtruth import assert_matches_ground_truth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.enums import TERMINAL
from oqtopus_data.fetch.listing import Limits
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud, generate_history

FAST = {"max_tries": 3, "backoff": 0.001, "max_backoff": 0.01}


def run(cloud: FakeCloud, out, notes: list[str] | None = None, **options):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8, **FAST) as api:
        return export(api, out, ExportOptions(**options), notice=(notes.append if notes is not None else None))


def assert_every_finished_sse_log_saved(out, cloud: FakeCloud) -> None:
    """Each SSE job the server holds a log for has it in the index, saved whole, once."""
    expected = {}
    for job_id in cloud.history.job_ids():
        job = cloud.history.job(job_id)
        if job.get("job_type") == "sse" and "sse_log" in (job.get("job_info") or {}):
            expected[job_id] = job["job_info"]["sse_log"]
    rows = connect(out).execute("SELECT job_id, path FROM sse_logs").fetchall()
    assert len(rows) == len({r[0] for r in rows}), "a job's log is indexed twice"
    assert {r[0] for r in rows} == set(expected)
    for job_id, path in rows:
        with zipfile.ZipFile(io.BytesIO((out / path).read_bytes())) as archive:
            assert archive.read("sse_log.log").decode() == expected[job_id]


def test_a_history_with_bursts_and_creation_gaps_exports_every_job_once_and_continues(tmp_path):
    history = generate_history(2000, seed=5, bursts=(300, 300), two_step=0.15, max_submit_delay=timedelta(days=1))
    out = tmp_path / "out"
    with FakeCloud(history=history) as cloud:
        cloud.set_clock(cloud.now())  # no two-step submission falls due while a run is under way (a loaded machine)
        first = run(cloud, out, sse_logs=True)  # default options otherwise: page size, lookback, workers
        assert first.ok and first.complete, first.errors
        assert_matches_ground_truth(out, cloud)
        assert_every_finished_sse_log_saved(out, cloud)

        rng = random.Random(7)
        registered = [j for j in cloud.history.job_ids() if cloud.history.status(j) == "registered"]
        cloud.add_jobs(300, registered=0.1, two_step=0.1)  # a burst created now, in one second
        for job_id in registered:
            cloud.submit(job_id)  # created long before the last run, submitted after it
        for job_id in cloud.history.job_ids():
            if cloud.history.status(job_id) in ("submitted", "ready", "running") and rng.random() < 0.5:
                cloud.finish(job_id)
        second = run(cloud, out, sse_logs=True)
        assert second.ok and second.incremental, second.errors
        assert_matches_ground_truth(out, cloud)
        assert_every_finished_sse_log_saved(out, cloud)

        cloud.requests.reset()
        third = run(cloud, out, sse_logs=True)
        pending = [j for j in cloud.history.job_ids() if cloud.history.status(j) not in TERMINAL]
        counts = cloud.requests.snapshot()
        assert third.exported == 0 and counts["storage"] == 0
        assert counts["total"] <= 12 + len(pending)  # a few requests plus one per job still pending


def test_a_job_registered_before_a_run_and_listed_only_once_submitted_is_exported_by_the_next(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=200, seed=8) as cloud:
        (hidden,) = cloud.add_jobs(1, registered=1.0)  # created now...
        cloud.faults.unrenderable = {hidden}  # ...and left out of the listing while registered
        assert run(cloud, out).ok
        cloud.submit(hidden)
        cloud.finish(hidden)
        cloud.faults.unrenderable = set()
        assert run(cloud, out).ok  # the lookback lists what was created before the last run
        assert_matches_ground_truth(out, cloud)
        rows = connect(out).execute("SELECT count(*) FROM jobs WHERE job_id = ?", [hidden]).fetchone()
        assert rows == (1,)


def test_jobs_the_server_cannot_render_are_named_in_a_note_and_the_rest_exported(tmp_path):
    out = tmp_path / "out"
    history = generate_history(400, seed=9, bursts=(250,))
    with FakeCloud(history=history) as cloud:
        burst = [j for j in cloud.history.job_ids() if cloud.history.created_at(j) ==
                 max(cloud.history.created_at(k) for k in cloud.history.job_ids()[:1])]
        hidden = set(cloud.history.job_ids()[100:103])
        cloud.faults.unrenderable = hidden
        notes: list[str] = []
        report = run(cloud, out, notes)
        assert report.ok and burst
        assert_matches_ground_truth(out, cloud, exclude=hidden)
        assert any("left out" in note and "could not render" in note for note in notes), notes


def test_a_window_that_never_settles_fails_the_run_by_name_and_keeps_what_it_got(tmp_path):
    out = tmp_path / "out"
    history = generate_history(300, seed=10, bursts=(280,))
    with FakeCloud(history=history) as cloud:
        victims = [j for j in cloud.history.job_ids() if cloud.history.status(j) in TERMINAL]

        def delete_one(c: FakeCloud, query: dict) -> None:
            if query.get("page") == "2" and victims:
                c.delete(victims.pop(0))

        cloud.faults.on_list = delete_one
        report = run(cloud, out, listing_limits=Limits(max_walks=3))
        assert not report.ok and not report.complete
        failures = [m for job_id, stage, m in report.errors if stage == "list"]
        assert failures and all("jobs created in [" in m and "kept disappearing" in m for m in failures)
        errors = connect(out).execute("SELECT message FROM errors WHERE stage = 'list'").fetchall()
        assert errors and "jobs created in [" in errors[0][0]
        cloud.faults.on_list = None
        assert run(cloud, out).ok  # the next run lists that window again
        assert_matches_ground_truth(out, cloud, may_also_hold=cloud.deleted_ids)  # exported before deletion


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(
    base=st.integers(20, 150),
    bursts=st.lists(st.integers(50, 180), max_size=2),
    two_step=st.sampled_from([0.0, 0.3]),
    page_size=st.sampled_from([7, 100, 500]),
    deletions=st.integers(0, 6),
    insertions=st.integers(0, 30),
    seed=st.integers(0, 1000),
)
def test_property_every_job_exported_once_or_the_window_named(tmp_path_factory, base, bursts, two_step, page_size,
                                                               deletions, insertions, seed):
    out = tmp_path_factory.mktemp("export")
    history = generate_history(base + sum(bursts), seed=seed, bursts=tuple(bursts), two_step=two_step, days=20)
    with FakeCloud(history=history) as cloud:
        rng = random.Random(seed)
        victims = [j for j in cloud.history.job_ids() if cloud.history.status(j) in TERMINAL]
        rng.shuffle(victims)
        victims = victims[:deletions]

        def churn(c: FakeCloud, query: dict) -> None:
            roll = rng.random()
            if roll < 0.15 and victims:
                c.delete(victims.pop())
            elif roll < 0.3 and insertions:
                c.add_jobs(rng.randint(1, 5))

        cloud.faults.on_list = churn
        report = run(cloud, out, page_size=page_size)
        cloud.faults.on_list = None
        ids = [r[0] for r in connect(out).execute("SELECT job_id FROM jobs").fetchall()]
        assert len(ids) == len(set(ids)), "a job exported twice"
        if report.complete:
            missing = {j for j in cloud.history.job_ids() if cloud.history.status(j) != "registered"} - set(ids)
            created_late = {j for j in missing if j in cloud.added_ids}
            assert missing <= created_late  # only jobs created during the run may wait for the next one
        else:
            assert any(stage == "list" and "jobs created in [" in m for _, stage, m in report.errors)
        assert run(cloud, out).ok  # a quiet next run brings everything, once
        assert_matches_ground_truth(out, cloud, may_also_hold=cloud.deleted_ids)  # exported before deletion


def test_a_failed_sse_log_never_duplicates_its_jobs_rows_and_is_fetched_again(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=300, seed=11) as cloud:
        sse = [j for j in cloud.history.job_ids() if cloud.history.job(j).get("job_type") == "sse"
               and "sse_log" in cloud.history.job(j).get("job_info", {})]
        broken = sse[0]
        cloud.faults.sse_log_errors = {broken}  # its log answers 500; its other archives are fine
        sums = []
        for _ in range(3):
            report = run(cloud, out, sse_logs=True)
            assert [stage for job_id, stage, _m in report.errors if job_id == broken] == ["sse_log"]
            con = connect(out)
            assert con.execute("SELECT count(*) FROM jobs WHERE job_id = ?", [broken]).fetchone() == (1,)
            sums.append(con.execute("SELECT sum(count) FROM counts").fetchone()[0])
            assert con.execute("SELECT count(*) = count(DISTINCT job_id) FROM jobs").fetchone() == (True,)
        assert sums[0] == sums[1] == sums[2]
        cloud.faults.sse_log_errors = set()
        assert run(cloud, out, sse_logs=True).ok  # the log alone is fetched again
        assert_matches_ground_truth(out, cloud)
        assert_every_finished_sse_log_saved(out, cloud)


def test_a_long_run_commits_checkpoints_by_time_as_well(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=400, seed=12) as cloud:
        report = run(cloud, out, checkpoint_seconds=0.0, batch_jobs=50)
        assert report.ok
        from oqtopus_data.dataset.dataset import Dataset

        assert report.version is not None and report.version >= 4  # a checkpoint after each batch, then the end
        assert Dataset(out).manifest_versions()[-1] == report.version
        assert_matches_ground_truth(out, cloud)
