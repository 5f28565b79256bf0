"""`oqtopus-data usage`: what a group used, by month, device or job type (`oqtopus_data.usage`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

import oqtopus_data.cli.options as opt

from .failures import Command
from .sql_output import check_output, emit, raw_csv_option

USAGE_EPILOG = """
\b
Examples:
  oqtopus-data usage out/                                  # per month
  oqtopus-data usage out/ --by device --since 2025-04-01 --until 2026-03-31
  oqtopus-data usage out/ --by month --prices prices.csv --format csv --output usage.csv

\b
Columns: the key (month, device_id or job_type), jobs, shots (requested), execution_seconds,
wasted_jobs and wasted_seconds (failed and cancelled jobs), median_queue_seconds and
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
@click.argument("location", metavar="OUT_DIR")
@opt.date_range("jobs")
@click.option("--by", type=click.Choice(["month", "device", "type"]), default="month", show_default=True,
              help="Group by submission month (UTC), device or job type.")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="CSV price table (device_id, per_shot, per_second, currency, valid_from; one currency for the "
                   "whole file): adds the estimated cost. Without it no cost is shown.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@raw_csv_option
@opt.storage_option
def usage_command(location: str, since: datetime | None, until: datetime | None, by: str, prices: Path | None,
                  fmt: str, output: Path | None, raw_csv: bool, storage_options: dict[str, str]) -> None:
    """Usage of an export: jobs, shots, execution and wasted time, queue time, and an estimated cost.

    OUT_DIR is the export (a directory or s3://bucket/prefix); --since and --until select jobs by
    submission time.
    """
    from oqtopus_data.usage import usage_figures

    if output is not None:
        check_output(output, location)
    table = usage_figures(location, by=by, since=since, until=until, prices=prices, **storage_options)
    emit(table, fmt, output, raw_csv=raw_csv)
