"""The local OQTOPUS Cloud behaves like the user API, quirks and faults included."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from fakecloud_client import TOKEN, api, first, listing, resolve, unzip, walk

from oqtopus_data.testing import MALFORMED_KINDS, FakeCloud, Faults, generate_history
from oqtopus_data.testing import server as server_module
from oqtopus_data.testing.catalog import JOB_FIELDS
from oqtopus_data.testing.faults import BAD_BITSTRING, BOMB_BYTES, OVERSIZED_BYTES

SAMPLING_LIKE = ("sampling", "multi_manual", "sse")


@pytest.fixture(scope="module")
def cloud():
    with FakeCloud(300, seed=7, token=TOKEN) as running:
        yield running


@pytest.fixture
def small():
    """A fresh 60-job cloud for tests that flip faults or change the history."""
    with FakeCloud(60, seed=3, token=TOKEN) as running:
        yield running


def unsigned(job: dict) -> dict:
    """The job with each presigned URL of its job_info cut at the query string (the signature depends on the time)."""
    info = job.get("job_info")
    if not isinstance(info, dict):
        return job
    return {**job, "job_info": {k: v.partition("?")[0] if isinstance(v, str) and v.startswith("http") else v
                                for k, v in info.items()}}


def sampling_counts(job: dict) -> list[tuple[dict, int]]:
    sampling = job["job_info"]["result"]["sampling"]
    pairs = [(sampling["counts"], job["shots"])]
    pairs += [(c, job["shots"]) for c in sampling.get("divided_counts", {}).values()]
    return pairs


# ---- synthetic history --------------------------------------------------------------------------
def test_same_seed_gives_the_same_history_and_another_seed_does_not():
    one, two = generate_history(120, seed=5), generate_history(120, seed=5)
    assert one.job_ids() == two.job_ids()
    assert [one.job(j) for j in one.job_ids()] == [two.job(j) for j in two.job_ids()]
    assert set(generate_history(120, seed=6).job_ids()).isdisjoint(one.job_ids())


def test_history_is_identical_in_another_process_with_another_hash_seed():
    code = ("from oqtopus_data.testing import generate_history as g, json; h = g(80, seed=5); "
            "print(json.dumps([h.job(j) for j in h.job_ids()]))")
    code = code.replace(", json;", "; import json;")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"}).stdout
    here = generate_history(80, seed=5)
    assert json.loads(out) == [here.job(j) for j in here.job_ids()]


def test_history_mixes_job_types_statuses_and_devices(cloud):
    jobs = list(cloud.history.jobs())
    types = Counter(j.get("job_type") for j in jobs if j["status"] != "registered")
    assert types.most_common(1)[0][0] == "sampling"
    assert set(types) == {"sampling", "estimation", "multi_manual", "sse"}
    statuses = Counter(j["status"] for j in jobs)
    assert {"succeeded", "failed", "cancelled", "submitted", "ready", "running",
            "registered"} <= set(statuses)
    assert statuses["succeeded"] > len(jobs) / 2
    assert {j.get("device_id") for j in jobs} >= {"SVSim", "Kawasaki", "Urchin", "qulacs"}
    names = Counter(j.get("name") for j in jobs)
    assert names["bell-pair"] > 5
    assert any(n and n.startswith("vqe-h2-step-") for n in names)
    assert any("description" not in j for j in jobs if j["status"] != "registered")


def test_registered_jobs_carry_only_their_id_and_status(cloud):
    registered = [j for j in cloud.history.jobs() if j["status"] == "registered"]
    assert registered
    assert all(set(j) == {"job_id", "status"} for j in registered)


def test_failed_jobs_have_a_message_and_unfinished_jobs_no_result(cloud):
    for job in cloud.history.jobs():
        info = job.get("job_info", {})
        if job["status"] == "failed":
            assert isinstance(info["message"], str)
            assert "result" not in info
        if job["status"] in ("submitted", "ready", "running", "cancelling"):
            assert "result" not in info
            assert "ended_at" not in job
            assert "execution_time" not in job


def test_timestamps_follow_the_job_lifecycle_after_creation_in_whole_seconds(cloud):
    history, previous = cloud.history, None
    for job in history.jobs():
        created = history.created_at(job["job_id"])
        assert created.microsecond == 0 and created.tzinfo is not None
        assert previous is None or (previous[0], previous[1]) < (created, job["job_id"])
        previous = (created, job["job_id"])
        if job["status"] == "registered":
            continue
        stamps = [job[k] for k in ("submitted_at", "ready_at", "running_at", "ended_at")
                  if k in job]
        times = [datetime.fromisoformat(s) for s in stamps]
        assert all(s.endswith("Z") for s in stamps)
        assert times == sorted(times) and len(set(times)) == len(times)
        assert created <= times[0] <= created + timedelta(days=1)
        assert datetime(2024, 1, 1, tzinfo=UTC) <= created < datetime(2024, 10, 27, tzinfo=UTC)


def test_about_fifteen_percent_of_jobs_are_submitted_long_after_creation():
    history = generate_history(2000, seed=12)
    gaps = [datetime.fromisoformat(job["submitted_at"]) - history.created_at(job["job_id"])
            for job in history.jobs() if job["status"] != "registered"]
    # one-step: <= 1 s, plus up to 1 s each from whole-second created_at and submitted_at
    one_step = [g for g in gaps if g < timedelta(seconds=3)]
    two_step = [g for g in gaps if g >= timedelta(seconds=5)]
    assert len(one_step) + len(two_step) == len(gaps)
    assert 0.11 < len(two_step) / len(gaps) < 0.19
    assert max(two_step) <= timedelta(days=1) and max(two_step) > timedelta(hours=1)
    assert min(two_step) < timedelta(minutes=1)


def test_max_submit_delay_and_two_step_share_are_history_parameters():
    history = generate_history(400, seed=2, two_step=1.0, max_submit_delay=timedelta(minutes=5))
    gaps = [datetime.fromisoformat(job["submitted_at"]) - history.created_at(job["job_id"])
            for job in history.jobs() if job["status"] != "registered"]
    assert all(timedelta(seconds=5) <= g <= timedelta(minutes=5, seconds=2) for g in gaps)


def test_counts_sum_to_shots_and_divided_counts_match_the_combined_counts(cloud):
    checked = 0
    for job in cloud.history.jobs():
        if job.get("job_type") not in SAMPLING_LIKE or "result" not in job.get("job_info", {}):
            continue
        for counts, shots in sampling_counts(job):
            assert sum(counts.values()) == shots
            assert all(isinstance(n, int) and n > 0 for n in counts.values())
            assert len({len(k) for k in counts}) == 1 and set("".join(counts)) <= {"0", "1"}
        checked += 1
    assert checked > 100


def test_bitstring_widths_are_mostly_small_with_some_wider_than_64_bits(cloud):
    widths = Counter()
    for job in cloud.history.jobs():
        if job.get("job_type") in SAMPLING_LIKE and "result" in job.get("job_info", {}):
            widths[len(next(iter(job["job_info"]["result"]["sampling"]["counts"])))] += 1
    assert sum(n for w, n in widths.items() if 2 <= w <= 20) > sum(widths.values()) * 0.7
    assert {64, 70, 100} <= set(widths)


def test_estimation_jobs_have_an_operator_and_a_float_expectation_value(cloud):
    job = cloud.history.job(first(cloud, job_type="estimation"))
    operator = job["job_info"]["input"]["operator"]
    assert operator and all(set(term) == {"pauli", "coeff"} for term in operator)
    estimation = job["job_info"]["result"]["estimation"]
    value = estimation["exp_value"]
    assert (isinstance(value, float) or (isinstance(value, list) and len(value) == 2)) and estimation["stds"] > 0
    assert job["job_info"]["input"]["program"][0].startswith("OPENQASM 3")


def test_two_hundred_thousand_jobs_are_generated_compactly_and_paged_from_the_index():
    history = generate_history(200_000, seed=1)
    assert len(history) == 200_000
    ids = history.job_ids()
    assert history.job(ids[-1])["job_id"] == ids[-1]
    assert history.job(ids[0])["job_info"]["result"]  # built on demand
    page, total = history.list_page(page=1500, size=100)
    assert [history.job_id(i) for i in page] == ids[149_900:150_000] and total == 200_000
    start = history.created_s(history.index(ids[123_456])) * 1_000_000
    page, total = history.list_page(start_us=start, desc=True, page=2, size=100)
    assert [history.job_id(i) for i in page] == ids[::-1][100:200] and total > 76_000


# ---- API surface --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/jobs", "/jobs/x/status", "/devices", "/users/me"])
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_401_json_without_the_token(cloud, path, token):
    response = api(cloud, path, token=token)
    assert response.status_code == 401
    assert "message" in response.json()
    assert "wrong-token" not in response.text and TOKEN not in response.text


def test_unknown_job_is_404_json(cloud):
    response = api(cloud, "/jobs/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"message": "job not found with the given id"}


def test_fields_select_properties_and_nulls_are_left_out(cloud):
    jobs = listing(cloud, fields="job_id,status,submitted_at", size=50)
    assert all(set(j) <= {"job_id", "status", "submitted_at"} for j in jobs)
    everything = [j for page in (1, 2, 3) for j in listing(cloud, page=page)]
    assert len(everything) == 300 and any("description" not in j for j in everything)
    assert all(None not in j.values() for j in everything)
    assert all(set(j) <= set(JOB_FIELDS) for j in everything)  # no undeclared keys by default


def test_archives_decode_to_the_ground_truth(cloud):
    for job_type in ("sampling", "estimation", "multi_manual", "sse"):
        job_id = first(cloud, job_type=job_type)
        served = api(cloud, f"/jobs/{job_id}").json()
        for key, url in served["job_info"].items():
            assert key == "message" or "X-Amz-Signature=" in url
        for key in ("input", "result", "transpile_result", "combined_program"):
            if key in served["job_info"]:
                entries = unzip(requests.get(served["job_info"][key], timeout=10).content)
                assert list(entries) == [f"{key}.json"]
        assert resolve(served) == cloud.history.job(job_id)


def test_storage_urls_need_no_token_and_expire(small):
    small.set_clock(datetime(2030, 1, 1, tzinfo=UTC))
    job_id = first(small)
    url = api(small, f"/jobs/{job_id}").json()["job_info"]["result"]
    assert requests.get(url, timeout=10).status_code == 200
    small.advance_clock(3601)
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text
    fresh = api(small, f"/jobs/{job_id}").json()["job_info"]["result"]
    assert fresh != url and requests.get(fresh, timeout=10).status_code == 200


def test_a_tampered_signature_is_refused(cloud):
    url = api(cloud, f"/jobs/{first(cloud)}").json()["job_info"]["result"]
    bad = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    response = requests.get(bad, timeout=10)
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text


def test_status_endpoint_answers_id_and_status(cloud):
    job_id = first(cloud, status="running")
    assert api(cloud, f"/jobs/{job_id}/status").json() == {"job_id": job_id, "status": "running"}


def test_devices_list_and_one_device(cloud):
    devices = api(cloud, "/devices").json()
    by_id = {d["device_id"]: d for d in devices}
    assert by_id["Kawasaki"]["n_qubits"] == 64 and by_id["Urchin"]["n_qubits"] == 16
    calibration = json.loads(by_id["Kawasaki"]["device_info"])
    assert len(calibration["qubits"]) == 64
    assert by_id["Urchin"]["status"] == "unavailable" and "available_at" in by_id["Urchin"]
    assert sum(d["n_pending_jobs"] for d in devices) == sum(
        1 for j in cloud.history.jobs()
        if j["status"] in ("submitted", "ready", "running", "cancelling"))
    assert api(cloud, "/devices/SVSim").json() == by_id["SVSim"]
    assert api(cloud, "/devices/Nowhere").status_code == 404


def test_legacy_form_inlines_job_info_with_the_old_quirks():
    with FakeCloud(200, seed=4, token=TOKEN, legacy=True) as legacy:
        jobs = [j for page in (1, 2) for j in listing(legacy, page=page)]
        assert len(jobs) == 200
        history = legacy.history
        seen = Counter()
        for job in jobs:
            if job["status"] == "registered":
                continue
            quirks = history.legacy_quirks(job["job_id"])
            seen.update(quirks)
            info, truth = job["job_info"], history.job(job["job_id"])["job_info"]
            assert all(not str(v).startswith("http") for v in info.values())
            if "counts_as_string" in quirks:
                counts = info["result"]["sampling"]["counts"]
                assert json.loads(counts) == truth["result"]["sampling"]["counts"]
            value = (truth.get("result") or {}).get("estimation", {}).get("exp_value")
            if "exp_value_complex" in quirks and isinstance(value, float):  # a list is served as it is
                assert info["result"]["estimation"]["exp_value"] == [value, 0.0]
            if "program_at_top" in quirks:
                assert info["program"] == truth["input"]["program"] and "input" not in info
            if not quirks or (quirks == {"exp_value_complex"} and not isinstance(value, float)):
                assert info == truth
        assert set(seen) == {"counts_as_string", "exp_value_complex", "program_at_top"}


# ---- faults -------------------------------------------------------------------------------------
def test_latency_sleeps_before_every_answer(small, monkeypatch):
    slept = []
    monkeypatch.setattr(server_module, "_sleep", slept.append)
    small.faults.latency = 0.25
    api(small, "/devices")
    requests.get(api(small, f"/jobs/{first(small)}").json()["job_info"]["input"], timeout=10)
    assert slept == [0.25, 0.25, 0.25]


def test_rate_limit_answers_429_with_retry_after_on_every_nth_request(small):
    small.faults.rate_limit_every, small.faults.retry_after = 3, 0.5
    codes = [api(small, "/devices") for _ in range(6)]
    assert [r.status_code for r in codes] == [200, 200, 429, 200, 200, 429]
    assert codes[2].headers["Retry-After"] == "0.5" and "message" in codes[2].json()


def test_error_every_answers_500_json(small):
    small.faults.error_every = 2
    codes = [api(small, "/jobs").status_code for _ in range(4)]
    assert codes == [200, 500, 200, 500]


def test_drop_every_closes_the_connection_without_an_answer(small):
    small.faults.drop_every = 2
    assert api(small, "/devices").status_code == 200
    with pytest.raises(requests.ConnectionError):
        api(small, "/devices")
    assert api(small, "/devices").status_code == 200


def test_expire_first_download_refuses_each_archive_once(small):
    small.faults.expire_first_download = True
    info = api(small, f"/jobs/{first(small)}").json()["job_info"]
    assert requests.get(info["result"], timeout=10).status_code == 403
    assert requests.get(info["input"], timeout=10).status_code == 403
    fresh = api(small, f"/jobs/{first(small)}").json()["job_info"]
    assert requests.get(fresh["result"], timeout=10).status_code == 200


def test_page_size_cap_truncates_pages_silently(small):
    small.faults.page_size_cap = 3
    ids = small.history.job_ids()
    assert [j["job_id"] for j in listing(small, size=10, page=2)] == ids[10:13]


def test_churn_adds_and_deletes_jobs_after_the_first_listing(small):
    small.faults.add_during_listing, small.faults.delete_during_listing = 3, 2
    before = small.history.job_ids()
    terminal = [j for j in before if small.history.status(j) in ("succeeded", "failed",
                                                                 "cancelled")]
    page = listing(small, size=5)
    assert [j["job_id"] for j in page] == before[:5]
    assert len(small.added_ids) == 3 and small.deleted_ids == terminal[:2]
    after = walk(small)
    # created now, after every other job, in one second: ordered by id
    assert after == [j for j in before if j not in small.deleted_ids] + sorted(small.added_ids)
    assert api(small, f"/jobs/{small.deleted_ids[0]}").status_code == 404
    listing(small)
    assert len(small.added_ids) == 3  # churn happens once


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_serves_what_it_says(small, kind):
    job_id = first(small, job_type="sampling")
    small.faults.malformed[job_id] = kind
    served = api(small, f"/jobs/{job_id}").json()
    listed = next(j for j in listing(small, size=100) if j["job_id"] == job_id)
    assert unsigned(listed) == unsigned(served)  # a URL signed a second later differs only in its signature
    result = requests.get(served["job_info"]["result"], timeout=30)
    checks = {
        "missing_field": lambda: "shots" not in served,
        "bad_job_type": lambda: served["job_type"] not in (*SAMPLING_LIKE, "estimation"),
        "bad_status": lambda: api(small, f"/jobs/{job_id}/status").json()["status"] == "exploded",
        "absurd_timestamp": lambda: served["ended_at"].startswith("99999")
        and served["running_at"] == "not-a-date",
        "invalid_bitstring": lambda: BAD_BITSTRING in _result_counts(result),
        "non_integer_count": lambda: any(isinstance(n, float) for n in
                                         _result_counts(result).values()),
        "negative_count": lambda: min(_result_counts(result).values()) < 0,
        "zip_no_entry": lambda: unzip(result.content) == {},
        "zip_two_entries": lambda: len(unzip(result.content)) == 2,
        "invalid_json": lambda: _raises(json.JSONDecodeError, _result_json, result),
        "json_not_object": lambda: isinstance(_result_json(result), list),
        "non_utf8": lambda: _raises(UnicodeDecodeError,
                                    lambda r: unzip(r.content)["result.json"].decode(), result),
        "oversized_archive": lambda: len(result.content) > OVERSIZED_BYTES,
        "zip_bomb": lambda: len(result.content) < 2_000_000 and zipfile.ZipFile(
            io.BytesIO(result.content)).infolist()[0].file_size == BOMB_BYTES > 1e9,
        "archive_never_arrives": lambda: result.status_code == 500 and all(
            requests.get(u, timeout=10).status_code == 500
            for k, u in served["job_info"].items() if k != "message"),
    }
    assert checks[kind]()


def _result_json(response: requests.Response):
    return json.loads(unzip(response.content)["result.json"])


def _result_counts(response: requests.Response) -> dict:
    return _result_json(response)["sampling"]["counts"]


def _raises(error: type[Exception], fn, *args) -> bool:
    try:
        fn(*args)
    except error:
        return True
    return False


def test_unknown_malformed_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown malformed kinds"):
        Faults(malformed={"x": "gremlins"})


# ---- mutations, counters, lifecycle -------------------------------------------------------------
def test_added_jobs_come_after_all_others_and_finish_gains_a_result(small):
    old_last = small.history.job(small.history.job_ids()[-1])
    added = small.add_jobs(20)
    assert small.history.job_ids()[-20:] == sorted(added) and added == small.added_ids
    assert small.history.created_at(added[0]) > small.history.created_at(old_last["job_id"])
    waiting = next(j for j in added if small.history.status(j) in ("submitted", "ready",
                                                                     "running"))
    small.finish(waiting)
    job = api(small, f"/jobs/{waiting}").json()
    assert job["status"] == "succeeded" and "result" in job["job_info"]
    assert {"ready_at", "running_at", "ended_at", "execution_time"} <= set(job)
    with pytest.raises(ValueError):
        small.finish(waiting)


def test_finished_as_cancelled_keeps_the_stage_it_reached(small):
    job_id = first(small, status="submitted")
    small.finish(job_id, "cancelled")
    job = small.history.job(job_id)
    assert job["status"] == "cancelled" and "ended_at" in job
    assert "ready_at" not in job and "result" not in job["job_info"]


def test_deleted_job_is_gone_everywhere(small):
    job_id = first(small)
    url = api(small, f"/jobs/{job_id}").json()["job_info"]["result"]
    small.delete(job_id)
    assert api(small, f"/jobs/{job_id}").status_code == 404
    assert job_id not in [j["job_id"] for j in listing(small, size=100)]
    assert requests.get(url, timeout=10).status_code == 404
    assert small.deleted_ids == [job_id] and job_id not in small.history


def test_request_counts_by_kind_and_reset(small):
    small.requests.reset()
    info = api(small, f"/jobs/{first(small)}").json()["job_info"]
    listing(small)
    api(small, "/devices")
    requests.get(info["input"], timeout=10)
    api(small, "/users/me")
    assert small.requests.snapshot() == {"list": 1, "job": 1, "status": 0, "sselog": 0, "user": 1,
                                         "devices": 1, "storage": 1, "other": 0, "total": 5}
    small.requests.reset()
    assert small.requests.total == 0


def test_a_session_reuses_one_keep_alive_connection(small):
    opened = small.connections_opened
    with requests.Session() as session:
        session.headers["q-api-token"] = TOKEN
        for _ in range(5):
            assert session.get(f"{small.url}/devices", timeout=10).status_code == 200
    assert small.connections_opened == opened + 1


def test_serve_forever_prints_url_and_token_and_stops():
    cloud, lines, stop = FakeCloud(5, token=TOKEN), [], threading.Event()
    stop.set()
    server_module.serve_forever(cloud, echo=lines.append, stop=stop)
    assert lines[0].startswith("OQTOPUS_URL=http://127.0.0.1:")
    assert lines[1] == f"OQTOPUS_API_TOKEN={TOKEN}"
    assert lines[2].startswith("Serving 5 synthetic jobs (server API)")
    with pytest.raises(RuntimeError):
        _ = cloud.url
