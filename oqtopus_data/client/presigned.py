"""Downloads at presigned URLs: a job's archives, renewed by a fresh GET /jobs/{id} when they expire, and a
device's `device_info`.

The functions take the client (`api.ApiClient`, which imports this module: `Client` names what they use of it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from oqtopus_data.client.archives import ArchiveError, is_url, read_entry, url_problem
from oqtopus_data.client.http import Transport
from oqtopus_data.client.limits import Hold
from oqtopus_data.errors import ApiError

#: Presigned URLs refused (403) while they should still be valid are renewed by a fresh GET /jobs/{id} at most
#: this many times per job; URLs refused after their stated expiry are renewed up to MAX_RENEWALS times in all.
MAX_URL_REFRESHES = 2
MAX_RENEWALS = 8
#: A presigned URL that expires within this many seconds is renewed before it is tried.
EXPIRY_MARGIN = 1.0

_T = TypeVar("_T")


class DownloadFailed(ApiError):
    """A presigned URL's download failed for a reason other than its expiry; `key` names the archive."""

    def __init__(self, key: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.key = key


class RefreshFailed(ApiError):
    """GET /jobs/{id}, asked for fresh presigned URLs, failed (`status` says how: 404 when the job is gone)."""


class ForeignBody(ApiError):
    """GET /jobs/{id} answered with a body whose job_id is not the one asked for (`ApiClient.get_job` raises it;
    it lives here because a renewal must tell it from a failed renewal)."""


class Client(Protocol):
    """What these downloads use of `api.ApiClient`."""

    transport: Transport
    archive_limit: int

    def get_job(self, job_id: str) -> dict:
        """One job, with fresh presigned URLs in its job_info."""
        ...

    def download(self, url: str, *, limit: int | None = None, hold: Hold | None = None) -> bytes | bytearray:
        """The body at a presigned URL, its bytes reserved in `hold`."""
        ...


def presigned(
    client: Client, job_id: str | None, job: Mapping[str, Any], keys: Sequence[str],
    read: Callable[[str, bytearray, Hold], _T],
) -> tuple[Mapping[str, Any], dict[str, _T]]:
    """(the job whose URLs were used, {key: `read(key, body, hold)`}) for each of `keys` whose job_info value
    is a presigned URL; the one place presigned URLs are renewed.

    One fresh GET /jobs/{id} renews every expired URL of the job at once. A URL whose stated expiry
    (X-Amz-Date + X-Amz-Expires, on the server's clock) is near is renewed before it is tried, and a renewed
    URL does not wait out a shared pause (it would expire meanwhile). A URL refused (403) after its stated
    expiry costs a renewal, not an error; a job fails only when URLs that should still be valid are refused
    more than MAX_URL_REFRESHES times (or after MAX_RENEWALS renewals whatever the cause). Raises ApiError
    for a malformed URL, `RefreshFailed` when GET /jobs/{id} fails, and `DownloadFailed` for
    any other failure of a download, with its status. `read` runs with the body's bytes
    reserved in `hold`."""
    transport = client.transport
    decoded: dict[str, _T] = {}
    refused = renewals = 0
    fresh = False  # whether `job` was just fetched to renew its URLs
    while True:
        info = job.get("job_info")
        if not isinstance(info, Mapping):
            raise RefreshFailed(f"GET /jobs/{job_id}: the job came back without job_info")
        stale: list[str] = []
        refused_now = False
        for key in keys:
            url = info.get(key)
            if key in decoded or not is_url(url):
                continue
            if (problem := url_problem(key, url)) is not None:
                raise ApiError(problem)
            expiry = expires_at(url, transport.server_clock.now)
            if not fresh and expiry is not None and expiry - time.monotonic() < EXPIRY_MARGIN:
                stale.append(key)  # about to expire: renew first rather than spend a request on a 403
                continue
            try:
                with transport.budget.hold() as hold:
                    body = transport.get(url, kind="storage", limit=client.archive_limit, hold=hold,
                                         pause=not fresh).body
                    decoded[key] = read(key, body, hold)
                    del body
            except ApiError as exc:
                if exc.status != 403:
                    raise DownloadFailed(key, str(exc), status=exc.status) from None
                stale.append(key)
                refused_now |= expiry is None or expiry > time.monotonic()  # refused while still valid
        refused += refused_now
        if not stale:
            return job, decoded
        if not isinstance(job_id, str):
            raise ApiError(f"{', '.join(stale)}: the presigned URL was refused (HTTP 403)", status=403)
        if refused > MAX_URL_REFRESHES or renewals >= MAX_RENEWALS:
            raise ApiError(f"{', '.join(stale)}: the presigned URL was still refused (HTTP 403) after "
                           f"{renewals} refreshes", status=403)
        try:
            job = client.get_job(job_id)
        except ForeignBody:
            raise  # another job's body: that job's error (stage `body`), not a failed renewal
        except ApiError as exc:
            raise RefreshFailed(str(exc), status=exc.status) from None
        renewals += 1
        fresh = True


def expires_at(url: str, server_now: Callable[[], datetime]) -> float | None:
    """The monotonic time a presigned URL stops working, from its X-Amz-Date and X-Amz-Expires read on the
    server's clock (`server_now`: its Date header); None when the URL does not say."""
    date, expires = _query_value(url, "X-Amz-Date="), _query_value(url, "X-Amz-Expires=")
    if date is None or expires is None:
        return None
    try:  # 20240501T120000Z, read without strptime (which costs more than the rest of this function)
        signed = datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), int(date[9:11]), int(date[11:13]),
                          int(date[13:15]), tzinfo=UTC)
        lifetime = float(expires)
    except ValueError:
        return None
    return time.monotonic() + (signed - server_now()).total_seconds() + lifetime


def _query_value(url: str, prefix: str) -> str | None:
    """The raw value of one query parameter (`prefix` is "name="), None when absent."""
    start = url.find("?")
    while start >= 0:
        if url.startswith(prefix, start + 1):
            end = url.find("&", start + 1)
            return url[start + 1 + len(prefix): end if end >= 0 else len(url)]
        start = url.find("&", start + 1)
    return None


def resolve_device(client: Client, device: Any) -> dict:
    """`device` with a presigned `device_info` URL replaced by the JSON text it points to (a zip's one entry, or
    the body itself); other devices as they are."""
    if not isinstance(device, dict) or not is_url(device.get("device_info")):
        return device
    name = f"device {device.get('device_id')} device_info"
    problem = url_problem("device_info", device["device_info"])
    if problem is not None:
        raise ApiError(f"{name}: {problem}")
    with client.transport.budget.hold() as hold:
        data = client.download(device["device_info"], limit=client.archive_limit, hold=hold)
        try:
            if data.startswith(b"PK\x03\x04"):
                data = read_entry(data, key=name, limit=client.archive_limit, reserve=hold.grow)
            text = data.decode("utf-8-sig")
        except (ArchiveError, UnicodeDecodeError) as exc:
            raise ApiError(f"{name}: unreadable ({exc})") from None
    return {**device, "device_info": text}
