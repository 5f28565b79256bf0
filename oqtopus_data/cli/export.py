"""`oqtopus-export`: export a job history into a dataset, or continue one. The run itself is
`oqtopus_data.run.export`."""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

import oqtopus_data.cli.options as opt
from oqtopus_data import __version__
from oqtopus_data.cli.console import Console, print_differences, print_failures, print_summary, stop_on_signals
from oqtopus_data.cli.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Command, fail, remember_token, say
from oqtopus_data.errors import AuthError, ConfigError, OqtopusDataError, StoreError

#: Failures of the disk while writing: never a set-up problem, whenever they come.
_RUNTIME_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})

EXAMPLES = """
\b
Examples:
  oqtopus-export --demo demo-out/                  # no account needed: a local OQTOPUS Cloud
  oqtopus-export --since 2024-01-01 out/           # the first run exports, later runs continue
  oqtopus-export --device Kawasaki --status succeeded --since 2025-06-01 kawasaki/
  oqtopus-export --since 2024-01-01 s3://bucket/oqtopus --storage-option endpoint_url=http://minio:9000
  oqtopus-export --repair out/                     # fetch again the months of lost data files
  oqtopus-export --compact out/                    # merge small files (also done automatically)
  oqtopus-export --verify out/                     # compare with the server's whole history, fix what differs
  oqtopus-export --devices-only out/               # a device snapshot only: cron it for a calibration history

\b
Credentials, as the official SDK reads them: --url/--profile, then OQTOPUS_URL
(OQTOPUS_BASE_URL), OQTOPUS_API_TOKEN and OQTOPUS_PROXY, then the profile file
$XDG_CONFIG_HOME/oqtopus/config.ini or ~/.config/oqtopus/config.ini (~/.oqtopus).

\b
Ctrl-C (or SIGTERM) commits what was fetched and stops; the next run continues.
A second Ctrl-C stops at once, which loses only what was not committed yet.

\b
Exit status: 0 all jobs exported; 1 some jobs failed (they are in the errors table
and are tried again next run), the run was cut short (run it again to continue), or
--verify found the dataset differing from the server (and fixed what it could);
2 usage, configuration, authentication, lock or dataset problems, with nothing written.
"""


@click.command(name="oqtopus-export", cls=Command, epilog=EXAMPLES, context_settings=opt.CONTEXT)
@click.version_option(__version__, prog_name="oqtopus-export", message="%(prog)s %(version)s")
@click.argument("out_dir", metavar="OUT_DIR")
@opt.date_range("jobs")
@opt.statuses
@opt.job_types
@opt.devices("Keep only jobs on this device (repeatable); checked against GET /devices.")
@click.option("--profile", help="Profile (INI section) to read from the oqtopus config file.")
@click.option("--url", help="OQTOPUS Cloud API URL (overrides environment and profile).")
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent archive downloads.")
@click.option("--page-size", type=click.IntRange(1, 65535), default=100, show_default=True,
              help="Jobs per GET /jobs page; the OQTOPUS Cloud server takes at most 100, and a size it refuses "
                   "steps down by itself.")
@click.option("--max-submit-delay", type=opt.Duration(), default="1d", show_default=True,
              help="The longest gap between a job's creation and its submission (jobs registered first, submitted "
                   "later), e.g. 90m, 36h, 2d: the server lists jobs by creation time, so each run looks back this "
                   "far for jobs submitted since the last one.")
@click.option("--repair", is_flag=True,
              help="Fetch again the months whose data files are lost (deleted by hand, half copied) instead of "
                   "refusing to continue.")
@click.option("--duckdb", "views_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write a DuckDB database file with the views over the export, rewritten after every run "
                   "given it. A run without --duckdb leaves it showing an older commit: refresh it with "
                   "`oqtopus-data duckdb OUT_DIR FILE`.")
