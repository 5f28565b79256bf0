"""The fetcher: retry policy, time-window paging, archive resolution and the ordered worker pool.

The API and its storage are played by one threaded `http.server` on 127.0.0.1 (port 0), which answers each request
with the current test's handler: a Canned answer, or a server behaviour (drop the connection, stall past the
client's timeout). The handler sees each request's URL and headers as the server received them.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.client.http import DownloadTooLarge, retry_after_seconds
from oqtopus_data.errors import ApiError, AuthError, JobError
from oqtopus_data.fetch.jobs import FetchedJob, fetch_jobs, resolve_job

TOKEN = "tok-SECRET-123"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


# ----------------------------------------------------------------------------- the server


@dataclass
class Sent:
    """A request as the server received it."""

    url: str
    headers: dict[str, str]
    proxied: bool = False  # asked for in absolute form, as of a proxy


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def play(self, h: BaseHTTPRequestHandler) -> None:
        """Answer; a Content-Length above the body's size cuts it short, an empty one ends it by closing."""
        headers = {"Content-Length": str(len(self.body)), **self.headers}
        h.send_response(self.status)
        for name, value in headers.items():
            if value != "":
                h.send_header(name, value)
        if headers["Content-Length"] == "":
            h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(self.body)
        h.close_connection = headers["Content-Length"] in ("", None) or int(headers["Content-Length"]) != len(self.body)


@dataclass
class Drop:
    """Close the connection without answering."""

    def play(self, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True


@dataclass
class Stall:
    """Say nothing for `seconds` (past the client's timeout), then close."""

    seconds: float

    def play(self, h: BaseHTTPRequestHandler) -> None:
        time.sleep(self.seconds)
        h.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        proxied = self.path.startswith("http://")
        sent = Sent(self.path if proxied else f"http://{self.headers['Host']}{self.path}", dict(self.headers), proxied)
        self.server.record(sent)
        self.server.handler(sent).play(self)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.handler: Callable[[Sent], Any] = lambda sent: Canned(404)
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def record(self, sent: Sent) -> None:
        with self._lock:
            self.sent.append(sent)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up on a stalled answer


#: One server for the module; each test sets its handler (`make_api`). "localhost" names it as another host.
SERVER = _Server()
PORT = SERVER.server_address[1]
BASE = f"http://127.0.0.1:{PORT}/v1"
STORAGE = f"http://127.0.0.1:{PORT}/bucket"
ELSEWHERE = f"http://localhost:{PORT}"
CREDS = Credentials(url=BASE, token=TOKEN, proxy=None, timeout=30.0, source="test")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def reply(payload: Any, status: int = 200, **headers: str) -> Canned:
    return Canned(status, json.dumps(payload).encode(), headers)


def script(*outcomes: Any) -> Callable[[Any], Any]:
    """A handler answering with the given outcomes in turn, repeating the last one."""
    queue = list(outcomes)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def make_api(handler: Callable[[Sent], Any], **options: Any) -> tuple[ApiClient, _Server, list]:
    """A client of the module's server, which now answers with `handler`; the server's `sent` starts empty."""
    sleeps: list[float] = []
    api = ApiClient(options.pop("credentials", CREDS), sleep=sleeps.append, **options)
    SERVER.handler = handler
    SERVER.sent = []
    return api, SERVER, sleeps


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def job(n: int, at: float | None = None, **extra: Any) -> dict:
    record = {"job_id": f"job-{n:03d}", "name": f"job {n}", "status": "succeeded", **extra}
    if at is not None or "submitted_at" not in extra:
        record["submitted_at"] = stamp(n if at is None else at)
    return record


def zipped(name: str, payload: Any) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, payload if isinstance(payload, bytes) else json.dumps(payload))
    return buffer.getvalue()


