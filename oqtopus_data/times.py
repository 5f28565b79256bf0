"""Date-times, one home: the API's ISO-8601 text to aware UTC datetimes and back.

The API writes UTC with a `Z`; older servers wrote no zone at all. The stated rule for a date-time without a zone:
it is read as UTC (what the server's own code localises naive database values to), and readers that record
normalisations say so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: The note a flattener records when a date-time carried no zone and was read as UTC.
NAIVE_AS_UTC = "read as UTC (no time zone given)"


class TimeError(ValueError):
    """A value that should be a date-time is not one; the message names the field."""


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_datetime(value: object, name: str = "date-time", *, as_given: bool = False) -> datetime | None:
    """An ISO-8601 string or datetime as an aware UTC datetime; None stays None; anything else raises TimeError.

    `as_given` returns it as written instead, its offset kept or naive (the official SDK's result objects keep the
    offset; the caller applies NAIVE_AS_UTC with `to_utc` and records it).
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise TimeError(f"{name} is not an ISO-8601 date-time: {value[:40]!r}") from None
    if not isinstance(value, datetime):
        raise TimeError(f"{name} is not a date-time: {type(value).__name__}")
    if as_given:
        return value
    try:
        return to_utc(value)
    except OverflowError:
        raise TimeError(f"{name} {value.isoformat()} is out of range") from None


def parse_time(value: object) -> datetime | None:
    """An API date-time as an aware UTC datetime; None when absent or unparseable (for lenient readers)."""
    try:
        return parse_datetime(value)
    except TimeError:
        return None


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with a Z, as the API writes it."""
    return to_utc(value).isoformat().replace("+00:00", "Z")


def duration_text(delta: timedelta) -> str:
    """A length of time in its largest unit, for messages: 7 d, 1 h, 90 s."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"
