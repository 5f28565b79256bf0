"""The transport against a hostile server on 127.0.0.1 (tests/hostile.py): it never hangs, never holds more
memory than its limits, never stops the wrong thing, and says what went wrong in one sentence."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hostile import (
    Hostile,
    drop,
    gzip_bomb,
    job,
    nested,
    payload,
    raw,
    serve_job,
    status,
    steady,
    trickle,
    zipped,
)

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.client.http import DownloadTooLarge
from oqtopus_data.errors import ApiError, AuthError, ConfigError
from oqtopus_data.fetch.jobs import fetch_jobs, resolve_job
from oqtopus_data.redact import redact_url, scrub

TOKEN = "tok-SECRET-123"
HANG_GUARD = 10.0  # seconds: only there so that a regression fails instead of hanging the suite


def client(url: str, **options: Any) -> ApiClient:
    options.setdefault("sleep", lambda seconds: None)
    return ApiClient(Credentials(url, options.pop("token", TOKEN), None, options.pop("timeout", 5.0), "test"),
                     **options)


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """call() in a thread; fails the test if it has not returned after `seconds` (a hang guard, not a timing)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# ---- 1. an overall deadline per attempt ---------------------------------------------------------------------------
@pytest.mark.parametrize("headers_too", [False, True])
def test_a_server_trickling_one_byte_at_a_time_fails_each_attempt_at_its_deadline(
    server: Hostile, headers_too: bool
) -> None:
    body = json.dumps({"job_id": "j", "status": "running", "pad": "x" * 200}).encode()
    server.on("/jobs/j/status", trickle(body, interval=0.05, headers_too=headers_too))  # 12 s in all
    api = client(server.url, deadline=0.5, min_throughput=1e9, max_tries=2)
    with pytest.raises(ApiError) as info:
        within(HANG_GUARD, lambda: api.get_status("j"))
    assert str(info.value) == f"GET {server.url}/jobs/j/status failed after 2 tries: no complete answer within 0.5 s"
    assert server.hits["/jobs/j/status"] == 2


def test_a_slow_but_steady_download_passes_beyond_the_deadline_floor(server: Hostile) -> None:
    body = bytes(range(256)) * 160  # 40 KiB in 8 pieces over about 0.8 s: 50 KiB/s
    server.on("/storage/big.zip", steady(body, pieces=8, interval=0.1))
    api = client(server.url, deadline=0.3, min_throughput=20_000, max_tries=1)
    assert within(HANG_GUARD, lambda: api.download(server.storage_url("/storage/big.zip"))) == body


def test_the_configured_timeout_bounds_an_api_call_whatever_the_server_trickles(server: Hostile) -> None:
    # Issue 20 item 13: with the profile's timeout = 2 a listing trickling a byte a second held a run 7.5 minutes
    # (each attempt had 60 s, six tries). Each attempt now has twice the timeout, a request five attempts' worth.
    server.on("/jobs", trickle(b"[]" + b" " * 200, interval=0.1))  # each byte within the per-read timeout
    api = client(server.url, timeout=0.3, max_tries=50, sleep=time.sleep, backoff=0.01, max_backoff=0.02)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        within(HANG_GUARD, lambda: api.list_page({"size": 100}))
    took = time.monotonic() - started
    assert str(info.value).startswith(f"GET {server.url}/jobs: gave up after ")
    assert str(info.value).endswith(": no complete answer within 0.6 s")
    patience = api.transport.patience  # five attempts of 0.6 s and the backoff's schedule (49 waits of 0.02 s)
    assert round(patience, 2) == 3.97
    assert patience <= took < patience + 0.6 + 1  # at most one attempt more, whatever max_tries says
    assert server.hits["/jobs"] <= 8