class Cloud:
    """GET /jobs, /jobs/{id} and presigned storage, with the paging quirks of the real API."""

    def __init__(self, jobs: list[dict] = (), *, cap: int = 65535) -> None:  # type: ignore[assignment]
        self.jobs = list(jobs)
        self.cap = cap
        self.queries: list[dict[str, str]] = []
        self.before_list: Callable[[Cloud], None] | None = None
        self.archives: dict[str, bytes] = {}  # "<job_id>/<key>.zip" -> bytes
        self.generation = 0  # presigned URLs of older generations have expired
        self.expire_old = False
        self.storage_hook: Callable[[str], Canned | None] | None = None

    def add_archive(self, job_id: str, key: str, payload: Any) -> str:
        self.archives[f"{job_id}/{key}.zip"] = zipped(f"{key}.json", payload)
        return f"@{key}"  # placeholder in job_info, served as a presigned URL

    def __call__(self, request: Sent) -> Any:
        parts = urlsplit(request.url)
        if parts.path.startswith("/bucket/"):
            return self.storage(parts.path.removeprefix("/bucket/"), dict(parse_qsl(parts.query)))
        path = parts.path.removeprefix("/v1")
        if path == "/jobs":
            return self.list(dict(parse_qsl(parts.query)))
        found = [j for j in self.jobs if f"/jobs/{j['job_id']}" == path]
        return reply(self.serve(found[0])) if found else reply({"message": "not found"}, 404)

    def serve(self, record: dict) -> dict:
        info = record.get("job_info")
        if not isinstance(info, dict):
            return record
        signed = {
            key: f"{STORAGE}/{record['job_id']}/{key}.zip?X-Amz-Signature=SIG{self.generation}"
            if value == f"@{key}"
            else value
            for key, value in info.items()
        }
        return {**record, "job_info": signed}

    def list(self, query: dict[str, str]) -> Canned:
        if self.before_list is not None:
            self.before_list(self)
        self.queries.append(query)
        start, end = query.get("start_time"), query.get("end_time")
        rows = [j for j in self.jobs if in_window(j.get("submitted_at"), start, end)]
        rows.sort(key=lambda j: (j.get("submitted_at") is not None, parse(j.get("submitted_at", stamp(0)))))
        size = min(int(query["size"]), self.cap)
        last = max(1, -(-len(rows) // size))
        page = min(int(query.get("page", 1)), last)  # past the end: the last page again
        return reply([self.serve(j) for j in rows[(page - 1) * size : page * size]])

    def storage(self, path: str, query: dict[str, str]) -> Any:
        if self.storage_hook is not None and (canned := self.storage_hook(path)) is not None:
            return canned
        if self.expire_old and query.get("X-Amz-Signature") != f"SIG{self.generation}":
            return Canned(403, b"<Error><Code>AccessDenied</Code></Error>")
        if path not in self.archives:
            return Canned(404, b"<Error><Code>NoSuchKey</Code></Error>")
        return Canned(200, self.archives[path])


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def in_window(submitted: str | None, start: str | None, end: str | None) -> bool:
    if submitted is None:
        return start is None and end is None
    return (start is None or parse(start) <= parse(submitted)) and (
        end is None or parse(submitted) <= parse(end)
    )


def ids(jobs: Any) -> list[str]:
    return [j["job_id"] for j in jobs]


# ----------------------------------------------------------------------------- transport


def test_token_goes_in_q_api_token_header_to_the_api_only() -> None:
    cloud = Cloud([job(1)])
    cloud.add_archive("job-001", "result", {})
    api, adapter, _ = make_api(cloud, timeout=12.5)
    api.get_job("job-001")
    api.download(f"{STORAGE}/job-001/result.zip?X-Amz-Signature=SIG0")
    to_api, to_storage = adapter.sent
    assert to_api.headers["q-api-token"] == TOKEN
    assert "Authorization" not in to_api.headers
    assert "q-api-token" not in to_storage.headers
    assert api.transport.timeout == 12.5


def test_proxy_and_timeout_come_from_the_credentials() -> None:
    # The configured proxy is this same server, which answers the proxied (absolute-form) GET as the API.
    creds = Credentials(BASE.replace("127.0.0.1", "localhost"), TOKEN, f"http://127.0.0.1:{PORT}", 7.0, "test")
    api, server, _ = make_api(script(reply({"job_id": "j", "status": "running"})), credentials=creds)
    assert api.get_status("j") == "running"
    assert (server.sent[0].url, server.sent[0].proxied) == (f"http://localhost:{PORT}/v1/jobs/j/status", True)
    assert server.sent[0].headers["q-api-token"] == TOKEN
    assert api.transport.timeout == 7.0


def test_redirect_to_another_host_drops_the_token() -> None:
    def handler(request: Any) -> Canned:
        if request.url.startswith(BASE):
            return Canned(302, b"", {"Location": f"{ELSEWHERE}/jobs/j"})
        return reply({"job_id": "j"})

    api, adapter, _ = make_api(handler)
    api.get_job("j")
    assert adapter.sent[0].headers["q-api-token"] == TOKEN
    assert adapter.sent[1].url == f"{ELSEWHERE}/jobs/j"
    assert "q-api-token" not in adapter.sent[1].headers


@pytest.mark.parametrize(
    ("retry_after", "slept"),
    [("7", 7.0), ("120", 30.0), ("Fri, 31 Dec 2100 23:59:59 GMT", 30.0), ("0", 0.0)],
)
def test_429_waits_as_retry_after_says_clamped_to_max_backoff(retry_after: str, slept: float) -> None:
    handler = script(reply({}, 429, **{"Retry-After": retry_after}), reply({"job_id": "j"}))
    api, _, sleeps = make_api(handler, max_backoff=30.0)
    assert api.get_job("j") == {"job_id": "j"}
    assert sleeps == [slept]
    assert api.stats.snapshot()["requests"]["job"] == 2
    assert api.stats.snapshot()["retries"] == 1


def test_retry_after_http_date_counts_from_now() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None


def test_5xx_and_read_timeouts_are_retried_with_growing_jittered_backoff() -> None:
    handler = script(
        reply({}, 500),
        Stall(1.0),  # past the timeout of 0.2 s: a read timeout
        reply({}, 503),
        reply({"job_id": "j"}),
    )
    api, _, sleeps = make_api(handler, backoff=0.5, timeout=0.2)
    assert api.get_job("j") == {"job_id": "j"}
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, [0.5, 1.0, 2.0], strict=True))


