"""The transport under ApiClient: direct GETs through libcurl (`curl`), proxies and redirects through one
`requests.Session`, and the only retry policy (`retry`).

Every request goes through `Transport.get`, which reads the whole body inside the retry loop so that a body cut
short is retried like a dropped connection. Each attempt has an overall deadline (a small multiple of the
configured timeout, plus time by body size), each request with its retries a total time (`patience`), each body a
size cap, and bodies reserve their bytes from one budget shared by all threads (`limits`). Messages name the endpoint as
scheme://host/path: never the token, never a presigned URL's signature (`redact`).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from oqtopus_data.client.body import (
    ACCEPT_ENCODING,
    BadBody,
    BodyCutShort,
    DownloadTooLarge,
    Overdue,
    overdue,
    read_body,
)
from oqtopus_data.client.curl import Curl, Redirected
from oqtopus_data.client.limits import (
    MIN_THROUGHPUT,
    ByteBudget,
    Deadline,
    DeadlineAdapter,
    Hold,
    return_large_buffers_to_the_os,
)
from oqtopus_data.client.pace import Pace
from oqtopus_data.client.retry import Backoff, Verdict, classify, retry_after_seconds
from oqtopus_data.client.server_clock import ServerClock
from oqtopus_data.errors import ApiError
from oqtopus_data.redact import MESSAGE_LIMIT, redact_url, scrub

# Re-exported: their homes are `body`, `redact` and `retry`.
__all__ = ["MESSAGE_LIMIT", "BadBody", "DownloadTooLarge", "redact_url", "retry_after_seconds", "scrub"]

KINDS = ("list", "job", "devices", "sselog", "storage", "user")
#: Kinds whose 401/403 means the credentials are refused: the listing, the devices and the account. A 403 on one
#: job's endpoints is that job's error, and on storage it means an expired presigned URL.
AUTH_KINDS = frozenset({"list", "devices", "user"})
DEFAULT_BUDGET = 256 * 2**20  # bytes of bodies held at once; one job alone may pass it (limits.ByteBudget)
ATTEMPT_TIMEOUTS = 2.0  # an attempt's deadline, before its body's size adds to it, in configured timeouts
PATIENCE_ATTEMPTS = 5.0  # the time one request may take with its retries, in attempt deadlines
#: URLs sent through `curl` as they are: printable ASCII that needs no quoting (what requests would send unchanged).
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


@dataclass(frozen=True)
class Reply:
    """A successful response with its body read in full. With JSON asked for, `data` is the decoded value and
    `body` is empty (dropped before decoding, so that raw bytes and decoded values are never held together)."""

    status: int
    headers: Mapping[str, str]
    body: bytes | bytearray
    data: Any = None


class Stats:
    """Thread-safe counters read by the export summary and the benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.retries = 0
        self.bytes_downloaded = 0

    def count(self, kind: str, *, retry: bool = False) -> None:
        """Record one HTTP request (every attempt counts) of `kind`, and whether it was a retry."""
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.retries += retry

    def add_bytes(self, nbytes: int) -> None:
        """Record body bytes read."""
        with self._lock:
            self.bytes_downloaded += nbytes

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy: {"requests": {kind: n}, "retries": n, "bytes": n}."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "retries": self.retries,
                "bytes": self.bytes_downloaded,
            }


class _Session(requests.Session):
    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """Like Authorization, the token header must not follow a redirect to another host."""
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            prepared_request.headers.pop("q-api-token", None)