@click.option("--sse-logs", is_flag=True, help="Also download SSE job logs into OUT_DIR/sse_logs/.")
@click.option("--full-refresh", is_flag=True,
              help="Rebuild from scratch; readers see the old dataset until the new one is committed.")
@click.option("--compact", "compact_only", is_flag=True, help="Only merge small files of OUT_DIR, then exit.")
@click.option("--devices-only", is_flag=True,
              help="Only take a device snapshot (GET /devices: the devices, and their calibrations not stored yet) "
                   "and commit it: a few requests, no job listing, the export's sync state left as it is. Run from "
                   "cron every 15 minutes, it builds the calibration history that job_calibration joins jobs to.")
@click.option("--demo", is_flag=True, help="Export from a local demo OQTOPUS Cloud started on 127.0.0.1.")
@click.option("--demo-jobs", type=click.IntRange(1), default=500, show_default=True,
              help="Jobs in the --demo history.")
@opt.storage_option
@click.option("--checkpoint-every", type=click.IntRange(1), default=50_000, show_default=True,
              help="Jobs between intermediate commits of a long export (what a crash can cost); there is also "
                   "one every few minutes.")
@click.option("--verify", is_flag=True,
              help="After the run, list the ids and statuses of the whole selection (a light listing), compare "
                   "them with the dataset, fetch what is missing or changed, drop what is confirmed deleted, and "
                   "print what differed; exit 1 when anything did.")
@click.option("--verify-every", type=opt.Duration(), default="7d", show_default=True,
              help="Verify on its own when the last verify is older than this (0d: never on a schedule); a run "
                   "also verifies after an anomaly (a clock step, another job's body, an unconfirmed 404).")
@opt.quiet
def export_command(out_dir: str, since: datetime | None, until: datetime | None, statuses: tuple[str, ...],
                   job_types: tuple[str, ...], devices: tuple[str, ...], profile: str | None, url: str | None,
                   workers: int, page_size: int, max_submit_delay: timedelta, repair: bool, views_file: Path | None,
                   sse_logs: bool, full_refresh: bool, compact_only: bool, devices_only: bool, demo: bool,
                   demo_jobs: int, storage_options: dict[str, str], checkpoint_every: int, verify: bool,
                   verify_every: timedelta, quiet: bool) -> None:
    """Export your OQTOPUS Cloud job history to a Parquet dataset with DuckDB views.

    OUT_DIR (a directory, or s3://bucket/prefix) receives one directory per table (jobs, counts,
    divided_counts, estimations, errors, devices) and a commit manifest; running again into the same
    OUT_DIR continues the export.
    """
    from oqtopus_data.run.export import ExportOptions

    if views_file is not None:
        from oqtopus_data.cli.views_file import check_target

        check_target(out_dir, views_file)
    if devices_only:
        _check_devices_only(since=since, until=until, status=statuses, job_type=job_types, device=devices,
                            repair=repair, sse_logs=sse_logs, full_refresh=full_refresh, compact=compact_only,
                            verify=verify)
    if compact_only:
        _compact(out_dir, storage_options, quiet, views_file)
        return
    options = ExportOptions(since=since, until=until, statuses=statuses, job_types=job_types, devices=devices,
                            workers=workers, page_size=page_size, full_refresh=full_refresh, repair=repair,
                            sse_logs=sse_logs, max_submit_delay=max_submit_delay, checkpoint_jobs=checkpoint_every,
                            devices_only=devices_only, verify=verify, verify_every=verify_every or None)
    history = None
    try:
        with _credentials(demo, demo_jobs, url, profile, out_dir) as (credentials, cloud):
            remember_token(credentials.token)
            fresh = cloud is not None and not devices_only and _holds_no_export(out_dir, storage_options)
            report = _run(credentials, out_dir, options, storage_options, Console(quiet=quiet))
            if fresh:
                history = _demo_calibrations(cloud, out_dir, storage_options)
    except SystemExit as end:
        if views_file is not None and end.code == EXIT_FAILED:  # a run cut short may have committed
            _refresh_views(out_dir, views_file)
        raise
    if views_file is not None:
        _refresh_views(out_dir, views_file)
    if quiet:
        print_failures(report, out_dir)
        print_differences(report)
    elif devices_only:
        _print_snapshot(report, out_dir, views_file)
    else:
        print_summary(report, out_dir, views_file)
        if history is not None:
            click.echo(f"demo: device snapshots once a week over the demo history, as `oqtopus-export --devices-only` "
                       f"from cron records them, are in commit {history} (see the job_calibration view)")
        if demo:
            click.echo(f"\nNext: oqtopus-data sql {out_dir} \"SELECT device_id, count(*) FROM jobs GROUP BY ALL\"")
    raise SystemExit(EXIT_OK if report.ok and not (verify and report.differences) else EXIT_FAILED)