def test_truncated_body_is_retried() -> None:
    cut = Canned(200, b'{"job_id": "j"', {"Content-Length": "40"})
    api, _, sleeps = make_api(script(cut, reply({"job_id": "j"})))
    assert api.get_job("j") == {"job_id": "j"}
    assert len(sleeps) == 1


def test_gives_up_after_max_tries_with_api_error() -> None:
    api, adapter, sleeps = make_api(script(reply({}, 503)), max_tries=4)
    with pytest.raises(ApiError) as info:
        api.get_job("j")
    assert str(info.value) == f"GET {BASE}/jobs/j failed after 4 tries: HTTP 503"
    assert info.value.status == 503
    assert (len(adapter.sent), len(sleeps)) == (4, 3)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_an_auth_error_at_once(status: int) -> None:
    api, adapter, _ = make_api(script(reply({"message": f"bad token {TOKEN}"}, status)))
    with pytest.raises(AuthError) as info:
        api.list_page({})
    assert str(info.value) == (
        f"The OQTOPUS API refused the credentials (HTTP {status} on GET {BASE}/jobs): "
        "check OQTOPUS_API_TOKEN or the profile's api_token."
    )
    assert len(adapter.sent) == 1


def test_other_4xx_quotes_the_server_message_shortened() -> None:
    api, _, _ = make_api(script(reply({"message": "job not found"}, 404)))
    with pytest.raises(ApiError, match=f"^GET {BASE}/jobs/x: HTTP 404: job not found$"):
        api.get_job("x")
    api, _, _ = make_api(script(reply({"message": "x" * 5000}, 400)))
    with pytest.raises(ApiError) as info:
        api.get_job("x")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "outcome",
    [
        Canned(500, b"<Error><Signature>SIG-SECRET</Signature></Error>"),
        Canned(404, b"<Error><StringToSign>SIG-SECRET</StringToSign></Error>"),
        Drop(),  # a TLS refusal is tests/test_tls.py's
    ],
)
def test_storage_errors_never_show_the_presigned_query_or_token(outcome: Any) -> None:
    api, _, _ = make_api(script(outcome), max_tries=2)
    with pytest.raises(ApiError) as info:
        api.download(f"{STORAGE}/j/result.zip?X-Amz-Signature=SIG-SECRET")
    message = str(info.value)
    assert "SIG-SECRET" not in message
    assert TOKEN not in message
    assert f"{STORAGE}/j/result.zip" in message


