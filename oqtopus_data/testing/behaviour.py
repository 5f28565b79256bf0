"""How the fake cloud answers GET /jobs: like the OQTOPUS Cloud server's code (two generations), or the older spec.

SERVER_API (the default) follows the paginated user router of oqtopus-cloud (commit 021f6d91):
fastapi-pagination pages (size 1..100, default 100, anything else a bare 500; `[]` past the end),
`start_time` / `end_time` on the hidden creation time with the bounds shifted by the Asia/Tokyo
offset, order (created_at, job_id), no `status` filter, SSE logs only as presigned archives.
NEWEST_API is the newest generation of that router: the same pages and order, but `start_time` /
`end_time` compared with `submitted_at` in UTC (a job never submitted has none, so a window never
lists it), a `status` filter (an unknown status is FastAPI's 422) and `q` searching job ids too.
SPEC_API keeps what the specification says: size 1..65535 (default 10, 400 beyond), the last page
repeated past the end, submitted_at windows and order, the `status` filter, no time-zone shift and
GET /jobs/{id}/sselog. Change one switch with `dataclasses.replace(SERVER_API, tz_shift=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from oqtopus_data.testing.catalog import JOB_FIELDS, STATUSES
from oqtopus_data.times import to_utc

INTERNAL_ERROR = "Internal Server Error"


@dataclass(frozen=True)
class ApiBehaviour:
    """One set of API behaviours; see SERVER_API and SPEC_API."""

    name: str
    order_by: str  # "created_at" (hidden, whole seconds) or "submitted_at"
    window_on: str  # what start_time/end_time compare with: "created_at" or "submitted_at"
    default_size: int
    max_size: int
    refusal: int  # the status of a refused size, page or time bound: 500 (server) or 400
    past_end: str  # a page past the last: "empty" ([]) or "repeat" (the last page again)
    status_filter: bool  # whether `status` is applied (the paginated router has no such parameter)
    q_matches_id: bool  # whether `q` also searches job ids (else name and description only)
    tz_shift: timedelta  # added to start_time/end_time before comparing (the server's JST bug)
    sselog_endpoint: bool  # GET /jobs/{id}/sselog answers (else 404; logs are presigned archives)
    strict: bool  # unknown `order` or `status`, `fields` over 1024 characters: 400 (else lenient)
    status_refusal: int = 400  # the status of an unknown `status` (FastAPI's own 422 for an enum parameter)


SERVER_API = ApiBehaviour(name="server", order_by="created_at", window_on="created_at", default_size=100,
                          max_size=100, refusal=500, past_end="empty", status_filter=False,
                          q_matches_id=False, tz_shift=timedelta(hours=9), sselog_endpoint=False,
                          strict=False)
NEWEST_API = replace(SERVER_API, name="newest", window_on="submitted_at", tz_shift=timedelta(0),
                     status_filter=True, status_refusal=422, q_matches_id=True)
SPEC_API = ApiBehaviour(name="spec", order_by="submitted_at", window_on="submitted_at",
                        default_size=10, max_size=65535, refusal=400, past_end="repeat",
                        status_filter=True, q_matches_id=True, tz_shift=timedelta(0),
                        sselog_endpoint=True, strict=True)
BEHAVIOURS = {b.name: b for b in (SERVER_API, NEWEST_API, SPEC_API)}


def behaviour(api: str | ApiBehaviour) -> ApiBehaviour:
    """SERVER_API for "server", NEWEST_API for "newest", SPEC_API for "spec", or `api` itself."""
    if isinstance(api, ApiBehaviour):
        return api
    try:
        return BEHAVIOURS[api]
    except KeyError:
        raise ValueError(f"api must be one of {sorted(BEHAVIOURS)} or an ApiBehaviour") from None


class Refusal(Exception):
    """A query the API refuses: the HTTP status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class ListQuery:
    """A parsed GET /jobs query; times are aware UTC datetimes, already shifted by tz_shift."""

    start: datetime | None
    end: datetime | None
    status: str | None
    q: str | None
    desc: bool
    page: int
    size: int
    fields: frozenset[str] | None


def parse_list_query(api: ApiBehaviour, query: dict[str, str]) -> ListQuery:
    """The GET /jobs query as `api` reads it; raises Refusal for what it refuses."""
    order = query.get("order", "ASC")
    if order not in ("ASC", "DESC") and api.strict:
        raise Refusal(400, "order must be ASC or DESC")
    status = query.get("status") or None
    if not api.status_filter:
        status = None
    elif status is not None and status not in STATUSES:
        raise Refusal(api.status_refusal, f"invalid status: {status[:40]}")
    fields = _fields(query.get("fields"), api.strict)
    start, end = _time(api, query, "start_time"), _time(api, query, "end_time")
    return ListQuery(start=start, end=end, status=status, q=query.get("q") or None,
                     desc=order == "DESC", page=_int(api, query, "page", 1, 2**31),
                     size=_int(api, query, "size", api.default_size, api.max_size),
                     fields=fields)


def _int(api: ApiBehaviour, query: dict[str, str], name: str, default: int, high: int) -> int:
    text = query.get(name)
    if text is None or (text == "" and api.strict):
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= high:
        # fastapi-pagination's Params refuses it and the router answers a bare 500
        raise Refusal(500, INTERNAL_ERROR) if api.refusal == 500 else Refusal(
            api.refusal, f"{name} must be an integer between 1 and {high}")
    return value


def _time(api: ApiBehaviour, query: dict[str, str], name: str) -> datetime | None:
    text = query.get(name)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Refusal(api.refusal, f"Invalid isoformat string: {text[:64]!r}") from None
    # The server converts the bound to Asia/Tokyo and compares its wall-clock time with the naive
    # UTC created_at: in effect the bound moves later by the zone's offset.
    return to_utc(when) + api.tz_shift


def _fields(text: str | None, strict: bool) -> frozenset[str] | None:
    if not text:
        return None
    if strict and len(text) > 1024:
        raise Refusal(400, "fields is longer than 1024 characters")
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - set(JOB_FIELDS)
    if unknown:
        raise Refusal(400, f"fields {sorted(unknown)[:5]} is invalid")
    return names or None
