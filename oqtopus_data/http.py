"""The transport under ApiClient: one `requests.Session`, and the only retry policy (`classify`).

Every request goes through `Transport.get`, which reads the whole body inside the retry loop so
that a body cut short is retried like a dropped connection. Messages name the endpoint as
scheme://host/path: never the token, never a presigned URL's query string.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from oqtopus_data.errors import ApiError, AuthError, OqtopusDataError

KINDS = ("list", "job", "devices", "sselog", "storage")
CHUNK = 64 * 1024
ERROR_BODY_LIMIT = 64 * 1024
MESSAGE_LIMIT = 200
AUTH_HINT = "check OQTOPUS_API_TOKEN or the profile's api_token"


class DownloadTooLarge(ApiError):
    """A body went past the size limit; never retried."""


class _BodyCutShort(Exception):
    """The body ended before its Content-Length, or the JSON in it does not parse."""


@dataclass(frozen=True)
class Reply:
    """A successful response with its body read in full (`data` is the decoded JSON, if asked)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    data: Any = None


@dataclass(frozen=True)
class Verdict:
    """What to do with one attempt: return it, retry (after `wait` if the server said), or fail."""

    action: Literal["ok", "retry", "fail"]
    problem: str = ""
    wait: float | None = None
    error: OqtopusDataError | None = None


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