def test_api_error_messages_never_show_the_token() -> None:
    api, _, _ = make_api(script(reply({"message": f"token {TOKEN} is not allowed here"}, 400)))
    with pytest.raises(ApiError) as info:
        api.get_job("j")
    assert TOKEN not in str(info.value)
    assert "token <token> is not allowed here" in str(info.value)


def test_download_over_the_limit_is_refused() -> None:
    declared = Canned(200, b"x" * 10)
    api, _, _ = make_api(script(declared))
    with pytest.raises(DownloadTooLarge, match="10 bytes is over the limit of 8 bytes"):
        api.download(f"{STORAGE}/a.zip", limit=8)
    undeclared = Canned(200, b"x" * 10, {"Content-Length": ""})
    api, _, sleeps = make_api(script(undeclared))
    with pytest.raises(DownloadTooLarge, match="the body is over the limit of 8 bytes"):
        api.download(f"{STORAGE}/a.zip", limit=8)
    assert sleeps == []


class FlakyHandler(BaseHTTPRequestHandler):
    """Plays the next action of the server's script on each request."""

    def do_GET(self) -> None:
        action = self.server.actions.pop(0) if self.server.actions else "ok"  # type: ignore[attr-defined]
        if action == "drop":
            self.close_connection = True
            return
        if action == "slow":
            time.sleep(0.3)
        body = json.dumps({"job_id": "j", "status": "succeeded"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + (50 if action == "cut" else 0)))
        self.end_headers()
        self.wfile.write(body)
        if action == "cut":
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    server.actions = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_dropped_connection_timeout_and_cut_body_are_retried_over_real_sockets(
    flaky_server: ThreadingHTTPServer,
) -> None:
    flaky_server.actions = ["drop", "slow", "cut"]  # type: ignore[attr-defined]
    host, port = flaky_server.server_address[:2]
    creds = Credentials(f"http://{host}:{port}", TOKEN, None, 30.0, "test")
    sleeps: list[float] = []
    with ApiClient(creds, timeout=0.1, sleep=sleeps.append, max_tries=4) as api:
        assert api.get_status("j") == "succeeded"
        assert api.stats.snapshot()["retries"] == 3
    assert len(sleeps) == 3


# ----------------------------------------------------------------------------- resolving


def archive_job(cloud: Cloud, n: int = 1) -> dict:
    job_id = f"job-{n:03d}"
    info = {
        "input": cloud.add_archive(job_id, "input", {"program": ["OPENQASM 3;"]}),
        "result": cloud.add_archive(job_id, "result", {"sampling": {"counts": {"00": 3}}}),
        "transpile_result": cloud.add_archive(job_id, "transpile_result", {"stats": {}}),
        "combined_program": cloud.add_archive(job_id, "combined_program", "OPENQASM 3; // all"),
        "sse_log": f"{STORAGE}/{job_id}/sse_log.zip?X-Amz-Signature=SIG0",
        "message": "https://docs.example.com is where the error is explained",
    }
    record = job(n, job_info=info)
    cloud.jobs.append(record)
    return cloud.serve(record)


