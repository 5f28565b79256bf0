"""The transport's one retry policy: which outcomes of a GET are retried (`classify`), and how long a retry waits
(`Backoff`: the server's Retry-After, else full jitter, clamped; `pace.Pace` keeps throttled workers in step).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from oqtopus_data.client.body import ERROR_BODY_LIMIT
from oqtopus_data.client.curl import CurlResponse
from oqtopus_data.client.neterrors import NetworkError, TlsRefused
from oqtopus_data.client.pace import Pace
from oqtopus_data.errors import ApiError, AuthError, OqtopusDataError
from oqtopus_data.redact import scrub
from oqtopus_data.times import to_utc

THROTTLED = frozenset({429, 503})  # statuses that mean "too many requests" (pace.Pace)
NOTICE_AFTER = 3.0  # retries that wait at least this long are announced through `notice`
AUTH_HINT = "check OQTOPUS_API_TOKEN or the profile's api_token"


@dataclass(frozen=True)
class Verdict:
    """What to do with one attempt: return it, retry (after `wait` if the server said), or fail."""

    action: Literal["ok", "retry", "fail"]
    problem: str = ""
    wait: float | None = None
    error: OqtopusDataError | None = None
    throttled: bool = False  # the server asked for fewer requests (429, or 503: S3's SlowDown): slows every worker


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
        seconds = (to_utc(when) - now).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unusable


def classify(
    outcome: CurlResponse | BaseException,
    *,
    label: str,
    api: bool,
    now: datetime,
    token: str | None = None,
    auth: bool | None = None,
) -> Verdict:
    """The retry policy: 2xx ok; 408/429/5xx and network trouble retried; the rest fatal.

    On an API endpoint a 401 always means refused credentials (AuthError); a 403 only where `auth` says so
    (default: every API endpoint): elsewhere it is an ApiError with status 403, that job's error."""
    if isinstance(outcome, BaseException):
        return _classify_exception(outcome, label=label, token=token)
    status = outcome.status_code
    if 200 <= status < 300:
        return Verdict("ok")
    if status in (408, 429) or status >= 500:
        wait = retry_after_seconds(outcome.headers.get("Retry-After"), now)
        return Verdict("retry", f"HTTP {status}", wait=wait, throttled=status in THROTTLED)
    if api and (status == 401 or (status == 403 and (api if auth is None else auth))):
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
    if not isinstance(exc, NetworkError):
        raise exc
    reason = scrub(str(exc) or type(exc).__name__, token)
    if exc.retry:
        return Verdict("retry", f"{exc.problem} ({reason})" if exc.problem else reason)
    if isinstance(exc, TlsRefused):
        return Verdict("fail", error=ApiError(f"{label}: TLS verification failed ({reason})"))
    return Verdict("fail", error=ApiError(f"{label}: {reason}"))


def _server_message(response: CurlResponse, token: str | None) -> str:
    """The `message` of an API error body ({"message": "..."}), shortened; '' when there is none."""
    try:
        payload = json.loads(response.content[:ERROR_BODY_LIMIT])
    except ValueError:
        return ""
    message = payload.get("message") if isinstance(payload, dict) else None
    return scrub(message, token) if isinstance(message, str) else ""


@dataclass(frozen=True)
class Backoff:
    """The wait before a retry: `backoff` doubled per retry with full jitter, at most `max_backoff` (as is a
    Retry-After); `notice`, when given, hears about waits of NOTICE_AFTER seconds or more."""

    backoff: float
    max_backoff: float
    pace: Pace
    sleep: Callable[[float], None]
    rng: random.Random
    notice: Callable[[str], None] | None = None

    def wait(self, attempt: int, tries: int, label: str, verdict: Verdict, give_up: float) -> bool:
        """Wait before a retry; False (without waiting) when the retry could not start before `give_up`."""
        delay = self.delay(attempt - 1, verdict.wait, verdict.throttled)
        if time.monotonic() + delay >= give_up:
            return False
        if self.notice is not None and delay >= NOTICE_AFTER:
            self.notice(f"{label}: {verdict.problem}, retrying in {delay:.0f} s (try {attempt} of {tries})")
        self.sleep(delay)
        return True

    def delay(self, retry: int, wait: float | None, throttled: bool = False) -> float:
        """Retry-After when the server gave one, else full jitter; clamped to max_backoff. A throttled request
        without Retry-After waits only for its turn once the shared pace is set (and above its floor)."""
        if wait is not None:
            return min(wait, self.max_backoff)
        if throttled and self.pace.rate is not None and not self.pace.at_floor:
            return 0.0
        return self.rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** (retry - 1)))
