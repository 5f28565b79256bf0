"""The local OQTOPUS Cloud's "spec" mode keeps the older behaviours, as the specification words them."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime

import pytest
from fakecloud_client import TOKEN, api, first, listed_ids, listing, unzip

from oqtopus_data.testing import FakeCloud, Faults


@pytest.fixture(scope="module")
def cloud():
    with FakeCloud(300, seed=7, token=TOKEN, api="spec") as running:
        yield running


def submitted(cloud: FakeCloud) -> list[dict]:
    """Submitted jobs of the ground truth in the specification's order (submitted_at)."""
    return [cloud.history.job(j) for j in cloud.history.job_ids("submitted")
            if cloud.history.status(j) != "registered"]


def test_default_size_is_10_and_sizes_up_to_65535_are_accepted(cloud):
    assert len(listing(cloud)) == 10
    assert listed_ids(cloud, size=65535) == cloud.history.job_ids("submitted")


@pytest.mark.parametrize("params", [{"page": "0"}, {"size": "0"}, {"size": "65536"},
                                    {"size": "ten"}, {"order": "SIDEWAYS"},
                                    {"status": "exploded"}, {"start_time": "yesterday"},
                                    {"fields": "job_id,nope"}, {"fields": "a," * 600}])
def test_bad_list_parameters_are_400_json(cloud, params):
    response = api(cloud, "/jobs", **params)
    assert response.status_code == 400
    assert "message" in response.json()


def test_pages_walk_the_history_in_submission_order(cloud):
    ids = cloud.history.job_ids("submitted")
    assert [j for p in range(1, 4) for j in listed_ids(cloud, page=p, size=100)] == ids
    assert listed_ids(cloud, page=1, size=5, order="DESC") == ids[::-1][:5]
    stamps = [datetime.fromisoformat(j["submitted_at"]) for j in submitted(cloud)]
    assert stamps == sorted(stamps)


def test_a_page_past_the_end_repeats_the_last_page(cloud):
    last = listing(cloud, page=3, size=128)
    assert len(last) == 300 - 256
    assert listing(cloud, page=4, size=128) == listing(cloud, page=99, size=128)
    assert [j["job_id"] for j in listing(cloud, page=99, size=128)] == [j["job_id"] for j in last]


def test_time_window_is_inclusive_on_submitted_at_without_shift_and_skips_registered_jobs(cloud):
    jobs = submitted(cloud)
    lo, hi = jobs[10]["submitted_at"], jobs[20]["submitted_at"]
    got = listing(cloud, start_time=lo, end_time=hi, size=100)
    assert [j["job_id"] for j in got] == [j["job_id"] for j in jobs[10:21]]
    tail = listing(cloud, start_time=jobs[-40]["submitted_at"], size=100)
    assert [j["job_id"] for j in tail] == [j["job_id"] for j in jobs[-40:]]


def test_status_filter_and_q_search_including_ids(cloud):
    failed = listing(cloud, status="failed", size=1000)
    assert failed and {j["status"] for j in failed} == {"failed"}
    bells = listing(cloud, q="BELL-pair", size=1000)
    assert bells and {j["name"] for j in bells} == {"bell-pair"}
    job_id = cloud.history.job_ids()[42]
    assert [j["job_id"] for j in listing(cloud, q=job_id[24:])] == [job_id]
    described = listing(cloud, q="drift check", size=1000)
    assert described and all(j["description"] == "nightly drift check" for j in described)
    registered = listing(cloud, status="registered", size=1000)
    assert registered and all(j == {"job_id": j["job_id"], "status": "registered"}
                              for j in registered)


def test_sselog_endpoint_zips_the_log_files_and_is_400_for_other_jobs(cloud):
    job_id = first(cloud, job_type="sse")
    body = api(cloud, f"/jobs/{job_id}/sselog").json()
    assert body["file_name"].endswith(".zip")
    files = {k: v.decode() for k, v in unzip(base64.b64decode(body["file"])).items()}
    assert files == cloud.history.sselog_files(job_id)
    other = api(cloud, f"/jobs/{first(cloud, job_type='sampling')}/sselog")
    assert (other.status_code, other.json()) == (400, {"message": "job is not an SSE job"})


def test_churn_adds_after_all_others_and_deletes_terminal_jobs():
    faults = Faults(add_during_listing=3, delete_during_listing=2)
    with FakeCloud(60, seed=3, token=TOKEN, api="spec", faults=faults) as small:
        before = small.history.job_ids("submitted")
        assert listed_ids(small, size=5) == before[:5]
        after = listed_ids(small, size=100)
        assert set(after[-3:]) == set(small.added_ids) and len(small.deleted_ids) == 2
        assert after[:-3] == [j for j in before if j not in small.deleted_ids]


def test_legacy_form_works_in_spec_mode_too():
    with FakeCloud(200, seed=4, token=TOKEN, api="spec", legacy=True) as legacy:
        jobs = listing(legacy, size=200)
        seen = Counter(q for j in jobs if j["status"] != "registered"
                       for q in legacy.history.legacy_quirks(j["job_id"]))
        assert set(seen) == {"counts_as_string", "exp_value_complex", "program_at_top"}
        assert all(not str(v).startswith("http") for j in jobs for v in j.get("job_info", {}).values())
        counts = next(j for j in jobs if "counts_as_string" in legacy.history.legacy_quirks(
            j["job_id"]))["job_info"]["result"]["sampling"]["counts"]
        assert isinstance(json.loads(counts), dict)


def test_unknown_api_mode_is_refused():
    with pytest.raises(ValueError, match="api must be one of"):
        FakeCloud(5, api="imaginary")