def test_archive_urls_are_replaced_by_their_decoded_content() -> None:
    cloud = Cloud()
    listed = archive_job(cloud)
    api, adapter, _ = make_api(cloud)
    resolved = resolve_job(api, listed)
    assert resolved == {
        **listed,
        "job_info": {
            "input": {"program": ["OPENQASM 3;"]},
            "result": {"sampling": {"counts": {"00": 3}}},
            "transpile_result": {"stats": {}},
            "combined_program": "OPENQASM 3; // all",
            "sse_log": listed["job_info"]["sse_log"],
            "message": listed["job_info"]["message"],
        },
    }
    assert listed["job_info"]["result"].startswith(STORAGE)  # the input is not modified
    assert len(adapter.sent) == 4
    assert api.stats.snapshot()["requests"]["storage"] == 4


def test_legacy_inline_job_info_is_left_as_it_is() -> None:
    legacy = job(1, job_info={"program": ["OPENQASM 3;"], "result": {"sampling": {"counts": {}}}})
    api, adapter, _ = make_api(script(reply({}, 500)))
    assert resolve_job(api, legacy) == legacy
    assert adapter.sent == []


def test_expired_archive_url_is_refetched() -> None:
    cloud = Cloud()
    listed = archive_job(cloud)
    cloud.generation, cloud.expire_old = 1, True
    api, adapter, _ = make_api(cloud)
    resolved = resolve_job(api, listed)
    assert resolved["job_info"]["result"] == {"sampling": {"counts": {"00": 3}}}
    assert f"{BASE}/jobs/job-001" in [s.url for s in adapter.sent]


def test_archive_still_refused_after_two_refreshes_is_an_archive_error() -> None:
    cloud = Cloud()
    listed = archive_job(cloud)
    cloud.storage_hook = lambda path: Canned(403)
    api, adapter, _ = make_api(cloud)
    with pytest.raises(JobError) as info:
        resolve_job(api, listed)
    assert (info.value.job_id, info.value.stage) == ("job-001", "archive")
    assert info.value.problem == (
        "input, combined_program, result, transpile_result: the presigned URL was still refused "
        "(HTTP 403) after 2 refreshes"
    )
    assert [s.url for s in adapter.sent].count(f"{BASE}/jobs/job-001") == 2


def test_failed_refetch_is_a_fetch_error() -> None:
    cloud = Cloud()
    listed = archive_job(cloud)
    cloud.jobs.clear()  # deleted meanwhile: GET /jobs/{id} answers 404
    cloud.storage_hook = lambda path: Canned(403)
    api, _, _ = make_api(cloud)
    with pytest.raises(JobError) as info:
        resolve_job(api, listed)
    assert (info.value.stage, info.value.problem) == (
        "fetch",
        f"GET {BASE}/jobs/job-001: HTTP 404: not found",
    )


def test_malformed_archive_is_an_archive_error() -> None:
    cloud = Cloud()
    listed = archive_job(cloud)
    cloud.archives["job-001/result.zip"] = zipped("result.json", b"[1, 2]")
    api, _, _ = make_api(cloud)
    with pytest.raises(JobError) as info:
        resolve_job(api, listed)
    assert (info.value.stage, info.value.problem) == (
        "archive",
        "result archive: the JSON root is an array, expected an object",
    )


# ----------------------------------------------------------------------------- fetch_jobs


def test_fetch_jobs_yields_in_input_order_whatever_finishes_first() -> None:
    cloud = Cloud()
    listed = [archive_job(cloud, n) for n in range(1, 6)]
    last_started = threading.Event()

    def hold_first(path: str) -> None:
        if path.startswith("job-005/"):
            last_started.set()
        if path.startswith("job-001/"):
            assert last_started.wait(5)  # job 1 finishes only after job 5 has started

    cloud.storage_hook = hold_first
    api, _, _ = make_api(cloud)
    results = list(fetch_jobs(api, listed, workers=5))
    assert [r.job_id for r in results] == ids(listed)
    assert all(r.error is None and r.job["job_info"]["input"] for r in results)


