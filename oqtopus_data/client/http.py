"""The transport under ApiClient: every GET through libcurl (`curl`), through the proxy decided for its URL
(`Proxies`), redirects followed within the attempt (the token only to the origin first asked), and the only retry
policy (`retry`).

Every request goes through `Transport.get`, which reads the whole body inside the retry loop so that a body cut
short is retried like a dropped connection. Each attempt has an overall deadline (a small multiple of the
configured timeout, plus time by body size), each request with its retries a total time (`patience`), each body a
size cap, and bodies reserve their bytes from one budget shared by all threads (`limits`). Messages name the endpoint as
scheme://host/path: never the token, never a presigned URL's signature, never a proxy's password (`redact`).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, quote, urlencode, urlsplit

import certifi

from oqtopus_data.client.body import ACCEPT_ENCODING, BadBody, DownloadTooLarge, overdue, read_body
from oqtopus_data.client.curl import Curl, CurlResponse
from oqtopus_data.client.limits import (
    MIN_THROUGHPUT,
    Attempt,
    ByteBudget,
    Deadline,
    Hold,
    return_large_buffers_to_the_os,
)
from oqtopus_data.client.neterrors import NetworkError, TooManyRedirects
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
MAX_REDIRECTS = 30  # redirects followed within one attempt, as requests allowed
#: Characters of a URL sent as they are; any other is percent-encoded (UTF-8) once, as requests sent URLs.
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
DEFAULT_PORTS = {"http": 80, "https": 443}


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


class Proxies:
    """The proxy of each URL, decided in one place: the configured one; else, as requests decided, the
    environment's (https_proxy, http_proxy, all_proxy, either case) unless no_proxy names the host; else none ("").
    The environment is read once, when the transport is made; the choice is kept per scheme and host."""

    def __init__(self, configured: str | None) -> None:
        self.configured = _with_port(configured) if configured else ""
        self._environment = {} if configured else urllib.request.getproxies()
        self._chosen: dict[tuple[str, str], str] = {}
        self.per_url = bool(self._environment)  # whether the choice depends on the URL (else: `configured`)

    def for_url(self, parts: SplitResult) -> str:
        """The proxy URL for a GET of `parts` (a split URL), "" for a direct connection."""
        if not self.per_url:
            return self.configured
        key = (parts.scheme, parts.netloc)
        chosen = self._chosen.get(key)
        if chosen is None:
            proxy = self._environment.get(parts.scheme) or self._environment.get("all") or ""
            host = parts.netloc.rpartition("@")[2]
            if proxy and urllib.request.proxy_bypass_environment(host, self._environment):
                proxy = ""
            chosen = self._chosen[key] = _with_port(proxy) if proxy else ""
        return chosen


class Transport:
    """GETs with one timeout, one set of kept-alive connections, one byte budget and one retry loop, shared by all
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
        self.proxies = Proxies(proxy)
        self._curl = Curl(timeout=timeout, ca=ca_bundle())
        common = [f"User-Agent: {user_agent}", f"Accept-Encoding: {ACCEPT_ENCODING}"]
        self._storage_lines = [*common, "Accept: */*"]  # presigned URLs: no token
        self._api_lines = [*common, "Accept: application/json"]  # the API's host after a redirect elsewhere
        self._token_lines = [*self._api_lines, f"q-api-token: {token}"]
        self.server_clock = ServerClock(self._clock)  # the Date headers of API answers

    def close(self) -> None:
        """Close the pooled connections."""
        self._curl.close()

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
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        url = _wire_url(url)
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
            outcome, reply, granted = self._attempt(url, api, label, limit, want_json, hold)
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
        self, url: str, api: bool, label: str, limit: int | None, want_json: bool, hold: Hold,
    ) -> tuple[CurlResponse | BaseException, Reply | None, float]:
        """One request under the deadline: (the response or the exception, the reply when it was read, the seconds
        its body's size added to its deadline)."""
        response: CurlResponse | None = None
        outcome: CurlResponse | BaseException
        reply: Reply | None = None
        watch = self.deadline.attempt()
        try:
            response = self._send(url, api, watch)
            outcome = response
            body, data = read_body(response, label=label, limit=limit, want_json=want_json, watch=watch,
                                   deadline=self.deadline, hold=hold, count=self.stats.add_bytes)
            if not 200 <= response.status_code < 300:
                response._content = bytes(body)  # lets classify() read error bodies
            reply = Reply(response.status_code, response.headers, body, data)
        except NetworkError as exc:  # past the deadline, whatever the transfer made of it, the cause is the deadline
            outcome = overdue(watch) if watch.expired else exc
        finally:
            if response is not None:
                response.close()
        return outcome, reply, watch.allowed - watch.floor

    def _send(self, url: str, api: bool, watch: Attempt) -> CurlResponse:
        """The response to one GET, its body not read yet, after the redirects libcurl resolved (at most
        MAX_REDIRECTS). The token goes only to the origin first asked (or its https upgrade), as requests sent it."""
        first = parts = None  # split only when needed: for the environment's proxies, or on a redirect
        token = api
        for _ in range(MAX_REDIRECTS + 1):
            lines = self._token_lines if token else self._api_lines if api else self._storage_lines
            proxy = self.proxies.for_url(parts or urlsplit(url)) if self.proxies.per_url else self.proxies.configured
            response = self._curl.get(url, lines, watch, proxy)
            if response.location is None:
                return response
            first = first or urlsplit(url)
            url = response.location
            parts = urlsplit(url)
            token = token and _same_origin(first, parts)  # once dropped, never sent again
        raise TooManyRedirects(f"gave up after {MAX_REDIRECTS} redirects (the last to {redact_url(url)})")


def ca_bundle() -> str:
    """The certificate authorities TLS servers are checked against: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or
    SSL_CERT_FILE when set (as requests and curl read them), else certifi's bundle (what requests used)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if value := os.environ.get(name):
            return value
    return certifi.where()


def _same_origin(first: SplitResult, target: SplitResult) -> bool:
    """Whether `target` is the origin of `first` (scheme, host, port), or its upgrade from http to https."""
    if first.hostname != target.hostname:
        return False
    try:
        old, new = first.port or DEFAULT_PORTS.get(first.scheme), target.port or DEFAULT_PORTS.get(target.scheme)
    except ValueError:
        return False
    if first.scheme == target.scheme:
        return old == new
    return (first.scheme, old, target.scheme, new) == ("http", 80, "https", 443)


def _with_port(proxy: str) -> str:
    """A proxy URL with its port written out: libcurl's default (1080) is not requests' (80 for http)."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port
    except ValueError:
        return proxy
    if port is not None or parts.scheme not in DEFAULT_PORTS:
        return parts.geturl()
    return parts._replace(netloc=f"{parts.netloc}:{DEFAULT_PORTS[parts.scheme]}").geturl()


def _wire_url(url: str) -> str:
    """The URL as it goes on the wire: characters a URL cannot hold percent-encoded once (UTF-8), a host of
    non-ASCII letters in IDNA."""
    if not url.isascii():
        parts = urlsplit(url)
        user, at, host = parts.netloc.rpartition("@")
        if not host.isascii():
            with contextlib.suppress(UnicodeError):  # else libcurl says the URL is malformed
                host = ".".join(label.encode("idna").decode("ascii") if not label.isascii() else label
                                for label in host.split("."))
            url = parts._replace(netloc=f"{user}{at}{host}").geturl()
    return quote(url, safe=URL_SAFE)
