"""`oqtopus-data info`, `sql` and `schema`: look at an export, query it, read its columns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

import oqtopus_data.cli.options as opt
from oqtopus_data.cli.console import echo_data
from oqtopus_data.cli.failures import EXIT_FAILED, EXIT_USAGE, Command, fail
from oqtopus_data.cli.sql_output import check_output, emit, raw_csv_option

UNDECLARED_SHOWN = 20  # undeclared keys listed by `info`; the rest are counted


@click.command("info", cls=Command)
@opt.locations
@opt.storage_option
def info_command(locations: tuple[str, ...], storage_options: dict[str, str]) -> None:
    """What an export holds: source, last sync, jobs by type, status and device, rows, undeclared keys, errors.

    Several exports are read as one (a job two exports of the same account hold counts once), the jobs counted
    by account too.

    \b
    Examples:
      oqtopus-data info out/
      oqtopus-data info alice/ bob/
      oqtopus-data info s3://bucket/oqtopus --storage-option endpoint_url=http://127.0.0.1:9000
    """
    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.query.views import connect

    datasets = [Dataset(location, **storage_options) for location in locations]
    for dataset in datasets:
        warn_skipped(dataset)
    many = len(locations) > 1
    # before anything is printed: it names lost files
    con = connect(opt.one_or_many(locations), **storage_options)
    for location, dataset in zip(locations, datasets, strict=True):
        manifest = dataset.require_latest()
        echo_data(f"export {location}: commit {manifest.version} ({manifest.operation or '?'}, "
                  f"{manifest.created_at or '?'}), schema version {manifest.schema_version}")
        for line in _sync_lines(manifest):
            echo_data(line)
        if many:
            echo_data("rows: " + ", ".join(f"{t} {manifest.rows(t):,}" for t in sorted(manifest.files)))
    location = " ".join(locations)
    first, last = con.execute("SELECT min(submitted_at), max(submitted_at) FROM jobs").fetchone()
    echo_data(f"jobs submitted from {first or '-'} to {last or '-'}")
    if not many:
        echo_data("rows: " + ", ".join(f"{t} {manifest.rows(t):,}" for t in sorted(manifest.files)))
    for column in ("job_type", "status", "device_id", *(("account_id",) if many else ())):
        rows = con.execute(f"SELECT {column}, count(*) FROM jobs GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
        echo_data(f"by {column}: " + ", ".join(f"{'(null)' if k is None else k} {n:,}" for k, n in rows))
    echo_data(_undeclared_line(con))
    stages = con.execute("SELECT stage, count(*) FROM errors GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
    total = sum(n for _, n in stages)
    detail = f" ({', '.join(f'{stage} {n:,}' for stage, n in stages)}; oqtopus-data sql {location} " \
             "\"SELECT * FROM errors\")" if total else ""
    echo_data(f"errors: {total:,}{detail}")


def warn_skipped(dataset: Any) -> None:
    """Warn about newer commits that could not be read (a truncated manifest), before reading the older one: what
    it lacks (files a newer commit replaced) is then understood."""
    import warnings

    manifest = dataset.latest()
    for note in manifest.notes if manifest is not None else []:
        warnings.warn(note, UserWarning, stacklevel=2)


def _sync_lines(manifest: Any) -> list[str]:
    """Where the export came from, which jobs it selects, and how far its last sync got."""
    import warnings

    from oqtopus_data.dataset.state import SyncState
    from oqtopus_data.errors import StoreError
    from oqtopus_data.selection import Filters
    from oqtopus_data.times import format_time

    try:
        state = SyncState.from_json(manifest.state)
    except StoreError as exc:
        warnings.warn(str(exc), UserWarning, stacklevel=1)
        return []
    if state is None:
        return ["source: not recorded (no export state: written by write_dataset, not by oqtopus-export)"]
    source = state.source.describe() if state.source else "not recorded (exported before oqtopus-data kept it)"
    filters = Filters(**{key: tuple(values) for key, values in state.filters.items()}).describe()
    since = f", submitted since {format_time(state.since)}" if state.since else ""
    lines = [f"source: {source}", f"selection: {filters}{since}"]
    run = manifest.info
    sync = f"last sync {format_time(state.last_sync) if state.last_sync else '-'}"
    if "listed" in run:
        sync += f": listed {_jobs(run.get('listed', 0))}, exported {run.get('exported', 0):,}, " \
                f"{run.get('errors', 0):,} failed"
    lines.append(sync)
    lines += [f"  noticed: {note}" for note in run.get("notes") or []]
    until = format_time(state.listed_until) if state.listed_until else "-"
    lines.append(f"listed up to {until}; {_jobs(len(state.pending))} not yet terminal, {len(state.retry):,} to "
                 f"retry, {len(state.log_retry):,} SSE logs to retry (fetched again by the next run)")
    return lines


def _jobs(n: int) -> str:
    return f"{n:,} job{'' if n == 1 else 's'}"


def _undeclared_line(con: Any) -> str:
    """The keys the server sent that no column declares (kept as JSON text in jobs.extra), by path and jobs."""
    rows = con.execute("""
        SELECT substr(t.fullkey, 3) AS key, count(DISTINCT j.job_id) AS jobs
        FROM (SELECT job_id, extra FROM jobs WHERE extra IS NOT NULL) AS j, json_tree(j.extra) AS t
        WHERE t.type <> 'OBJECT' AND NOT regexp_matches(t.fullkey, '\\[[0-9]+\\]')  -- leaves, arrays whole
        GROUP BY ALL ORDER BY jobs DESC, key""").fetchall()
    if not rows:
        return "undeclared keys: none (nothing the server sent was left out of the columns)"
    shown = ", ".join(f"{key} ({_jobs(n)})" for key, n in rows[:UNDECLARED_SHOWN])
    more = f" and {len(rows) - UNDECLARED_SHOWN} more" if len(rows) > UNDECLARED_SHOWN else ""
    return f"undeclared keys (kept as JSON text in jobs.extra): {shown}{more}"


SQL_HELP_EPILOG = """
\b
Examples:
  oqtopus-data sql out "SELECT device_id, median(queue_seconds) FROM job_timings GROUP BY ALL"
  oqtopus-data sql out - --format csv --output q.csv < examples/queue_times.sql
  oqtopus-data sql s3://bucket/oqtopus "SELECT count(*) FROM jobs" --storage-option region=eu-west-1