def test_fetch_jobs_keeps_work_in_flight_bounded() -> None:
    cloud = Cloud()
    listed = [archive_job(cloud, n) for n in range(1, 61)]
    pulled = 0

    def feed() -> Iterator[dict]:
        nonlocal pulled
        for record in listed:
            pulled += 1
            yield record

    api, _, _ = make_api(cloud)
    ahead = []
    for received, _ in enumerate(fetch_jobs(api, feed(), workers=2), start=1):
        ahead.append(pulled - received)
    assert max(ahead) <= 2 * 4
    assert received == 60


def test_fetch_jobs_records_per_job_errors_and_goes_on() -> None:
    cloud = Cloud()
    good, broken, unreachable = (archive_job(cloud, n) for n in (1, 2, 3))
    cloud.archives["job-002/result.zip"] = b"not a zip"
    cloud.storage_hook = lambda path: Canned(500) if path.startswith("job-003/") else None
    registered = {"job_id": "reg-1", "status": "registered"}
    api, _, _ = make_api(cloud, max_tries=2)
    results = list(fetch_jobs(api, [good, broken, registered, {"name": "no id"}, unreachable]))
    assert [(r.job_id, r.error and r.error.stage) for r in results] == [
        ("job-001", None),
        ("job-002", "archive"),
        ("reg-1", None),
        (None, "list"),
        ("job-003", "archive"),
    ]
    assert results[2] == FetchedJob("reg-1", registered, None)
    assert "failed after 2 tries: HTTP 500" in results[4].error.problem
    assert "SIG0" not in results[4].error.problem


def test_auth_error_stops_fetch_jobs() -> None:
    cloud = Cloud()
    listed = [archive_job(cloud, n) for n in range(1, 4)]
    cloud.storage_hook = lambda path: Canned(403)  # expired: forces GET /jobs/{id} ...

    def handler(request: Any) -> Any:
        if request.url.startswith(BASE):
            return reply({"message": "Unauthorized"}, 401)  # ... which is refused
        return cloud(request)

    api, _, _ = make_api(handler)
    with pytest.raises(AuthError):
        list(fetch_jobs(api, listed, workers=2))


def test_fetch_jobs_without_resolving_passes_jobs_through() -> None:
    cloud = Cloud()
    listed = [archive_job(cloud, n) for n in range(1, 3)]
    api, adapter, _ = make_api(cloud)
    assert [r.job for r in fetch_jobs(api, listed, resolve=False)] == listed
    assert adapter.sent == []


# ----------------------------------------------------------------------------- other endpoints


def test_devices_sselog_and_status_endpoints() -> None:
    calibration = json.dumps({"qubits": [{"id": 0, "fidelity": 0.99}]})
    device_zip = zipped("device_info.json", calibration.encode())

    def handler(request: Any) -> Canned:
        path = urlsplit(request.url).path
        if path == "/v1/devices":
            return reply([
                {"device_id": "SVSim", "device_info": "{}"},
                {"device_id": "Kawasaki", "device_info": f"{STORAGE}/kawasaki.zip?X-Amz-Signature=S"},
            ])
        if path == "/bucket/kawasaki.zip":
            return Canned(200, device_zip)
        if path.endswith("/sselog"):
            return reply({"file": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==", "file_name": "log.zip"})
        return reply({"job_id": "j", "status": "ready"})

    api, _, _ = make_api(handler)
    assert api.get_devices() == [
        {"device_id": "SVSim", "device_info": "{}"},
        {"device_id": "Kawasaki", "device_info": calibration},
    ]
    # A job without an sse_log URL (an older server): the endpoint, named as oqtopus-client 1.3.0 names it.
    assert api.get_sselog("j") == {"file": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==", "file_name": "sselog_j.log"}
    assert api.get_status("j") == "ready"
    assert api.stats.snapshot()["requests"] == {
        "list": 0, "job": 2, "devices": 1, "sselog": 1, "storage": 1, "user": 0,
    }