def _check_devices_only(**given: Any) -> None:
    """--devices-only takes a snapshot only: refuse the options that select or rewrite jobs."""
    clashing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if clashing:
        raise click.UsageError(f"--devices-only takes a device snapshot only, without {', '.join(clashing)}")


def _print_snapshot(report: Any, out_dir: str, views_file: Path | None) -> None:
    """What a --devices-only run did: the devices, the calibrations it stored, the commit."""
    from oqtopus_data.times import format_time

    new = report.calibrations
    stored = (f"{len(new)} new calibration{'s' if len(new) != 1 else ''} ("
              + ", ".join(f"{device} {format_time(at)}" for device, at in new[:10])
              + (f", and {len(new) - 10} more" if len(new) > 10 else "") + ")") if new else \
        "no new calibration (the ones GET /devices shows are stored already)"
    click.echo(f"device snapshot to {out_dir}: commit {report.version}, {report.rows['devices']:,} devices, {stored} "
               f"in {report.seconds:.1f}s")
    if report.compacted:
        click.echo("small files were compacted")
    if views_file is not None:
        click.echo(f"DuckDB database with the views: {views_file}")
    print_failures(report, out_dir)


@contextlib.contextmanager
def _credentials(demo: bool, demo_jobs: int, url: str | None, profile: str | None,
                 out_dir: str) -> Iterator[tuple[Any, Any]]:
    """The credentials of the run, and the demo's local cloud (None without --demo)."""
    from oqtopus_data.client.config import Credentials, resolve_credentials

    if not demo:
        yield resolve_credentials(url=url, profile=profile), None
        return
    from oqtopus_data.testing import FakeCloud

    cloud = FakeCloud(n_jobs=demo_jobs)
    # The demo history lies in the past: its server's clock stands at the history's end, so that the devices'
    # current calibrations follow the jobs' time line rather than today's date.
    cloud.set_clock(cloud.history.start + timedelta(days=cloud.history.days))
    try:
        cloud.start(port=_demo_port(out_dir))
    except OSError:  # that port is taken now: the run will say that the directory came from another server
        cloud.start(port=0)
    try:
        yield Credentials(url=cloud.url, token=cloud.token, proxy=None, timeout=30.0,
                          source="--demo local server"), cloud
    finally:
        cloud.stop()


def _holds_no_export(out_dir: str, storage_options: dict[str, str]) -> bool:
    from oqtopus_data.dataset.dataset import Dataset

    try:
        return Dataset(out_dir, **storage_options).latest() is None
    except (OqtopusDataError, OSError, ValueError):
        return False  # the export run itself says what is wrong with the location


def _demo_calibrations(cloud: Any, out_dir: str, storage_options: dict[str, str]) -> int:
    """Commit the demo cloud's device snapshots once a week over its history (its calibrations change every few
    hours), so that a first demo export joins its jobs to calibrations; returns the commit."""
    from oqtopus_data.run.device_snapshot import record_snapshots

    manifest, _ = record_snapshots(out_dir, cloud.history.device_snapshots(timedelta(days=7)), **storage_options)
    return manifest.version