\b
Safety: by default the query can read the export's committed files and nothing else.
DuckDB's external access is off (enable_external_access = false, with the export's
files as allowed_paths): no other file is read, no COPY ... TO or EXPORT DATABASE
writes a file, no ATTACH, no extension is installed or loaded from disk; and it
cannot be switched back on from SQL.
One gap remains: COPY ... TO one of the export's own data files, named exactly, with
USE_TMP_FILE false, overwrites it. --writable gives the query DuckDB's full access.
"""


# ignore_unknown_options: a query may start with a `-- comment`, which is no option.
@click.command("sql", cls=Command, epilog=SQL_HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@opt.locations
@click.argument("query")
@opt.storage_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format; list and struct values are JSON text in table and csv.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output (required for parquet).")
@click.option("--writable", is_flag=True,
              help="Give the query DuckDB's full access to files (COPY ... TO, ATTACH, other files).")
@raw_csv_option
def sql_command(locations: tuple[str, ...], query: str, storage_options: dict[str, str], fmt: str,
                output: Path | None, writable: bool, raw_csv: bool) -> None:
    """Run SQL against the export's views (jobs, counts, job_timings, device_daily, ...).

    QUERY is the SQL text, or - to read it from standard input (e.g. a .sql file). Duplicate column
    names (a join) are made unique as DuckDB does: job_id, job_id_1, ... Several OUT_DIRs are read as one:
    every table gets an account_id column, and a job two exports of the same account hold counts once.
    """
    import duckdb

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    if output is not None:
        check_output(output, locations)
    if query == "-":
        query = sys.stdin.read()
    con = _connect(list(locations), storage_options, writable=writable)
    try:
        relation = con.sql(query)
        if relation is None:  # a statement without a result (SET, CREATE VIEW, ...)
            return
        table = relation.to_arrow_table()
    except duckdb.Error as exc:
        fail(str(exc).strip(), EXIT_FAILED)
    emit(table, fmt, output, raw_csv=raw_csv)


def _connect(locations: list[str], storage_options: dict[str, str], *, writable: bool) -> Any:
    """A connection with the views over one export or several; unless `writable`, one that can read the exports'
    committed files only."""
    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.query.views import connect

    target = opt.one_or_many(tuple(locations))
    if writable:
        return connect(target, **storage_options)
    datasets = [Dataset(location, **storage_options) for location in locations]
    for dataset in datasets:
        warn_skipped(dataset)
    for _ in range(3):  # the files of the commits `connect` read: the same ones before and after it, else again
        before = [dataset.verified() if dataset.storage.is_local else None for dataset in datasets]
        con = connect(target, **storage_options)
        after = [dataset.verified() if dataset.storage.is_local else None for dataset in datasets]
        if [m and m.version for m in after] == [m and m.version for m in before]:
            break  # views over an object store read through pyarrow: DuckDB needs no file there
        con.close()
    else:
        fail(f"{' '.join(locations)} kept changing while being opened (an export committing?): try again",
             EXIT_USAGE)
    files = [uri for dataset, manifest in zip(datasets, before, strict=True) if manifest is not None
             for table in sorted(manifest.files) for uri in dataset.uris(table, manifest)]
    # Paths first: DuckDB takes no change of them once external access is off, and no switching it back on.
    con.execute("SET allowed_paths = ?", [files])
    con.execute("SET enable_external_access = false")
    return con


@click.command("schema", cls=Command)
def schema_command() -> None:
    """Print every table and column of the dataset as Markdown (the source of docs/schema.md).

    \b
    Example:
      oqtopus-data schema > schema.md
    """
    from oqtopus_data.tables.schema import markdown_reference

    click.echo(markdown_reference())