def test_a_retry_that_could_not_start_within_the_patience_is_given_up_without_waiting(server: Hostile) -> None:
    server.on("/jobs/j/status", status(503, **{"Retry-After": "60"}))
    slept: list[float] = []
    api = client(server.url, timeout=0.2, max_tries=6, sleep=slept.append, max_backoff=60)
    with pytest.raises(ApiError) as info:
        api.get_status("j")
    assert str(info.value) == f"GET {server.url}/jobs/j/status: gave up after 0 s and 1 try: HTTP 503"
    assert (slept, server.hits["/jobs/j/status"]) == ([], 1)


def test_a_trickling_archive_is_its_jobs_error_within_the_timeout_and_the_others_are_exported(
    server: Hostile, tmp_path
) -> None:
    from oqtopus_data import connect
    from oqtopus_data.run.export import ExportOptions, export

    good = [serve_job(server, job(f"g{n}", created_at=f"2024-05-01T00:00:0{n}Z"),
                      {"result": zipped({"result.json": b'{"sampling": {"counts": {"0": 3}}}'})}) for n in range(3)]
    slow = serve_job(server, job("slow", created_at="2024-05-01T00:00:05Z"), {"result": b"x" * 400})
    server.on("/storage/slow/result.zip", trickle(b"x" * 400, interval=0.1))
    server.on("/jobs", payload([slow, *good[::-1]]))
    server.on("/devices", payload([]))
    api = client(server.url, timeout=0.3, sleep=time.sleep, backoff=0.01, max_backoff=0.02)
    started = time.monotonic()
    report = within(30, lambda: export(api, tmp_path / "out", ExportOptions(page_size=10)))
    assert time.monotonic() - started < 15
    assert [(job_id, stage) for job_id, stage, _ in report.errors] == [("slow", "archive")]
    exported = connect(tmp_path / "out").execute("SELECT job_id FROM jobs ORDER BY job_id").fetchall()
    assert exported == [("g0",), ("g1",), ("g2",)]


def test_a_run_that_gives_a_listing_page_up_has_committed_the_jobs_it_already_had(
    server: Hostile, tmp_path
) -> None:
    from oqtopus_data import connect
    from oqtopus_data.run.export import ExportOptions, export

    listed = [job(f"j{n}", {"result": {"sampling": {"counts": {"0": 3}}}}, created_at=f"2024-05-01T00:00:0{n}Z")
              for n in range(3)]
    server.on("/users/me", payload({"id": "u"}))
    server.on("/devices", payload([]))
    server.on("/jobs", payload(listed[::-1]), trickle(b"[]" + b" " * 200, interval=0.1))  # the next page trickles
    api = client(server.url, timeout=0.3, sleep=time.sleep, backoff=0.01, max_backoff=0.02)
    started = time.monotonic()
    report = within(30, lambda: export(api, tmp_path / "out", ExportOptions(page_size=3)))
    assert time.monotonic() - started < 15  # each listing request within its patience (about 3 s here)
    assert [stage for _, stage, _ in report.errors] == ["list"]
    exported = connect(tmp_path / "out").execute("SELECT job_id FROM jobs ORDER BY job_id").fetchall()
    assert exported == [("j0",), ("j1",), ("j2",)]


# ---- 2. memory bounded whatever the server sends -----------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True])
def test_a_gzip_bomb_api_body_stops_at_the_json_limit_and_is_not_retried(server: Hostile, chunked: bool) -> None:
    server.on("/jobs", gzip_bomb(16 << 20, chunked=chunked))  # 16 MiB of JSON in a few KiB
    api = client(server.url, json_limit=1 << 20)
    with pytest.raises(DownloadTooLarge) as info:
        api.list_page({"size": 100})
    assert str(info.value) == f"GET {server.url}/jobs: the body is over the limit of 1 MiB"
    assert server.hits["/jobs"] == 1
    assert api.budget.used == 0