class Transport:
    """GETs with one timeout, one pool, one deadline watchdog, one byte budget and one retry loop, shared by all
    worker threads.

    `deadline` is the shortest overall time an attempt may take (default: ATTEMPT_TIMEOUTS x the configured
    `timeout`, so that the timeout bounds an API call whatever the server trickles); each byte declared or received
    adds 1/`min_throughput` seconds to it, so downloads get time by size. `patience` bounds the whole of one
    request, its retries and their waits included (default: PATIENCE_ATTEMPTS attempt deadlines and the backoff
    schedule, plus the time its bodies' sizes granted): a request that would pass it is given up.
    `budget` caps the body bytes held at once by every thread. `notice`, when given, hears about retries that
    wait NOTICE_AFTER seconds or more.
    """

    def __init__(
        self,
        *,
        token: str,
        proxy: str | None,
        pool_size: int,
        timeout: float,
        max_tries: int,
        backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None],
        user_agent: str,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        deadline: float | None = None,
        min_throughput: float = MIN_THROUGHPUT,
        budget: ByteBudget | None = None,
        notice: Callable[[str], None] | None = None,
        patience: float | None = None,
    ) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self._token = token
        self._proxies = {"http": proxy, "https": proxy} if proxy else None
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._clock = clock or (lambda: datetime.now(UTC))
        self.deadline = Deadline(ATTEMPT_TIMEOUTS * timeout if deadline is None else deadline, min_throughput)
        # Attempts' deadlines and the backoff's own schedule (whatever the timeout, the retries may back off).
        backoffs = sum(min(max_backoff, backoff * 2**retry) for retry in range(max_tries - 1))
        self.patience = PATIENCE_ATTEMPTS * self.deadline.floor + backoffs if patience is None else patience
        self.budget = budget or ByteBudget(DEFAULT_BUDGET)
        self.pace = Pace(sleep=sleep)
        self._backoff = Backoff(backoff, max_backoff, self.pace, sleep, rng or random.Random(), notice)
        return_large_buffers_to_the_os()
        self.stats = Stats()
        self.session = _Session()
        self.session.verify = True
        if not _proxy_or_netrc():
            # With trust_env, requests re-reads the proxy and CA variables and ~/.netrc on every request (a tenth
            # of an export's CPU). Read the CA bundle variable once here, as requests would, and skip the rest.
            self.session.trust_env = False
            self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept-Encoding"] = ACCEPT_ENCODING
        adapter = DeadlineAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # Direct connections go through libcurl (`curl`: a fifth of requests' CPU per GET); requests keeps proxies
        # (and the environment's settings, which need trust_env), redirects and adapters mounted by tests.
        self._curl = None if self._proxies or self.session.trust_env else Curl(
            timeout=timeout, verify=lambda: self.session.verify)
        self.server_clock = ServerClock(self._clock)  # the Date headers of API answers
        self._headers = {"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"}

    def close(self) -> None:
        """Close the pooled connections."""
        if self._curl is not None:
            self._curl.close()
        self.session.close()

    def _direct(self, url: str) -> bool:
        """Whether this GET goes through `curl` (a direct connection, our own adapter, a URL needing no quoting)."""
        return self._curl is not None and type(self.session.get_adapter(url)) is DeadlineAdapter and \
            PLAIN_URL.fullmatch(url) is not None

    def get(
        self,
        url: str,
        *,
        kind: str,
        params: Mapping[str, Any] | None = None,
        limit: int | None = None,
        want_json: bool = False,
        tries: int | None = None,
        hold: Hold | None = None,
        pause: bool = True,
    ) -> Reply:
        """GET `url` with retries (`tries` attempts at most, default max_tries); API kinds carry the token,
        "storage" (presigned URLs) not. The body's bytes are reserved in `hold` (the caller keeps them reserved
        while it decodes the body), or in a reservation of this call alone. `pause=False`: the request does not
        wait out a pause other requests' Retry-After set (a just-renewed presigned URL would expire meanwhile);
        it still keeps the pace and waits for its own."""
        if hold is None:
            with self.budget.hold() as own:
                return self.get(url, kind=kind, params=params, limit=limit, want_json=want_json, tries=tries,
                                hold=own, pause=pause)
        api = kind != "storage"
        label = f"GET {redact_url(url)}"
        headers = {"q-api-token": self._token, "Accept": "application/json"} if api else {}
        verdict = Verdict("retry")
        status: int | None = None
        failure: BaseException | None = None
        tries = self.max_tries if tries is None else max(1, tries)
        held = hold.nbytes
        served = 0.0 if pause else float("inf")  # the end of a shared pause this thread has already waited out
        began = time.monotonic()
        allowed = self.patience  # grows with the time each attempt's body size granted
        for attempt in range(1, tries + 1):
            if attempt > 1 and not self._backoff.wait(attempt, tries, label, verdict, began + allowed):
                raise ApiError(f"{label}: gave up after {time.monotonic() - began:.0f} s and {attempt - 1} "
                               f"{'try' if attempt == 2 else 'tries'}: {verdict.problem}", status=status
                               ) from failure
            sent = self.pace.turn(served)
            self.stats.count(kind, retry=attempt > 1)
            outcome, reply, granted = self._attempt(url, params, headers, label, limit, want_json, hold)
            allowed += granted
            status = reply.status if reply is not None else getattr(outcome, "status_code", None)
            verdict = classify(outcome, label=label, api=api, now=self._clock(), token=self._token,
                               auth=kind in AUTH_KINDS)
            if verdict.action == "ok" and reply is not None:
                self.pace.accepted()
                if api:
                    self.server_clock.heard(reply.headers.get("Date"))
                return reply
            if verdict.throttled:  # every worker pauses for its Retry-After; this one waits it out in _wait
                until = self.pace.throttled(sent, None if verdict.wait is None else min(verdict.wait,
                                                                                        self.max_backoff))
                served = max(served, until)
            hold.shrink_to(held)
            failure = outcome if isinstance(outcome, BaseException) else None
            if verdict.action == "fail":
                assert verdict.error is not None
                raise verdict.error from failure
        raise ApiError(
            f"{label} failed after {tries} {'try' if tries == 1 else 'tries'}: {verdict.problem}", status=status
        ) from failure

    def _attempt(
        self, url: str, params: Mapping[str, Any] | None, headers: dict[str, str], label: str,
        limit: int | None, want_json: bool, hold: Hold,
    ) -> tuple[requests.Response | BaseException, Reply | None, float]:
        """One request under the deadline: (the response or the exception, the reply when it was read, the seconds
        its body's size added to its deadline)."""
        response: requests.Response | None = None
        outcome: requests.Response | BaseException
        reply: Reply | None = None
        try:
            with self.deadline.attempt() as watch:
                try:
                    response = self._send(url, params, headers, watch)
                    outcome = response
                    body, data = read_body(response, label=label, limit=limit, want_json=want_json, watch=watch,
                                           deadline=self.deadline, hold=hold, count=self.stats.add_bytes)
                    if not 200 <= response.status_code < 300:
                        response._content = bytes(body)  # lets classify() read error bodies
                    reply = Reply(response.status_code, response.headers, body, data)
                except (requests.RequestException, BodyCutShort, Overdue) as exc:
                    outcome = exc
            if watch.expired:  # whatever the cut socket made the read raise, the cause is the deadline
                reply, outcome = None, overdue(watch)
        finally:
            if response is not None:
                response.close()
        return outcome, reply, watch.allowed - watch.floor

    def _send(self, url: str, params: Mapping[str, Any] | None, headers: dict[str, str], watch: Any) -> Any:
        """The response to one GET, its body not read yet: through `curl` when it can, else requests."""
        if self._curl is not None:
            full = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            if self._direct(full):
                try:
                    return self._curl.get(full, {**self._headers, **headers}, watch)
                except Redirected:
                    pass  # requests follows it (and drops the token on the way to another host)
        return self.session.get(url, params=params, headers=headers, timeout=self.timeout, proxies=self._proxies,
                                stream=True)


def _proxy_or_netrc() -> bool:
    """Whether proxy variables or a netrc file could change a request (requests then needs trust_env)."""
    if urllib.request.getproxies():
        return True
    netrc = os.environ.get("NETRC")
    candidates = [netrc] if netrc else [os.path.expanduser("~/.netrc"), os.path.expanduser("~/_netrc")]
    return any(os.path.exists(path) for path in candidates)
