"""`oqtopus-data report`: one self-contained HTML report of an export."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

import oqtopus_data.cli.options as opt
from oqtopus_data.cli.failures import EXIT_FAILED, EXIT_USAGE, Command, fail
from oqtopus_data.cli.sql_output import check_outside


@click.command("report", cls=Command)
@opt.locations
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@opt.date_range("jobs")
@opt.devices("Only jobs on this device (repeatable; checked against the export).")
@opt.statuses
@opt.job_types
@click.option("--top", "top_jobs", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Recent sampling jobs whose top bitstrings are shown.")
@click.option("--table-rows", type=click.IntRange(0, 5000), default=2000, show_default=True,
              help="Newest jobs listed in the job table (0: no table).")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Price table (CSV: device_id, per-shot and per-second price, currency, valid-from) for the "
                   "usage costs.")
@opt.storage_option
def report_command(locations: tuple[str, ...], target: Path, since: datetime | None, until: datetime | None,
                   devices: tuple[str, ...], statuses: tuple[str, ...], job_types: tuple[str, ...], top_jobs: int,
                   table_rows: int, prices: Path | None, storage_options: dict[str, str]) -> None:
    """Write one self-contained HTML report (charts and script embedded) of an export: open it in any browser.

    OUT_DIR is the export (a directory or s3://bucket/prefix; several are read as one, a job two exports of the
    same account hold counted once); TARGET the HTML file to write. A selection that matches no job writes
    nothing and exits with status 1.

    \b
    Examples:
      oqtopus-data report out/ report.html --since 2025-01-01 --device Kawasaki
      oqtopus-data report out/ failures.html --status failed --job-type sampling
      oqtopus-data report alice/ bob/ group.html --since 2025-04-01
      oqtopus-data report s3://bucket/oqtopus report.html --storage-option region=eu-west-1
    """
    from oqtopus_data.report import SelectionError, write_report

    for location in locations:
        check_outside(target, location)
    try:
        location = opt.one_or_many(locations)
        summary = write_report(location, target, since=since, until=until, devices=devices, statuses=statuses,
                               job_types=job_types, top_jobs=top_jobs, table_rows=table_rows, prices=prices,
                               storage_options=storage_options)
    except SelectionError as exc:  # nothing to report: the work ran and found nothing
        fail(str(exc), EXIT_FAILED)
    except ValueError as exc:  # a target that cannot be written, options that make no report
        fail(str(exc), EXIT_USAGE)
    click.echo(f"wrote {summary.path}: {summary.charts} charts over {summary.jobs:,} jobs")
