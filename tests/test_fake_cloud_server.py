"""The local OQTOPUS Cloud's default mode behaves like the server's code (oqtopus-cloud's paginated router)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from fakecloud_client import TOKEN, api, first, listed_ids, listing, resolve, unzip, walk

from oqtopus_data.testing import DEFAULT_ACCOUNT, SERVER_API, FakeCloud, Faults, generate_history

NINE_HOURS = timedelta(hours=9)
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def cloud():
    with FakeCloud(300, seed=7, token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def bursty():
    """1,000 jobs, two batches of them (300 and 150) created within one second each."""
    with FakeCloud(token=TOKEN, history=generate_history(1000, seed=5, bursts=[300, 150])) as running:
        yield running


@pytest.fixture
def small():
    with FakeCloud(60, seed=3, token=TOKEN) as running:
        running.set_clock(datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC))
        yield running


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def created_in(cloud: FakeCloud, second: datetime) -> list[str]:
    return [j for j in cloud.history.job_ids() if cloud.history.created_at(j) == second]


# ---- pages -------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{"size": "101"}, {"size": "0"}, {"size": "ten"}, {"size": ""},
                                    {"page": "0"}, {"page": "x"}, {"size": "65535"}])
def test_a_size_or_page_fastapi_pagination_refuses_is_a_bare_500(cloud, params):
    response = api(cloud, "/jobs", **params)
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_default_page_size_is_100_and_100_is_accepted(cloud):
    assert listed_ids(cloud) == cloud.history.job_ids()[:100]
    assert listed_ids(cloud, size=100, page=3) == cloud.history.job_ids()[200:300]


def test_a_page_past_the_end_is_empty(cloud):
    assert listed_ids(cloud, page=5, size=64) == cloud.history.job_ids()[256:]
    assert listing(cloud, page=6, size=64) == listing(cloud, page=99, size=64) == []
    assert len(listing(cloud, page=5, size=60)) == 60 and listing(cloud, page=6, size=60) == []


def test_pages_walk_every_job_in_created_order_and_desc_reverses_it(cloud):
    ids = cloud.history.job_ids()
    assert walk(cloud, size=100) == ids
    assert walk(cloud, size=7, order="DESC") == ids[::-1]
    keys = [(cloud.history.created_at(j), j) for j in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_an_unknown_order_falls_back_to_ascending(cloud):
    assert listed_ids(cloud, order="SIDEWAYS", size=10) == cloud.history.job_ids()[:10]


def test_registered_jobs_are_listed_where_they_were_created(cloud):
    registered = [j for j in cloud.history.job_ids() if cloud.history.status(j) == "registered"]
    assert registered
    listed = {j["job_id"]: j for j in [j for p in (1, 2, 3) for j in listing(cloud, page=p)]}
    assert all(listed[j] == {"job_id": j, "status": "registered"} for j in registered)


def test_unknown_fields_are_400_and_status_is_ignored(cloud):
    response = api(cloud, "/jobs", fields="job_id,nope")
    assert response.status_code == 400 and "nope" in response.json()["message"]
    assert listed_ids(cloud, status="failed", size=20) == cloud.history.job_ids()[:20]
    assert listed_ids(cloud, status="exploded", size=5) == cloud.history.job_ids()[:5]


def test_q_searches_names_and_descriptions_but_not_ids(cloud):
    bells = listing(cloud, q="BELL-pair")
    assert bells and {j["name"] for j in bells} == {"bell-pair"}
    assert [j["job_id"] for j in bells] == [j for j in cloud.history.job_ids()
                                           if cloud.history.job(j).get("name") == "bell-pair"]
    described = listing(cloud, q="drift check")
    assert described and all(j["description"] == "nightly drift check" for j in described)
    assert listing(cloud, q=cloud.history.job_ids()[42][24:]) == []


# ---- time window on the hidden creation time ---------------------------------------------------
def test_window_filters_on_created_at_with_the_bounds_shifted_nine_hours(cloud):
    job_id = cloud.history.job_ids()[150]
    created = cloud.history.created_at(job_id)
    same_second = created_in(cloud, created)
    assert job_id in same_second
    shifted = created - NINE_HOURS  # the server compares the bound's Tokyo wall-clock time
    assert listed_ids(cloud, start_time=iso(shifted), end_time=iso(shifted)) == same_second
    assert job_id not in listed_ids(cloud, start_time=iso(created), end_time=iso(created))
    assert job_id in listed_ids(cloud, start_time=iso(shifted - timedelta(milliseconds=500)),
                                end_time=iso(shifted + timedelta(milliseconds=500)))
    # whole seconds: a bound half a second after the creation second leaves the job out
    assert job_id not in listed_ids(cloud, start_time=iso(shifted + timedelta(milliseconds=500)))
    assert job_id not in listed_ids(cloud, end_time=iso(shifted - timedelta(milliseconds=500)))


def test_window_is_inclusive_and_takes_naive_or_offset_bounds_as_the_same_instant(cloud):
    ids = cloud.history.job_ids()
    lo, hi = cloud.history.created_at(ids[10]), cloud.history.created_at(ids[20])
    expected = [j for j in ids if lo <= cloud.history.created_at(j) <= hi]
    start, end = lo - NINE_HOURS, hi - NINE_HOURS
    assert listed_ids(cloud, start_time=iso(start), end_time=iso(end)) == expected
    naive = {"start_time": start.strftime("%Y-%m-%dT%H:%M:%S"),
             "end_time": end.strftime("%Y-%m-%dT%H:%M:%S")}
    assert listed_ids(cloud, **naive) == expected
    tokyo = {"start_time": start.astimezone(timezone(NINE_HOURS)).isoformat(),
             "end_time": end.astimezone(timezone(timedelta(hours=-5))).isoformat()}
    assert tokyo["start_time"].endswith("+09:00")
    assert listed_ids(cloud, **tokyo) == expected


def test_the_time_zone_shift_is_a_switch():
    api_no_shift = dataclasses.replace(SERVER_API, tz_shift=timedelta(0))
    with FakeCloud(80, seed=2, token=TOKEN, api=api_no_shift) as unshifted:
        job_id = unshifted.history.job_ids()[40]
        created = unshifted.history.created_at(job_id)
        assert listed_ids(unshifted, start_time=iso(created), end_time=iso(created)) == \
            created_in(unshifted, created)


def test_an_unparseable_time_bound_is_a_500_with_a_message(cloud):
    response = api(cloud, "/jobs", start_time="yesterday")
    assert response.status_code == 500 and "yesterday" in response.json()["message"]


# ---- bursts -------------------------------------------------------------------------------------
def test_a_burst_shares_one_created_second_ordered_by_job_id_across_pages(bursty):
    history = bursty.history
    seconds = {}
    for job_id in history.job_ids():
        seconds.setdefault(history.created_at(job_id), []).append(job_id)
    bursts = sorted((ids for ids in seconds.values() if len(ids) >= 150), key=len)
    assert [len(ids) for ids in bursts] == [150, 300]
    second = history.created_at(bursts[1][0]) - NINE_HOURS
    window = walk(bursty, size=100, start_time=iso(second), end_time=iso(second))
    assert window == bursts[1] == sorted(bursts[1])
    assert walk(bursty, size=100) == history.job_ids()


def test_burst_sizes_must_fit_the_history():
    with pytest.raises(ValueError, match="bursts"):
        generate_history(100, bursts=[80, 30])


# ---- jobs the server cannot render --------------------------------------------------------------
def test_unrenderable_jobs_are_left_out_of_pages_that_still_count_them(small):
    ids = small.history.job_ids()
    small.faults.unrenderable = {ids[3], ids[7], ids[12]}
    assert listed_ids(small, size=10) == [j for j in ids[:10] if j not in (ids[3], ids[7])]
    assert listed_ids(small, size=10, page=2) == [j for j in ids[10:20] if j != ids[12]]
    response = api(small, f"/jobs/{ids[3]}")
    assert response.status_code == 404
    assert response.json() == {"message": "job not found with the given id"}
    assert api(small, f"/jobs/{ids[4]}").status_code == 200


# ---- SSE logs -----------------------------------------------------------------------------------
def test_sse_log_is_a_presigned_archive_of_the_log_files():
    with FakeCloud(400, seed=9, token=TOKEN) as running:
        history, seen = running.history, set()
        for job in history.jobs():
            if job.get("job_type") != "sse" or "sse_log" not in job["job_info"]:
                continue
            url = api(running, f"/jobs/{job['job_id']}").json()["job_info"]["sse_log"]
            assert "X-Amz-Signature=" in url and "/sse_log.zip?" in url
            files = {k: v.decode() for k, v in unzip(requests.get(url, timeout=10).content).items()}
            assert files == history.sselog_files(job["job_id"])
            assert files["sse_log.log"] == job["job_info"]["sse_log"]
            seen.add(len(files))
        assert seen == {1, 2}  # sometimes user_program.log too


def test_sse_jobs_that_never_ran_have_no_sse_log():
    history = generate_history(1500, seed=4)
    sse = [j for j in history.jobs() if j.get("job_type") == "sse"]
    for job in sse:
        ran = job["status"] == "succeeded" or (job["status"] == "failed" and "running_at" in job)
        assert ("sse_log" in job.get("job_info", {})) == ran, job["job_id"]
    assert any(j["status"] in ("cancelled", "failed") and "running_at" not in j for j in sse)


def test_the_sselog_endpoint_is_404_on_the_server(cloud):
    job_id = first(cloud, job_type="sse")
    response = api(cloud, f"/jobs/{job_id}/sselog")
    assert response.status_code == 404 and "message" in response.json()


def test_one_sse_log_download_can_fail_while_the_other_archives_work(small):
    job_id = first(small, job_type="sse")
    small.faults.sse_log_errors = {job_id}
    info = api(small, f"/jobs/{job_id}").json()["job_info"]
    assert requests.get(info["sse_log"], timeout=10).status_code == 500
    assert requests.get(info["input"], timeout=10).status_code == 200


# ---- GET /users/me ------------------------------------------------------------------------------
def test_users_me_answers_the_account(cloud):
    me = api(cloud, "/users/me")
    assert me.status_code == 200 and me.json() == dict(DEFAULT_ACCOUNT)
    assert set(me.json()) == {"id", "email", "name", "organization", "created_at"}


def test_users_me_is_a_chosen_account_or_404_where_the_server_has_none():
    account = {"id": "u-1", "email": "a@b.c", "name": "A", "organization": "Lab",
               "created_at": "2024-05-01T00:00:00Z"}
    with FakeCloud(5, token=TOKEN, account=account) as mine:
        assert api(mine, "/users/me").json() == account
    with FakeCloud(5, token=TOKEN, account=None) as none:
        assert api(none, "/users/me").status_code == 404
        assert api(none, "/users/me", token="bad").status_code == 401


# ---- undeclared keys ----------------------------------------------------------------------------
def test_undeclared_keys_are_served_at_every_level_and_are_in_the_ground_truth():
    with FakeCloud(120, seed=6, token=TOKEN, undeclared=True) as running:
        history, levels = running.history, set()
        for job_id in history.job_ids()[:60]:
            more = history.undeclared(job_id)
            served = api(running, f"/jobs/{job_id}").json()
            truth = history.job(job_id)
            if truth["status"] == "registered":
                assert served == truth and more == {}
                continue
            assert resolve(served) == truth
            levels.update(more)
            for key, value in more.get("job", {}).items():
                assert served[key] == truth[key] == value
            for key, value in more.get("job_info", {}).items():
                assert truth["job_info"][key] == value
                if key == "execution_log":
                    assert served["job_info"][key].startswith(running.url)
                    assert "X-Amz-Signature=" in served["job_info"][key]
            for level in ("input", "result", "transpile_result"):
                for key, value in more.get(level, {}).items():
                    assert truth["job_info"][level][key] == value
        assert levels == {"job", "job_info", "input", "result", "transpile_result"}


def test_undeclared_keys_are_deterministic_and_off_by_default():
    one, two = generate_history(50, seed=3, undeclared=True), generate_history(50, seed=3,
                                                                              undeclared=True)
    assert [one.undeclared(j) for j in one.job_ids()] == [two.undeclared(j) for j in two.job_ids()]
    assert any(one.undeclared(j) for j in one.job_ids())
    plain = generate_history(50, seed=3)
    assert not any(plain.undeclared(j) for j in plain.job_ids())


# ---- the history changes at the server's now ----------------------------------------------------
def test_add_jobs_creates_them_at_the_server_clock_in_one_second(small):
    now = small.now()
    added = small.add_jobs(30)
    second = now.replace(microsecond=0)
    assert {small.history.created_at(j) for j in added} == {second}
    assert small.history.job_ids()[-30:] == sorted(added)
    submitted = {datetime.fromisoformat(small.history.job(j)["submitted_at"]) for j in added}
    assert second <= min(submitted) and max(submitted) <= now and len(submitted) > 20
    window = walk(small, size=7, start_time=iso(second - NINE_HOURS))
    assert window == sorted(added)


def test_add_jobs_can_leave_jobs_registered_and_submit_makes_them_submitted(small):
    added = small.add_jobs(4, registered=1.0)
    assert {small.history.status(j) for j in added} == {"registered"}
    before = walk(small)
    small.advance_clock(7200)
    small.submit(added[1])
    job = api(small, f"/jobs/{added[1]}").json()
    assert job["status"] == "submitted"
    assert datetime.fromisoformat(job["submitted_at"]) == small.now()
    assert walk(small) == before  # listed where it was created, not where it was submitted
    with pytest.raises(ValueError, match="not registered"):
        small.submit(added[1])


def test_two_step_jobs_submit_themselves_once_the_clock_passes_their_gap(small):
    added = small.add_jobs(20, two_step=1.0, max_gap=timedelta(minutes=10))
    assert {small.history.status(j) for j in added} == {"registered"}
    small.advance_clock(601)
    assert {api(small, f"/jobs/{j}/status").json()["status"] for j in added} == {"submitted"}
    for job_id in added:
        gap = (datetime.fromisoformat(small.history.job(job_id)["submitted_at"])
               - small.history.created_at(job_id))
        assert timedelta(seconds=5) <= gap <= timedelta(seconds=601)


def test_delete_oldest_deletes_only_terminal_jobs(small):
    before = small.history.job_ids()
    terminal = [j for j in before if small.history.status(j) in TERMINAL]
    assert small.delete_oldest(3) == terminal[:3] == small.deleted_ids
    assert walk(small) == [j for j in before if j not in terminal[:3]]


# ---- changes during a walk ----------------------------------------------------------------------
def test_on_list_runs_before_each_listing_with_its_query(small):
    seen = []

    def hook(cloud: FakeCloud, query: dict[str, str]) -> None:
        seen.append(query)
        if len(seen) == 2:
            cloud.add_jobs(2)
        if len(seen) == 3:
            cloud.delete_oldest(1)

    small.faults.on_list = hook
    first_page = listed_ids(small, size=5)
    second = listed_ids(small, size=100)
    assert second[-2:] == sorted(small.added_ids) and second[:5] == first_page
    third = listed_ids(small, size=100)
    assert third == [j for j in second if j not in small.deleted_ids]
    assert seen == [{"size": "5"}, {"size": "100"}, {"size": "100"}]


def test_a_failing_on_list_hook_answers_500_and_is_recorded(small):
    def hook(cloud: FakeCloud, query: dict[str, str]) -> None:
        raise AssertionError("boom")

    small.faults = Faults(on_list=hook)
    assert api(small, "/jobs").status_code == 500
    assert [type(e) for e in small.hook_errors] == [AssertionError]
