"""Command line: `oqtopus-export` and `oqtopus-data`. A thin layer: parse options, call the library, map errors.

Exit status: 0 every job exported; 1 the run finished but some jobs failed (see the `errors` table), or it was cut
short by the API or the disk (nothing of it committed); 2 usage, configuration, authentication or lock problems
(nothing written).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from .enums import JOB_TYPES, SELECTABLE_STATUSES
from .errors import AuthError, ConfigError, LockError, OqtopusDataError, StoreError


class Moment(click.ParamType):
    """A date or date-time on the command line; UTC when it names no zone."""

    name = "DATE"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
                return moment + timedelta(days=1, microseconds=-1) if self.end_of_day else moment
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a date (2024-01-31) or date-time (2024-01-31T12:00:00Z)", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


EXPORT_EXAMPLES = """
\b
Examples:
  oqtopus-export --demo demo-out/                  # no account needed: a local OQTOPUS Cloud
  oqtopus-export --since 2024-01-01 out/           # the first run exports, later runs continue
  oqtopus-export --device Kawasaki --status succeeded --since 2025-06-01 kawasaki/
  oqtopus-export --compact out/                    # merge small files (also done automatically)

\b
Credentials, as the official SDK reads them: --url/--profile, then OQTOPUS_URL
(OQTOPUS_BASE_URL), OQTOPUS_API_TOKEN and OQTOPUS_PROXY, then the profile file
$XDG_CONFIG_HOME/oqtopus/config.ini or ~/.config/oqtopus/config.ini (~/.oqtopus).