def test_downloads_of_all_threads_stay_within_the_byte_budget(server: Hostile) -> None:
    archive = zipped({"result.json": json.dumps({"sampling": {"counts": {"0": 1}}, "pad": "z" * 300_000}).encode()},
                     compress=False)
    listed = [serve_job(server, job(f"j{n}"), {"result": archive}) for n in range(12)]
    api = client(server.url, memory_budget=1_000_000, workers=8)
    fetched = within(HANG_GUARD, lambda: list(fetch_jobs(api, listed, workers=8)))
    assert [(f.job_id, f.error) for f in fetched] == [(f"j{n}", None) for n in range(12)]
    assert all(f.job["job_info"]["result"]["sampling"] == {"counts": {"0": 1}} for f in fetched)
    # One job holds about 0.9 MB (body, inflated entry, its text); the budget is passed by one job at most
    # (eight workers unbounded would hold 7.2 MB).
    one_job = 3 * len(archive)
    assert one_job - 1000 < api.budget.peak <= 1_000_000 + one_job
    assert api.budget.used == 0


def test_a_download_larger_than_the_whole_budget_proceeds_alone(server: Hostile) -> None:
    body = b"x" * 300_000
    server.on("/storage/huge.zip", raw(body))
    api = client(server.url, memory_budget=100_000)
    assert within(HANG_GUARD, lambda: api.download(server.storage_url("/storage/huge.zip"))) == body
    assert api.budget.used == 0


def test_waiting_for_the_byte_budget_does_not_count_against_the_deadline(server: Hostile) -> None:
    body = b"y" * 50_000
    server.on("/storage/a.zip", raw(body))
    api = client(server.url, memory_budget=100_000, deadline=0.3, min_throughput=1e9, max_tries=1)
    got: list[bytes] = []
    with api.budget.hold() as other:
        other.grow(80_000)  # another download holds most of the budget for a second
        waiting = threading.Thread(target=lambda: got.append(api.download(server.storage_url("/storage/a.zip"))))
        waiting.start()
        time.sleep(1.0)
        assert got == []
    waiting.join(HANG_GUARD)
    assert got == [body]


# ---- 3. a 403 on one job is that job's error ---------------------------------------------------------------------
def test_a_403_on_one_job_is_that_jobs_error_and_the_others_are_exported(server: Hostile) -> None:
    result = zipped({"result.json": b'{"sampling": {"counts": {"0": 1}}}'})
    good = serve_job(server, job("good"), {"result": result})
    bad = serve_job(server, job("bad"), {"result": result})
    server.on("/storage/bad/result.zip", status(403))  # expired: a fresh GET /jobs/bad is asked for ...
    server.on("/jobs/bad", status(403, {"message": "forbidden"}))  # ... and refused for this job only
    fetched = list(fetch_jobs(client(server.url), [good, bad]))
    assert [(f.job_id, f.error is None) for f in fetched] == [("good", True), ("bad", False)]
    error = fetched[1].error
    assert (error.job_id, error.stage, error.problem) == ("bad", "fetch", f"GET {server.url}/jobs/bad: HTTP 403: "
                                                          "forbidden")


@pytest.mark.parametrize("path", ["/jobs/j", "/jobs/j/status"])
def test_a_403_on_a_job_endpoint_is_an_api_error_with_its_status(server: Hostile, path: str) -> None:
    server.on(path, status(403))
    api = client(server.url)
    with pytest.raises(ApiError) as info:
        api.get_job("j") if path == "/jobs/j" else api.get_status("j")
    assert not isinstance(info.value, AuthError)
    assert info.value.status == 403


@pytest.mark.parametrize("path", ["/jobs", "/devices", "/users/me"])
def test_a_403_on_the_listing_devices_or_account_refuses_the_credentials(server: Hostile, path: str) -> None:
    server.on(path, status(403))
    api = client(server.url)
    call = {"/jobs": lambda: api.list_page({}), "/devices": api.get_devices, "/users/me": api.preflight}[path]
    with pytest.raises(AuthError, match=f"refused the credentials \\(HTTP 403 on GET {server.url}{path}\\)"):
        call()