def _demo_port(out_dir: str) -> int:
    """The port of the demo server a directory was exported from (0: any), so that --demo again continues it: an
    export is tied to the URL it came from."""
    from urllib.parse import urlsplit

    from oqtopus_data.dataset.dataset import Dataset
    from oqtopus_data.dataset.state import SyncState

    try:
        manifest = Dataset(out_dir).latest()
        state = SyncState.from_json(manifest.state) if manifest is not None else None
        if state is None or state.source is None:
            return 0
        parts = urlsplit(state.source.api_url)
        return (parts.port or 0) if parts.hostname == "127.0.0.1" else 0
    except (OqtopusDataError, OSError, ValueError):
        return 0  # the export run itself says what is wrong with the directory


def _run(credentials: Any, out_dir: str, options: Any, storage_options: dict[str, str], console: Console) -> Any:
    """One export run; every way it can end other than a report becomes one sentence and an exit status."""
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.run.export import Interrupted, export

    stop = threading.Event()
    try:
        with ApiClient(credentials, workers=options.workers, notice=console.notice) as api, \
                stop_on_signals(stop, out_dir):
            return export(api, out_dir, options, progress=console.progress, storage_options=storage_options,
                          notice=console.notice, stop=stop)
    except Interrupted as exc:
        fail(f"{exc}; run the same command again to continue", EXIT_FAILED)
    except (ConfigError, AuthError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (OqtopusDataError, OSError) as exc:
        _stopped(exc, out_dir, started=console.started)
    finally:
        console.close()


def _stopped(exc: OqtopusDataError | OSError, out_dir: str, *, started: bool) -> NoReturn:
    """End a run that failed: before it got going, a set-up problem (the dataset, the directory, the server);
    once going, or on a full or failing disk, a run cut short, which the next one continues."""
    message = str(exc) if isinstance(exc, OqtopusDataError) else f"cannot write the export: {exc.strerror or exc}"
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    errno_ = cause.errno if isinstance(cause, OSError) else None
    if started or errno_ in _RUNTIME_ERRNOS:
        fail(f"{message}; the export stopped: {out_dir} holds its last commit, nothing half-written; run the same "
             "command again to continue", EXIT_FAILED)
    if isinstance(exc, StoreError | OSError):
        if errno_ in (errno.EACCES, errno.EPERM, errno.EROFS):
            message += ": export into a directory you can write to"
        fail(message, EXIT_USAGE)
    fail(f"{message}; nothing was written: try again later", EXIT_FAILED)  # the server failed for good


def _compact(out_dir: str, storage_options: dict[str, str], quiet: bool, views_file: Path | None) -> None:
    from oqtopus_data.dataset.dataset import Dataset, compact

    dataset = Dataset(out_dir, **storage_options)
    before = dataset.require_latest()
    after = compact(dataset, min_files=2)
    if views_file is not None:
        _refresh_views(out_dir, views_file)
    if quiet:
        return
    if after is None:
        click.echo(f"{out_dir}: nothing to compact ({len(before.all_entries())} data files)")
    else:
        click.echo(f"{out_dir}: {len(before.all_entries())} data files -> {len(after.all_entries())} "
                   f"(commit {after.version})")


def _refresh_views(out_dir: str, views_file: Path) -> None:
    """Rewrite the views file over the newest commit, if there is one; a failure is said (the export stands)."""
    from oqtopus_data.cli.views_file import write_views_file
    from oqtopus_data.dataset.dataset import Dataset

    try:
        if Dataset(out_dir).latest() is not None:
            write_views_file(out_dir, views_file)
    except Exception as exc:  # DuckDB's errors too: the export stands whatever happens to its views file
        say(f"cannot write the DuckDB file {views_file}: {exc}; write it with `oqtopus-data duckdb {out_dir} "
            f"{views_file}`")