\b
Exit status: 0 all jobs exported; 1 some jobs failed (they are in the errors table
and are tried again next run) or the run was cut short; 2 usage, configuration,
authentication or lock errors, with nothing written.
"""


@click.command(name="oqtopus-export", epilog=EXPORT_EXAMPLES,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--since", type=Moment(), help="Only jobs submitted at or after this date (UTC when no zone).")
@click.option("--until", type=Moment(end_of_day=True),
              help="Only jobs submitted up to this date (a bare date includes the whole day).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(SELECTABLE_STATUSES),
              help="Keep only jobs with this status (repeatable).")
@click.option("--job-type", "job_types", multiple=True, type=click.Choice(JOB_TYPES),
              help="Keep only jobs of this type (repeatable).")
@click.option("--device", "devices", multiple=True, metavar="DEVICE_ID",
              help="Keep only jobs on this device (repeatable).")
@click.option("--profile", help="Profile (INI section) to read from the oqtopus config file.")
@click.option("--url", help="OQTOPUS Cloud API URL (overrides environment and profile).")
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent archive downloads.")
@click.option("--page-size", type=click.IntRange(1, 65535), default=500, show_default=True,
              help="Jobs per GET /jobs page.")
@click.option("--duckdb", "duckdb_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a DuckDB database file holding the views.")
@click.option("--sse-logs", is_flag=True, help="Also download SSE job logs into OUT_DIR/sse_logs/.")
@click.option("--full-refresh", is_flag=True,
              help="Rebuild from scratch; readers see the old dataset until the new one is committed.")
@click.option("--compact", "compact_only", is_flag=True, help="Only merge small files of OUT_DIR, then exit.")
@click.option("--demo", is_flag=True, help="Export from a local demo OQTOPUS Cloud started on 127.0.0.1.")
@click.option("--demo-jobs", type=click.IntRange(1), default=500, show_default=True,
              help="Jobs in the --demo history.")
@click.option("--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
              help="Option for an object-store OUT_DIR (s3://...), e.g. endpoint_url=http://127.0.0.1:9000.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=50_000, show_default=True,
              help="Jobs between intermediate commits of a long export (what a crash can cost).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def export_command(out_dir: str, since: datetime | None, until: datetime | None, statuses: tuple[str, ...],
                   job_types: tuple[str, ...], devices: tuple[str, ...], profile: str | None, url: str | None,
                   workers: int, page_size: int, duckdb_file: Path | None, sse_logs: bool, full_refresh: bool,
                   compact_only: bool, demo: bool, demo_jobs: int, storage_options: tuple[str, ...],
                   checkpoint_every: int, quiet: bool) -> None:
    """Export your OQTOPUS Cloud job history to a Parquet dataset with DuckDB views.

    OUT_DIR receives one directory per table (jobs, counts, divided_counts, estimations, errors,
    devices) and a commit manifest; running again into the same OUT_DIR continues the export.
    """
    from .export import ExportOptions

    store_opts = _key_values(storage_options)
    if duckdb_file is not None and "://" in out_dir and not out_dir.startswith("file://"):
        raise click.UsageError("--duckdb needs a local OUT_DIR: views over an object store read through the "
                               "process that opens them (oqtopus_data.connect)")
    if compact_only:
        _run_compact(out_dir, store_opts, quiet)
        return
    if since and until and since > until:
        raise click.UsageError("--since is after --until")
    options = ExportOptions(since=since, until=until, statuses=statuses, job_types=job_types, devices=devices,
                            workers=workers, page_size=page_size, full_refresh=full_refresh, sse_logs=sse_logs,
                            checkpoint_jobs=checkpoint_every)
    token = None
    try:
        with _credentials(demo, demo_jobs, url, profile) as credentials:
            token = credentials.token
            report = _run_export(credentials, out_dir, options, workers, quiet, store_opts)
        if duckdb_file is not None:
            _write_duckdb(out_dir, duckdb_file, store_opts)
    except (ConfigError, AuthError, LockError) as exc:
        _fail(str(exc), 2, token)
    except OqtopusDataError as exc:
        _fail(f"{exc}\nThe export stopped; {out_dir} holds its last commit, nothing half-written. "
              "Run the same command again to continue.", 1, token)
    except OSError as exc:
        _fail(f"cannot write the export: {exc}\nThe export stopped; {out_dir} holds its last commit.", 1, token)
    if not quiet:
        _print_summary(report, out_dir, duckdb_file)
        if demo:
            click.echo(f"\nNext: oqtopus-data sql {out_dir} \"SELECT device_id, count(*) FROM jobs GROUP BY ALL\"")
    sys.exit(0 if report.ok else 1)


@contextlib.contextmanager
def _credentials(demo: bool, demo_jobs: int, url: str | None, profile: str | None) -> Iterator[Any]:
    from .config import Credentials, resolve_credentials

    if not demo:
        yield resolve_credentials(url=url, profile=profile)
        return
    from .testing import FakeCloud

    with FakeCloud(n_jobs=demo_jobs) as cloud:
        yield Credentials(url=cloud.url, token=cloud.token, proxy=None, timeout=30.0, source="--demo local server")


def _key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--storage-option")
        out[key.strip()] = value
    return out


def _run_export(credentials: Any, out_dir: str, options: Any, workers: int, quiet: bool,
                storage_options: dict[str, str]) -> Any:
    from .api import ApiClient
    from .export import export

    progress = _Progress(enabled=not quiet)
    with ApiClient(credentials, workers=workers) as api:
        try:
            return export(api, out_dir, options, progress=progress, storage_options=storage_options)
        finally:
            progress.close()


def _run_compact(out_dir: str, storage_options: dict[str, str], quiet: bool) -> None:
    from .store import Dataset, compact

    try:
        dataset = Dataset(out_dir, **storage_options)
        before = dataset.require_latest()
        after = compact(dataset, min_files=2)
    except LockError as exc:
        _fail(str(exc), 2)
    except StoreError as exc:
        _fail(str(exc), 2)
    if not quiet:
        if after is None:
            click.echo(f"{out_dir}: nothing to compact ({_file_count(before)} data files)")
        else:
            click.echo(f"{out_dir}: {_file_count(before)} data files -> {_file_count(after)} (commit {after.version})")


def _file_count(manifest: Any) -> int:
    return sum(len(v) for v in manifest.files.values())


def _write_duckdb(out_dir: str, target: Path, storage_options: dict[str, str]) -> None:
    from .views import connect

    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    con = connect(out_dir, database=str(tmp), **storage_options)
    con.close()
    os.replace(tmp, target)


class _Progress:
    """A one-line progress display on a terminal's stderr; periodic log lines when stderr is not a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.counts = {"listed": 0, "fetched": 0, "rows": 0}
        self.started = self.last = time.monotonic()

    def __call__(self, event: str, n: int) -> None:
        self.counts[event] = self.counts.get(event, 0) + n
        now = time.monotonic()
        if not self.enabled or now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        line = (f"listed {self.counts['listed']:,} jobs · fetched {self.counts['fetched']:,} · "
                f"rows {self.counts['rows']:,} · {now - self.started:.0f}s")
        if self.tty:
            click.echo("\r" + line + "\x1b[K", err=True, nl=False)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.last > self.started:
            click.echo("\r\x1b[K", err=True, nl=False)


