"""`oqtopus-data ddl` and `duckdb`: register an export in another engine, or keep its views in a DuckDB file."""

from __future__ import annotations

from pathlib import Path

import click

import oqtopus_data.cli.options as opt
from oqtopus_data.cli.failures import EXIT_FAILED, Command, fail


@click.command("ddl", cls=Command)
@click.argument("location", metavar="OUT_DIR")
@click.option("--engine", type=click.Choice(["spark", "trino", "duckdb"]), required=True,
              help="The engine whose SQL to print.")
@click.option("--schema", "schema_name", metavar="NAME", help="Schema (database) to create the tables in.")
@opt.storage_option
def ddl_command(location: str, engine: str, schema_name: str | None, storage_options: dict[str, str]) -> None:
    """Print the SQL that registers an export as external tables (and the analysis views) in an engine.

    The tables list the directories, which hold exactly the newest commit's files whenever no export
    is running: run the partition repair it prints again after each export.

    \b
    Examples:
      oqtopus-data ddl /data/oqtopus --engine spark --schema oqtopus > register.sql
      oqtopus-data ddl s3://bucket/oqtopus --engine trino --storage-option region=eu-west-1
    """
    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.query.ddl import ddl_statements

    Dataset(location, **storage_options).require_latest()  # an export is there (a typo'd path says so)
    try:
        click.echo(ddl_statements(location, engine, schema=schema_name), nl=False)
    except ValueError as exc:
        fail(str(exc), 2)


@click.command("duckdb", cls=Command)
@click.argument("location", metavar="OUT_DIR")
@click.argument("target", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only say whether FILE shows the newest commit (exit 1 when not).")
def duckdb_command(location: str, target: Path, check: bool) -> None:
    """Write (or refresh) a DuckDB database file with the views over the export's newest commit.

    The views name the files of that commit, so any DuckDB client reads exactly it. A later export
    may replace some of those files: `oqtopus-export --duckdb FILE` rewrites FILE after every run;
    after a run without it, run this command again (--check says whether FILE is stale).

    \b
    Examples:
      oqtopus-data duckdb out/ views.duckdb && duckdb views.duckdb "FROM device_daily"
      oqtopus-data duckdb out/ views.duckdb --check || oqtopus-data duckdb out/ views.duckdb
    """
    from oqtopus_data.cli.views_file import check_target, stale_reason, write_views_file

    check_target(location, target)
    if check:
        reason = stale_reason(location, target) if target.exists() else f"{target} does not exist"
        if reason is not None:
            fail(f"{reason}: refresh it with `oqtopus-data duckdb {location} {target}`", EXIT_FAILED)
        click.echo(f"{target} shows the newest commit of {location}")
        return
    version = write_views_file(location, target)
    click.echo(f"wrote {target}: the views over commit {version} of {location}")
