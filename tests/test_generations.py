"""Exports against both generations of the server's listing, each run leaving every job in the dataset once.

The default local cloud filters GET /jobs on the hidden creation time, its bounds shifted to Asia/Tokyo (oqtopus-cloud
at 021f6d91); the newest generation filters on submitted_at in UTC and never lists a job that is not submitted. Both
order pages by creation. The histories hold jobs registered days (and, in the later runs, years) before they were
submitted.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from groundtruth import assert_matches_ground_truth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.enums import TERMINAL
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud, generate_history
from oqtopus_data.times import parse_time

FAST = {"max_tries": 3, "backoff": 0.001, "max_backoff": 0.01}
GENERATIONS = ["server", "newest"]


def run(cloud: FakeCloud, out, **options):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8, **FAST) as api:
        return export(api, out, ExportOptions(devices_snapshot=False, **options))


def job_counts(out) -> dict[str, int]:
    rows = connect(out).execute("SELECT job_id, count(*) FROM jobs GROUP BY job_id").fetchall()
    return dict(rows)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_job_once_on_both_generations_with_jobs_registered_long_before_submission(tmp_path, generation):
    history = generate_history(1500, seed=31, bursts=(250,), two_step=0.3, max_submit_delay=timedelta(days=3),
                               days=60)
    out = tmp_path / "out"
    rng = random.Random(3)
    with FakeCloud(history=history, api=generation) as cloud:
        first = run(cloud, out, page_size=50, max_submit_delay=timedelta(days=3))
        assert first.ok and first.complete, first.errors
        assert_matches_ground_truth(out, cloud)

        # Jobs created in 2024 and submitted now; jobs registered now and submitted before the next run; new jobs.
        registered = [j for j in cloud.history.job_ids() if cloud.history.status(j) == "registered"]
        assert registered
        for job_id in registered:
            cloud.submit(job_id)
        waiting = cloud.add_jobs(40, registered=1.0)
        cloud.add_jobs(120)
        for job_id in waiting[:25]:
            cloud.submit(job_id)
        for job_id in cloud.history.job_ids():
            if cloud.history.status(job_id) in ("submitted", "ready", "running") and rng.random() < 0.6:
                cloud.finish(job_id, rng.choice(["succeeded", "failed", "cancelled"]))
        second = run(cloud, out, page_size=50, max_submit_delay=timedelta(days=3))
        assert second.ok and second.complete and second.incremental, second.errors
        assert_matches_ground_truth(out, cloud)

        for job_id in waiting[25:]:  # registered before the last run, submitted after it
            cloud.submit(job_id)
            cloud.finish(job_id)
        third = run(cloud, out, page_size=50, max_submit_delay=timedelta(days=3))
        assert third.ok and third.complete, third.errors
        assert_matches_ground_truth(out, cloud)
        assert set(job_counts(out).values()) == {1}
        assert all(cloud.history.status(j) in TERMINAL for j in waiting[25:])


@pytest.mark.parametrize("generation", GENERATIONS)
def test_since_selects_the_same_jobs_on_both_generations(tmp_path, generation):
    history = generate_history(800, seed=32, two_step=0.3, max_submit_delay=timedelta(days=2), days=40)
    with FakeCloud(history=history, api=generation) as cloud:
        jobs = [cloud.history.job(j) for j in cloud.history.job_ids()]
        stamps = sorted(j["submitted_at"] for j in jobs if "submitted_at" in j)
        since = stamps[len(stamps) // 2]
        report = run(cloud, tmp_path / "out", since=parse_time(since), max_submit_delay=timedelta(days=2))
        assert report.ok and report.complete, report.errors
        want = {j["job_id"] for j in jobs if j.get("submitted_at") and parse_time(j["submitted_at"]) >=
                parse_time(since)}
        counts = job_counts(tmp_path / "out")
        assert set(counts) == want and set(counts.values()) == {1}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(generation=st.sampled_from(GENERATIONS), base=st.integers(30, 200), burst=st.integers(0, 160),
       page_size=st.sampled_from([7, 100]), seed=st.integers(0, 1000))
def test_property_jobs_submitted_added_and_deleted_while_listing_are_exported_once(
        tmp_path_factory, generation, base, burst, page_size, seed):
    out = tmp_path_factory.mktemp("export")
    history = generate_history(base + burst, seed=seed, bursts=(burst,) if burst else (), two_step=0.4, days=20)
    with FakeCloud(history=history, api=generation) as cloud:
        rng = random.Random(seed)
        registered = [j for j in cloud.history.job_ids() if cloud.history.status(j) == "registered"]
        victims = [j for j in cloud.history.job_ids() if cloud.history.status(j) in TERMINAL]
        rng.shuffle(victims)

        def churn(c: FakeCloud, query: dict) -> None:
            roll = rng.random()
            if roll < 0.1 and victims:
                c.delete(victims.pop())
            elif roll < 0.3 and registered:
                c.submit(registered.pop())  # created long ago, submitted while the listing runs
            elif roll < 0.4:
                c.add_jobs(rng.randint(1, 4), registered=0.3)

        cloud.faults.on_list = churn
        run(cloud, out, page_size=page_size)
        assert set(job_counts(out).values()) <= {1}, "a job exported twice"
        cloud.faults.on_list = None
        assert run(cloud, out).ok  # a quiet next run brings everything, once
        assert_matches_ground_truth(out, cloud, may_also_hold=cloud.deleted_ids)