def _print_summary(report: Any, out_dir: str, duckdb_file: Path | None) -> None:
    kind = "incremental export" if report.incremental else "export"
    click.echo(f"{kind} to {out_dir}: commit {report.version}, {report.exported:,} jobs written "
               f"({report.listed:,} listed, {report.skipped:,} already exported) in {report.seconds:.1f}s")
    if report.jobs_by_type_status:
        click.echo("jobs by type and status:")
        for (job_type, status), n in sorted(report.jobs_by_type_status.items(), key=lambda kv: (str(kv[0]))):
            click.echo(f"  {job_type or '?':<13} {status or '?':<11} {n:>9,}")
    rows = {k: v for k, v in report.rows.items() if v}
    if rows:
        click.echo("rows written: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())))
    if report.requests.get("requests"):
        click.echo(f"HTTP requests: {_requests_line(report.requests)}")
    if report.compacted:
        click.echo("small files were compacted")
    if report.errors:
        click.echo(f"{len(report.errors)} job(s) could not be exported; they are in the errors table and are "
                   "tried again on the next run:", err=True)
        for job_id, stage, message in report.errors[:10]:
            click.echo(f"  {job_id or '<no id>'}: {stage}: {message}", err=True)
        if len(report.errors) > 10:
            click.echo(f"  ... and {len(report.errors) - 10} more: oqtopus-data sql {out_dir} "
                       "\"SELECT * FROM errors\"", err=True)
    if duckdb_file is not None:
        click.echo(f"DuckDB database with the views: {duckdb_file}")


def _requests_line(stats: dict[str, Any]) -> str:
    by_kind = {k: v for k, v in (stats.get("requests") or {}).items() if v}
    line = f"{sum(by_kind.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in sorted(by_kind.items())) + ")"
    if stats.get("retries"):
        line += f", {stats['retries']:,} retried"
    return line


def _fail(message: str, status: int, token: str | None = None) -> None:
    if token:
        message = message.replace(token, "***")
    ctx = click.get_current_context(silent=True)
    name = ctx.find_root().info_name if ctx else "oqtopus-data"
    click.echo(f"{name}: {message}", err=True)
    sys.exit(status)


# ------------------------------------------------------------------------------------------ oqtopus-data


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Tools around an oqtopus-data export: inspect it, query it, serve a local OQTOPUS Cloud."""


@main.command("fake-cloud")
@click.option("--jobs", "n_jobs", type=click.IntRange(1), default=500, show_default=True, help="Jobs in the history.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic history.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--latency", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds added to every request.")
@click.option("--legacy", is_flag=True, help="Serve job_info inline (the legacy form) instead of archive URLs.")
def fake_cloud(n_jobs: int, seed: int, port: int, latency: float, legacy: bool) -> None:
    """Serve a synthetic OQTOPUS Cloud on 127.0.0.1 until Ctrl-C (for trying the exporter without an account).

    \b
    Example:
      oqtopus-data fake-cloud --jobs 2000 --port 8080 &
      OQTOPUS_URL=http://127.0.0.1:8080 OQTOPUS_API_TOKEN=demo-token oqtopus-export out/
    """
    from .testing import FakeCloud, Faults

    cloud = FakeCloud(n_jobs=n_jobs, seed=seed, faults=Faults(latency=latency), legacy=legacy)
    cloud.start(port=port)
    click.echo(f"OQTOPUS_URL={cloud.url}")
    click.echo(f"OQTOPUS_API_TOKEN={cloud.token}")
    click.echo(f"serving {n_jobs:,} jobs on {cloud.url}; Ctrl-C stops", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()


_STORAGE_OPTION = click.option(
    "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
    help="Option for an object-store OUT_DIR (s3://...), e.g. endpoint_url=http://127.0.0.1:9000.")


@main.command("info")
@click.argument("out_dir")
@_STORAGE_OPTION
def info_command(out_dir: str, storage_options: tuple[str, ...]) -> None:
    """What an export holds: jobs by type, status and device, date range, rows per table, last sync, errors."""
    from .views import connect

    opts = _key_values(storage_options)
    try:
        from .store import Dataset

        manifest = Dataset(out_dir, **opts).require_latest()
        con = connect(out_dir, **opts)
    except (StoreError, ConfigError) as exc:
        _fail(str(exc), 2)
    state = manifest.state
    click.echo(f"export {out_dir}: commit {manifest.version} ({manifest.operation}, {manifest.created_at}), "
               f"schema version {manifest.schema_version}")
    click.echo(f"last sync {state.get('last_sync') or '-'}; bookmark {state.get('bookmark') or '-'}; "
               f"{len(state.get('pending', []))} jobs not yet terminal")
    first, last = con.execute("SELECT min(submitted_at), max(submitted_at) FROM jobs").fetchone()
    click.echo(f"jobs submitted from {first or '-'} to {last or '-'}")
    click.echo("rows: " + ", ".join(f"{t} {manifest.rows(t):,}" for t in sorted(manifest.files)))
    for column in ("job_type", "status", "device_id"):
        rows = con.execute(f"SELECT {column}, count(*) FROM jobs GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
        click.echo(f"by {column}: " + ", ".join(f"{k} {n:,}" for k, n in rows))
    (errors,) = con.execute("SELECT count(*) FROM errors").fetchone()
    click.echo(f"errors: {errors:,}" + (f' (oqtopus-data sql {out_dir} "SELECT * FROM errors")' if errors else ""))


@main.command("sql", context_settings={"ignore_unknown_options": True})
@click.argument("out_dir")
@click.argument("query")
@_STORAGE_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output (required for parquet).")
def sql_command(out_dir: str, query: str, storage_options: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Run SQL against the export's views (jobs, counts, job_timings, device_daily, ...).

    QUERY is the SQL text, or - to read it from standard input (e.g. a .sql file).

    \b
    Examples:
      oqtopus-data sql out "SELECT device_id, median(queue_seconds) FROM job_timings GROUP BY ALL"
      oqtopus-data sql out - < examples/queue_times.sql
    """
    import duckdb

    from .views import connect

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    if query == "-":
        query = sys.stdin.read()
    try:
        con = connect(out_dir, **_key_values(storage_options))
        table = con.sql(query).to_arrow_table()
    except (StoreError, ConfigError) as exc:
        _fail(str(exc), 2)
    except duckdb.Error as exc:
        _fail(str(exc).strip(), 1)
    _emit(table, fmt, output)


