"""`oqtopus-data usage`: what a group used, by period, device, job type or account (`oqtopus_data.query.usage`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

import oqtopus_data.cli.options as opt
from oqtopus_data.cli.failures import Command
from oqtopus_data.cli.sql_output import check_output, emit, raw_csv_option

USAGE_EPILOG = """
\b
Examples:
  oqtopus-data usage out/                                  # per month
  oqtopus-data usage out/ --by device --since 2025-04-01 --until 2026-03-31
  oqtopus-data usage out/ --by month --prices prices.csv --format csv --output usage.csv
  oqtopus-data usage alice/ bob/ carol/ --by quarter,account --since 2025-04-01   # a group

\b
Columns: the keys (day, week, month, quarter or year of submission in UTC, device_id, job_type,
account_id: the account each export came from, null where the server did not say), jobs, shots
(requested), execution_seconds, wasted_jobs and wasted_seconds (failed and cancelled jobs), median_queue_seconds and
p90_queue_seconds (submitted -> running); with --prices also cost, currency and unpriced_jobs
(jobs no price covers, left out of the cost).

\b
The price file is CSV with the header device_id,per_shot,per_second,currency,valid_from:
  device_id,per_shot,per_second,currency,valid_from
  Kawasaki,0.02,1.5,JPY,2025-04-01
A job costs its shots times per_shot (if it ran) plus its execution seconds times
per_second, at its device's newest price valid when it was submitted.
"""


@click.command("usage", cls=Command, epilog=USAGE_EPILOG)
@opt.locations
@opt.date_range("jobs")
@click.option("--by", default="month", show_default=True, metavar="KEY[,KEY...]",
              help="Group by day, week, month, quarter or year of submission (UTC), device, type or account; a "
                   "comma list groups by several (month,device).")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="CSV price table (device_id, per_shot, per_second, currency, valid_from; one currency for the "
                   "whole file): adds the estimated cost. Without it no cost is shown.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@raw_csv_option
@opt.storage_option
def usage_command(locations: tuple[str, ...], since: datetime | None, until: datetime | None, by: str,
                  prices: Path | None, fmt: str, output: Path | None, raw_csv: bool,
                  storage_options: dict[str, str]) -> None:
    """Usage of an export: jobs, shots, execution and wasted time, queue time, and an estimated cost.

    OUT_DIR is the export (a directory or s3://bucket/prefix); several are read as one (a job two
    exports of the same account hold counts once). --since and --until select jobs by submission time.
    """
    from oqtopus_data.query.usage import usage_figures, usage_keys

    try:
        usage_keys(by)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    if output is not None:
        check_output(output, locations)
    location = opt.one_or_many(locations)
    table = usage_figures(location, by=by, since=since, until=until, prices=prices, **storage_options)
    emit(table, fmt, output, raw_csv=raw_csv)