# ---- 4. malformed values -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://[::1/storage/j/result.zip?X-Amz-Signature=SIG-SECRET", "result is a malformed URL (invalid IPv6 URL)"),
        ("https://host:99999/j/result.zip", "result is a malformed URL (port out of range 0-65535)"),
        ("file:///etc/passwd", "result is a file:// URL, not an http(s) archive URL"),
        ("s3://bucket/j/result.zip?X-Amz-Signature=SIG-SECRET", "result is an s3:// URL, not an http(s) archive URL"),
        ("j/result.zip", "result is a relative path, not an http(s) archive URL"),
        ("see the logs", "result is a text string, not an http(s) archive URL"),
    ],
)
def test_a_result_that_is_not_an_http_archive_url_is_that_jobs_error(server: Hostile, value: str,
                                                                     problem: str) -> None:
    listed = job("j", {"result": value})
    fetched = list(fetch_jobs(client(server.url), [listed]))
    assert [(f.job_id, f.job, f.error.stage, f.error.problem) for f in fetched] == [("j", None, "archive", problem)]
    assert not server.hits  # nothing was asked for


def test_inline_legacy_text_stays_inline(server: Hostile) -> None:
    listed = job("j", {"combined_program": "OPENQASM 3; qubit[2] q;", "result": {"sampling": {"counts": {}}}})
    assert resolve_job(client(server.url), listed) == listed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://s3.example.com/b/j/result.zip;X-Amz-Signature=SIG-SECRET?x=1", "https://s3.example.com/b/j/result.zip"),
        ("https://cdn.example.com/sig=SIG-SECRET/j/result.zip", "https://cdn.example.com/<redacted>/j/result.zip"),
        ("https://cdn.example.com/" + "a1B2" * 16 + "/result.zip", "https://cdn.example.com/<redacted>/result.zip"),
        ("https://u:pw@api.example.com/v1/jobs/0f9d1c2e-1111-2222-3333-444455556666",
         "https://api.example.com/v1/jobs/0f9d1c2e-1111-2222-3333-444455556666"),
        ("http://[::1/x?X-Amz-Signature=SIG-SECRET", "<malformed URL>"),
    ],
)
def test_redact_url_drops_signatures_in_paths_and_params_too(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_drops_signatures_in_paths_params_and_key_values() -> None:
    text = ("failed for https://s3.example.com/j/result.zip;X-Amz-Signature=SIG1 and /j/log.zip;sig=SIG2 "
            "and Signature=SIG3&x")
    assert scrub(text) == "failed for https://s3.example.com/j/result.zip and /j/log.zip and Signature=<redacted>&x"


# ---- 5. set-up errors: fast, plain, one sentence -----------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_preflight_connection_refused_is_a_config_error_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    port = closed_port()
    api = client(f"http://127.0.0.1:{port}", sleep=time.sleep)
    with pytest.raises(ConfigError) as info:
        within(HANG_GUARD, api.preflight)
    assert str(info.value) == f"cannot connect to 127.0.0.1:{port} (connection refused): check --url / OQTOPUS_URL."
    assert api.stats.snapshot()["requests"]["user"] == 1


def test_preflight_unknown_host_is_a_config_error_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    api = client("https://no-such-host.invalid/api", sleep=time.sleep)
    with pytest.raises(ConfigError) as info:
        within(HANG_GUARD, api.preflight)
    assert str(info.value) == "cannot connect to no-such-host.invalid:443 (unknown host): check --url / OQTOPUS_URL."


def test_preflight_tls_failure_is_a_config_error_at_once(server: Hostile) -> None:
    api = client(server.url.replace("http://", "https://"), sleep=time.sleep)  # TLS spoken to a plain server
    with pytest.raises(ConfigError) as info:
        within(HANG_GUARD, api.preflight)
    port = server.url.rsplit(":", 1)[1]
    assert str(info.value) == (
        f"cannot connect to 127.0.0.1:{port} (TLS failure: wrong version number): check --url / OQTOPUS_URL, "
        "and REQUESTS_CA_BUNDLE for a private certificate authority."
    )


def test_preflight_on_a_url_that_is_not_the_api_is_a_config_error(server: Hostile) -> None:
    api = client(server.url + "/wrong", sleep=time.sleep)  # every path answers 404
    with pytest.raises(ConfigError) as info:
        within(HANG_GUARD, api.preflight)
    assert str(info.value) == (
        f"{server.url}/wrong/jobs answered 404: the URL is not an OQTOPUS Cloud user API: check --url / OQTOPUS_URL."
    )
    assert (server.hits["/wrong/users/me"], server.hits["/wrong/jobs"]) == (1, 1)


def test_preflight_returns_the_account_without_email_or_login_events(server: Hostile) -> None:
    me = {"id": 7, "email": "ada@example.com", "name": "Ada", "organization": "QLab",
          "created_at": "2024-01-01T00:00:00Z", "login_events": [{"ip": "10.0.0.1"}]}
    server.on("/users/me", payload(me))
    assert client(server.url).preflight() == {"id": 7, "name": "Ada", "organization": "QLab"}
    assert server.headers["/users/me"]["q-api-token"] == TOKEN


def test_preflight_without_users_me_checks_jobs_and_returns_none(server: Hostile) -> None:
    server.on("/jobs", payload([]))
    assert client(server.url).preflight() is None
    assert server.hits["/jobs"] == 1


def test_preflight_with_an_unwell_users_me_goes_on_to_jobs(server: Hostile) -> None:
    server.on("/users/me", status(500))
    server.on("/jobs", status(503), payload([]))
    assert client(server.url).preflight() is None
    assert (server.hits["/users/me"], server.hits["/jobs"]) == (1, 2)


@pytest.mark.parametrize("code", [401, 403])
def test_preflight_refused_credentials_are_an_auth_error(server: Hostile, code: int) -> None:
    server.on("/users/me", status(code))
    with pytest.raises(AuthError):
        client(server.url).preflight()


def test_long_retries_are_announced_through_notice(server: Hostile) -> None:
    server.on("/jobs", status(503, **{"Retry-After": "8"}), status(503), payload([]))
    notices: list[str] = []
    api = client(server.url, notice=notices.append, backoff=0.001)
    assert api.list_page({"size": 100, "start_time": "2024-01-01T00:00:00Z"}) == []
    assert notices == [f"GET {server.url}/jobs: HTTP 503, retrying in 8 s (try 2 of 6)"]


# ---- 6. token hygiene and deep nesting ---------------------------------------------------------------------------
def test_only_whole_tokens_of_eight_characters_or_more_are_redacted() -> None:
    assert scrub("expected x, got xx", token="x") == "expected x, got xx"
    assert scrub("bad token tok-SECRET-123!", token=TOKEN) == "bad token <token>!"


def test_a_listing_nested_200000_deep_is_an_api_error_not_retried(server: Hostile) -> None:
    server.on("/jobs", raw(nested(200_000), content_type="application/json"))
    api = client(server.url)
    with pytest.raises(ApiError) as info:
        api.list_page({"size": 100})
    assert str(info.value) == f"GET {server.url}/jobs: the JSON is nested too deeply to read"
    assert server.hits["/jobs"] == 1


def test_an_archive_nested_200000_deep_is_that_jobs_error(server: Hostile) -> None:
    listed = serve_job(server, job("deep"), {"result": zipped({"result.json": nested(200_000)})})
    [fetched] = fetch_jobs(client(server.url), [listed])
    assert (fetched.job_id, fetched.error.stage, fetched.error.problem) == (
        "deep", "archive", "result archive: invalid JSON (nested too deeply)")


def test_dropped_connections_are_retried_then_reported(server: Hostile) -> None:
    server.on("/jobs/j", drop())
    with pytest.raises(ApiError, match=r"failed after 2 tries: connection failed"):
        within(HANG_GUARD, lambda: client(server.url, max_tries=2).get_job("j"))
