"""The options several commands share, declared once: dates, durations, storage options, job filters, --quiet."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import click

from oqtopus_data.enums import JOB_TYPES, SELECTABLE_STATUSES
from oqtopus_data.times import TimeError, parse_datetime

F = TypeVar("F", bound=Callable[..., Any])

#: Settings every command shares: -h as well as --help, and help text as wide as a modern terminal.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Moment(click.ParamType):
    """A date or date-time on the command line (`oqtopus_data.times` reads it; UTC when it names no zone).

    A bare date is its day's first microsecond, or with `end_of_day` its last, so `--until 2024-01-31` includes
    that whole day."""

    name = "DATE"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            moment = parse_datetime(text, "the date")
            if moment is not None and self.end_of_day and _is_bare_date(text):
                moment += timedelta(days=1, microseconds=-1)
        except (TimeError, OverflowError) as exc:
            problem = str(exc) if "out of range" in str(exc) else f"{text!r} is not a date"
            self.fail(f"{problem}: give a date (2024-01-31) or date-time (2024-01-31T12:00:00Z)", param, ctx)
        assert moment is not None  # text is never None here
        return moment


def _is_bare_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Duration(click.ParamType):
    """A length of time such as 90m, 36h, 2d or 1d12h (units s, m, h, d, w)."""

    name = "DURATION"
    LIMIT = timedelta(days=3653)  # ten years: more would be a typo, and far more leaves the calendar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            self.fail(f"{value!r} is not a duration: give a number with a unit, such as 90m, 36h, 2d or 1d12h",
                      param, ctx)
        try:
            total = sum((timedelta(**{_DURATION_UNITS[unit]: float(n)}) for n, unit in parts), timedelta())
        except OverflowError:
            total = timedelta.max
        if total > self.LIMIT:
            self.fail(f"{value!r} is longer than ten years", param, ctx)
        return total


def date_range(what: str) -> Callable[[F], F]:
    """--since and --until on a command, checked to make a range (`what` is what they select, for the help)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            since, until = kwargs.get("since"), kwargs.get("until")
            if since is not None and until is not None and since > until:
                raise click.UsageError("--since is after --until")
            return function(*args, **kwargs)

        checked = click.option("--until", type=Moment(end_of_day=True),
                               help=f"Only {what} submitted up to this date (a bare date includes the whole day; "
                                    "UTC when no zone).")(checked)
        checked = click.option("--since", type=Moment(),
                               help=f"Only {what} submitted at or after this date (UTC when no zone).")(checked)
        return checked  # type: ignore[return-value]

    return decorate


def _key_values(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", ctx=ctx, param=param)
        out[key.strip()] = value
    return out


#: One export or several read as one (oqtopus_data.connect with a list): the commands' first arguments.
locations = click.argument("locations", metavar="OUT_DIR...", nargs=-1, required=True)


def one_or_many(locations: tuple[str, ...]) -> str | list[str]:
    """The location the library takes: the export itself, or the list of several (read as one)."""
    return locations[0] if len(locations) == 1 else list(locations)


storage_option = click.option(
    "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE", callback=_key_values,
    help="Option for an s3:// location (repeatable): endpoint_url, region, profile, addressing_style, "
         "lock_lease_seconds, e.g. endpoint_url=http://127.0.0.1:9000.")

statuses = click.option("--status", "statuses", multiple=True, type=click.Choice(SELECTABLE_STATUSES),
                        help="Keep only jobs with this status (repeatable).")
job_types = click.option("--job-type", "job_types", multiple=True, type=click.Choice(JOB_TYPES),
                         help="Keep only jobs of this type (repeatable).")


def devices(help_text: str) -> Callable[[F], F]:
    """--device DEVICE_ID, repeatable (checked by the library against the devices the server and dataset know)."""
    return click.option("--device", "devices", multiple=True, metavar="DEVICE_ID", help=help_text)


quiet = click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings.")


