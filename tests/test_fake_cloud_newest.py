"""The local OQTOPUS Cloud's "newest" mode: the newest generation of the server's paginated router, whose
start_time/end_time compare with submitted_at in UTC (a job never submitted is never in a window) and which has a
`status` filter; pages, order (created_at, job_id) and `[]` past the end as in the default mode."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from click.testing import CliRunner
from fakecloud_client import TOKEN, api, listed_ids, walk

from oqtopus_data.cli import main
from oqtopus_data.testing import EXP_VALUE_FORMS, FakeCloud, generate_history

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def cloud():
    history = generate_history(400, seed=21, two_step=0.4, max_submit_delay=timedelta(days=5))
    with FakeCloud(history=history, token=TOKEN, api="newest") as running:
        yield running


def submitted_at(cloud: FakeCloud, job_id: str) -> datetime | None:
    text = cloud.history.job(job_id).get("submitted_at")
    return None if text is None else datetime.fromisoformat(text)


def test_an_unbounded_listing_holds_every_job_in_creation_order_registered_ones_too(cloud):
    assert walk(cloud) == cloud.history.job_ids()
    assert any(cloud.history.status(j) == "registered" for j in cloud.history.job_ids())


def test_a_window_is_submitted_at_in_utc_inclusive_in_creation_order_without_registered_jobs(cloud):
    ids = cloud.history.job_ids()
    stamps = sorted({s for j in ids if (s := submitted_at(cloud, j)) is not None})
    low, high = stamps[50], stamps[250]
    window = walk(cloud, size=37, start_time=low.isoformat(), end_time=high.isoformat())
    expected = [j for j in ids if (s := submitted_at(cloud, j)) is not None and low <= s <= high]
    assert window == expected  # creation order, both bounds inclusive, no shift
    created = [cloud.history.created_at(j) for j in window]
    assert created == sorted(created)
    assert [submitted_at(cloud, j) for j in window] != sorted(submitted_at(cloud, j) for j in window)
    as_tokyo = walk(cloud, start_time=low.astimezone(TOKYO).isoformat(),
                    end_time=high.astimezone(TOKYO).isoformat())
    assert as_tokyo == window  # the same instants written in another zone


def test_a_job_registered_long_before_enters_the_window_of_its_submission(cloud):
    (job_id,) = cloud.add_jobs(1, registered=1.0)
    later = cloud.now() + timedelta(seconds=5)
    everything = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
    assert job_id not in walk(cloud, **everything) and job_id in walk(cloud)
    cloud.set_clock(later)
    try:
        cloud.submit(job_id)
        bound = later.replace(microsecond=0)
        assert listed_ids(cloud, start_time=bound.isoformat(), end_time=(bound + timedelta(seconds=1)).isoformat(),
                          size=100) == [job_id]
    finally:
        cloud.set_clock(None)


def test_the_status_filter_applies(cloud):
    failed = walk(cloud, status="failed")
    assert failed and failed == [j for j in cloud.history.job_ids() if cloud.history.status(j) == "failed"]
    assert api(cloud, "/jobs", size=101).status_code == 500


def test_estimation_results_write_exp_value_as_the_servers_schema_allows():
    """A number (older payloads), `[x]` or `[re, im]`: the default mix holds all three; a history can ask for fewer."""
    def forms(history) -> Counter:
        seen: Counter = Counter()
        for job in history.jobs():
            value = ((job.get("job_info") or {}).get("result") or {}).get("estimation", {}).get("exp_value")
            if value is not None:
                seen["number" if isinstance(value, float) else ("single", "pair")[len(value) - 1]] += 1
                assert isinstance(value, float) or all(isinstance(v, float) for v in value)
        return seen

    assert set(forms(generate_history(600, seed=3))) == set(EXP_VALUE_FORMS) == {"number", "single", "pair"}
    assert set(forms(generate_history(600, seed=3, exp_value_forms=("number", "pair")))) == {"number", "pair"}
    with pytest.raises(ValueError, match="exp_value_forms"):
        generate_history(5, exp_value_forms=("triple",))


def test_the_fake_cloud_command_serves_the_newest_generation_with_newest_api():
    server = subprocess.Popen([sys.executable, "-c", "from oqtopus_data.cli import main; main()", "fake-cloud",
                               "--jobs", "60", "--port", "0", "--newest-api"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("OQTOPUS_URL=")
        token = server.stdout.readline().strip().removeprefix("OQTOPUS_API_TOKEN=")
        reply = requests.get(f"{url}/jobs", params={"status": "failed"}, headers={"q-api-token": token}, timeout=10)
        assert reply.status_code == 200 and reply.json()
        assert {job["status"] for job in reply.json()} == {"failed"}  # the default server has no status filter
    finally:
        server.terminate()
        server.wait(timeout=10)
    refused = CliRunner().invoke(main, ["fake-cloud", "--spec-api", "--newest-api"])
    assert refused.exit_code == 2 and "choose one of --spec-api and --newest-api" in refused.output


def test_an_unknown_status_is_422_and_q_searches_ids_too(cloud):
    assert api(cloud, "/jobs", status="exploded").status_code == 422
    job_id = cloud.history.job_ids()[7]
    assert listed_ids(cloud, q=job_id[-12:]) == [job_id]