def _emit(table: Any, fmt: str, output: Path | None) -> None:
    import io
    import json

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        pq.write_table(table, output, compression="zstd")
        return
    if fmt == "csv":
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        text = buffer.getvalue().decode()
    elif fmt == "json":
        text = "\n".join(json.dumps(row, default=str) for row in table.to_pylist()) + ("\n" if table.num_rows else "")
    else:
        text = _aligned(table)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


def _aligned(table: Any) -> str:
    names = table.column_names
    rows = [["" if v is None else str(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    line = "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


@main.command("report")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", type=Moment(), help="Only jobs submitted at or after this date (UTC when no zone).")
@click.option("--until", type=Moment(end_of_day=True), help="Only jobs submitted up to this date (inclusive).")
@click.option("--device", "devices", multiple=True, metavar="DEVICE_ID", help="Only this device (repeatable).")
@click.option("--top", "top_jobs", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Recent sampling jobs whose top bitstrings are shown.")
def report_command(out_dir: str, target: Path, since: datetime | None, until: datetime | None,
                   devices: tuple[str, ...], top_jobs: int) -> None:
    """Write one self-contained HTML report (charts embedded) of an export: open it in any browser.

    \b
    Example:
      oqtopus-data report out/ report.html --since 2025-01-01 --device Kawasaki
    """
    from .report import write_report

    try:
        summary = write_report(out_dir, target, since=since, until=until, devices=devices, top_jobs=top_jobs)
    except (StoreError, ValueError) as exc:
        _fail(str(exc), 2)
    click.echo(f"wrote {summary.path}: {summary.charts} charts over {summary.jobs:,} jobs")


@main.command("ddl")
@click.argument("out_dir")
@click.option("--engine", type=click.Choice(["spark", "trino", "duckdb"]), required=True,
              help="The engine whose SQL to print.")
@click.option("--schema", "schema_name", metavar="NAME", help="Schema (database) to create the tables in.")
def ddl_command(out_dir: str, engine: str, schema_name: str | None) -> None:
    """Print the SQL that registers an export as external tables (and the analysis views) in an engine.

    \b
    Example:
      oqtopus-data ddl /data/oqtopus --engine spark --schema oqtopus > register.sql
    """
    from .ddl import ddl_statements

    try:
        click.echo(ddl_statements(out_dir, engine, schema=schema_name), nl=False)
    except ValueError as exc:
        _fail(str(exc), 2)


@main.command("schema")
def schema_command() -> None:
    """Print every table and column of the dataset as Markdown (the source of docs/schema.md)."""
    from .schema import markdown_reference

    click.echo(markdown_reference())


if __name__ == "__main__":  # pragma: no cover
    main()
