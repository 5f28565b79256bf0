"""The command line: `oqtopus-export` and `oqtopus-data`. A thin layer: parse options, call the library, map its
exceptions to exit statuses (see `failures`). One module per group of commands; shared options in `options`."""

from __future__ import annotations

import click

from oqtopus_data import __version__
from oqtopus_data.cli.ddl import ddl_command, duckdb_command
from oqtopus_data.cli.export import export_command
from oqtopus_data.cli.failures import Group
from oqtopus_data.cli.fake_cloud import fake_cloud_command
from oqtopus_data.cli.options import CONTEXT
from oqtopus_data.cli.query import info_command, schema_command, sql_command
from oqtopus_data.cli.report import report_command
from oqtopus_data.cli.usage import usage_command

MAIN_EPILOG = """
\b
Examples:
  oqtopus-data info out/
  oqtopus-data sql out "SELECT device_id, count(*) FROM jobs GROUP BY ALL"
  oqtopus-data report out/ report.html
  oqtopus-data usage out/ --by device --prices prices.csv
  oqtopus-data usage alice/ bob/ --by quarter,account       # several exports as one
  oqtopus-data fake-cloud --jobs 2000 --port 8080

\b
Exit status: 0 done; 1 the command ran but failed (a query error, a stale file);
2 usage errors, or a location that holds no readable export, with nothing written.
"""


@click.group(name="oqtopus-data", cls=Group, context_settings=CONTEXT, epilog=MAIN_EPILOG)
@click.version_option(__version__, prog_name="oqtopus-data", message="%(prog)s %(version)s")
def main() -> None:
    """Tools around an oqtopus-data export: inspect it, query it, report on it, sum its usage, serve a local
    OQTOPUS Cloud."""


for _command in (info_command, sql_command, schema_command, report_command, usage_command, ddl_command,
                 duckdb_command, fake_cloud_command):
    main.add_command(_command)

__all__ = ["export_command", "main"]