def redact_url(url: str) -> str:
    """scheme://host/path of a URL: drops user info, query and fragment (presigned signatures)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


_QUERY = re.compile(r"\?[^\s'\"<>)]+")


def scrub(text: str, token: str | None = None) -> str:
    """Remove query strings and the token from text bound for a message, and shorten it."""
    if token:
        # Exception texts may quote the token escaped (repr), so remove both spellings.
        text = text.replace(token, "<token>").replace(repr(token)[1:-1], "<token>")
    text = _QUERY.sub("", text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP-date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unusable


def classify(
    outcome: requests.Response | BaseException,
    *,
    label: str,
    api: bool,
    now: datetime,
    token: str | None = None,
) -> Verdict:
    """The retry policy: 2xx ok; 408/429/5xx and network trouble retried; the rest fatal."""
    if isinstance(outcome, BaseException):
        return _classify_exception(outcome, label=label, token=token)
    status = outcome.status_code
    if 200 <= status < 300:
        return Verdict("ok")
    if status in (408, 429) or status >= 500:
        wait = retry_after_seconds(outcome.headers.get("Retry-After"), now)
        return Verdict("retry", f"HTTP {status}", wait=wait)
    if api and status in (401, 403):
        return Verdict(
            "fail",
            error=AuthError(
                f"The OQTOPUS API refused the credentials (HTTP {status} on {label}): {AUTH_HINT}."
            ),
        )
    message = _server_message(outcome, token) if api else ""
    if not api and status == 403:
        message = "the presigned URL was refused (expired?)"
    detail = f": {message}" if message else ""
    return Verdict("fail", error=ApiError(f"{label}: HTTP {status}{detail}", status=status))


def _classify_exception(exc: BaseException, *, label: str, token: str | None) -> Verdict:
    reason = scrub(str(exc) or type(exc).__name__, token)
    if isinstance(exc, requests.exceptions.SSLError):
        return Verdict("fail", error=ApiError(f"{label}: TLS verification failed ({reason})"))
    if isinstance(exc, requests.exceptions.Timeout):
        return Verdict("retry", f"timed out ({reason})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return Verdict("retry", f"connection failed ({reason})")
    if isinstance(exc, _BodyCutShort | requests.exceptions.ChunkedEncodingError):
        return Verdict("retry", f"the body was cut short ({reason})")
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return Verdict("retry", f"the body could not be decoded ({reason})")
    if isinstance(exc, requests.RequestException):
        return Verdict("fail", error=ApiError(f"{label}: {reason}"))
    raise exc


def _server_message(response: requests.Response, token: str | None) -> str:
    """The `message` of an API error body ({"message": "..."}), shortened; '' when there is none."""
    try:
        payload = json.loads(response.content[:ERROR_BODY_LIMIT])
    except ValueError:
        return ""
    message = payload.get("message") if isinstance(payload, dict) else None
    return scrub(message, token) if isinstance(message, str) else ""


class _Session(requests.Session):
    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """Like Authorization, the token header must not follow a redirect to another host."""
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            prepared_request.headers.pop("q-api-token", None)


class Transport:
    """GETs with one timeout, one pool and one retry loop, shared by all worker threads."""

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
    ) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self._token = token
        self._proxies = {"http": proxy, "https": proxy} if proxy else None
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.stats = Stats()
        self.session = _Session()
        self.session.verify = True
        if not _proxy_or_netrc():
            # With trust_env, requests re-reads the proxy and CA variables and ~/.netrc on every request (a tenth
            # of an export's CPU). Read the CA bundle variable once here, as requests would, and skip the rest.
            self.session.trust_env = False
            self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.headers["User-Agent"] = user_agent
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def get(
        self,
        url: str,
        *,
        kind: str,
        params: Mapping[str, Any] | None = None,
        limit: int | None = None,
        want_json: bool = False,
        tries: int | None = None,
    ) -> Reply:
        """GET `url` with retries (`tries` attempts at most, default max_tries); API kinds carry the token,
        "storage" (presigned URLs) not."""
        api = kind != "storage"
        label = f"GET {redact_url(url)}"
        headers = {"q-api-token": self._token, "Accept": "application/json"} if api else {}
        verdict = Verdict("retry")
        status: int | None = None
        tries = self.max_tries if tries is None else max(1, tries)
        for attempt in range(1, tries + 1):
            if attempt > 1:
                self._sleep(self._delay(attempt - 1, verdict.wait))
            self.stats.count(kind, retry=attempt > 1)
            outcome: requests.Response | BaseException
            reply: Reply | None = None
            status = None
            try:
                response = self.session.get(
                    url,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                    proxies=self._proxies,
                    stream=True,
                )
            except requests.RequestException as exc:
                outcome = exc
            else:
                outcome = response
                try:
                    reply = self._read(response, label=label, limit=limit, want_json=want_json)
                    status = response.status_code
                except (requests.RequestException, _BodyCutShort) as exc:
                    outcome = exc
                finally:
                    response.close()
            verdict = classify(outcome, label=label, api=api, now=self._clock(), token=self._token)
            if verdict.action == "ok" and reply is not None:
                return reply
            if verdict.action == "fail":
                assert verdict.error is not None
                raise verdict.error
        raise ApiError(
            f"{label} failed after {tries} {'try' if tries == 1 else 'tries'}: {verdict.problem}", status=status
        )

    def _delay(self, retry: int, wait: float | None) -> float:
        """Retry-After when the server gave one, else full jitter; clamped to max_backoff."""
        if wait is not None:
            return min(wait, self.max_backoff)
        return self._rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** (retry - 1)))

    def _read(
        self, response: requests.Response, *, label: str, limit: int | None, want_json: bool
    ) -> Reply:
        ok = 200 <= response.status_code < 300
        cap = limit if ok else ERROR_BODY_LIMIT
        declared = _content_length(response)
        if ok and cap is not None and declared is not None and declared > cap:
            raise DownloadTooLarge(f"{label}: {declared} bytes is over the limit of {_size(cap)}")
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_content(CHUNK):
            total += len(chunk)
            self.stats.add_bytes(len(chunk))
            if cap is not None and total > cap:
                if not ok:
                    break  # an error body only needs its beginning
                raise DownloadTooLarge(f"{label}: the body is over the limit of {_size(cap)}")
            chunks.append(chunk)
        body = b"".join(chunks)
        response._content = body  # lets classify() read error bodies
        if ok and declared is not None and total < declared and not _encoded(response):
            raise _BodyCutShort(f"got {total} of {declared} bytes")
        data = None
        if ok and want_json:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise _BodyCutShort(f"the JSON does not parse: {exc}") from None
        return Reply(response.status_code, response.headers, body, data)


def _proxy_or_netrc() -> bool:
    """Whether proxy variables or a netrc file could change a request (requests then needs trust_env)."""
    if urllib.request.getproxies():
        return True
    netrc = os.environ.get("NETRC")
    candidates = [netrc] if netrc else [os.path.expanduser("~/.netrc"), os.path.expanduser("~/_netrc")]
    return any(os.path.exists(path) for path in candidates)


def _content_length(response: requests.Response) -> int | None:
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _encoded(response: requests.Response) -> bool:
    return response.headers.get("Content-Encoding", "identity").lower() != "identity"


def _size(nbytes: int) -> str:
    return f"{nbytes // 2**20} MiB" if nbytes % 2**20 == 0 and nbytes else f"{nbytes} bytes"

