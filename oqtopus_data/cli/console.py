"""What the commands show: `oqtopus-export`'s progress, notices, Ctrl-C and summary, and `echo_data` for text that
holds data (on a terminal with its control characters escaped by `failures.escaped`, so a job name cannot set the
window title or write the clipboard; a file or a pipe gets the data as it is)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from oqtopus_data.cli.failures import EXIT_FAILED, escaped, hide_token, is_terminal, say, speaker


def echo_data(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Write text that holds data (server text: job names, device ids, messages) to stdout or stderr: on a terminal
    with its control characters escaped (line breaks kept), elsewhere (a file, a pipe) as it is."""
    click.echo(escaped(text, keep="\n") if is_terminal(err) else text, err=err, nl=nl)


class Console:
    """Progress on stderr (one line redrawn on a terminal, a log line every 10 s otherwise) and notices.

    `started` tells whether the run got past its set-up (it reported progress): an error before that is a set-up
    error with nothing to resume."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.line = speaker()  # notices come from the client's threads too
        self.tty = click.get_text_stream("stderr").isatty()
        self.counts = {"listed": 0, "fetched": 0, "rows": 0}
        self.started = False
        self.began = self.last = time.monotonic()
        self.drawn = False
        self._lock = threading.Lock()

    def progress(self, event: str, n: int) -> None:
        """The export's progress callback: `n` more of `event` (listed, fetched, rows, logs)."""
        with self._lock:
            self.started = True
            self.counts[event] = self.counts.get(event, 0) + n
            now = time.monotonic()
            if self.quiet or now - self.last < (0.2 if self.tty else 10.0):
                return
            self.last = now
            logs = f"logs {self.counts['logs']:,} · " if self.counts.get("logs") else ""
            line = (f"listed {self.counts['listed']:,} jobs · fetched {self.counts['fetched']:,} · {logs}"
                    f"rows {self.counts['rows']:,} · {now - self.began:.0f}s")
            if self.tty:
                click.echo("\r" + line + "\x1b[K", err=True, nl=False)
                self.drawn = True
            else:
                click.echo(line, err=True)

    def notice(self, message: str) -> None:
        """A remark of the client or the run (a long retry, a refused page size, jobs the server left out)."""
        if self.quiet:
            return
        with self._lock:
            self._clear()
            echo_data(self.line(message), err=True)

    def close(self) -> None:
        """Take the progress line off the terminal."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self.drawn:
            click.echo("\r\x1b[K", err=True, nl=False)
            self.drawn = False


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, out_dir: str) -> Iterator[None]:
    """While an export runs, the first Ctrl-C (SIGINT) or SIGTERM sets `stop`: the run commits what it fetched and
    stops. A second one ends the process at once, which is as safe as a crash: the last commit stays whole and the
    next run removes what this one left behind (unwinding instead would wait for downloads in flight)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    line = speaker()

    def write(message: str) -> None:
        # Raw write: the handler may interrupt a write to the buffered stderr, which must not be entered twice.
        os.write(2, f"{line(message)}\n".encode(errors="replace"))

    def handle(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            stop.set()
            write("stopping: committing what was fetched so far (press Ctrl-C again to stop at once)")
            return
        write(f"stopped at once: {out_dir} holds its last commit; run the same command again to continue")
        os._exit(EXIT_FAILED)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def print_summary(report: Any, out_dir: str, views_file: Path | None) -> None:
    """What a finished run did: jobs by type and status, rows, requests; the jobs that failed on stderr."""
    kind = "incremental export" if report.incremental else "export"
    click.echo(f"{kind} to {out_dir}: commit {report.version}, {report.exported:,} jobs written "
               f"({report.listed:,} listed, {report.skipped:,} already exported) in {report.seconds:.1f}s")
    if report.jobs_by_type_status:
        click.echo("jobs by type and status:")
        for (job_type, status), n in sorted(report.jobs_by_type_status.items(), key=lambda kv: str(kv[0])):
            click.echo(f"  {job_type or '?':<13} {status or '?':<11} {n:>9,}")
    rows = {k: v for k, v in report.rows.items() if v}
    if rows:
        click.echo("rows written: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())))
    if report.requests.get("requests"):
        click.echo(f"HTTP requests: {_requests_line(report.requests)}")
    if report.compacted:
        click.echo("small files were compacted")
    if views_file is not None:
        click.echo(f"DuckDB database with the views: {views_file}")
    print_failures(report, out_dir)


def print_failures(report: Any, out_dir: str) -> None:
    """What failed, on stderr: problems of the run (the listing, the devices), then the jobs, then an incomplete
    listing. All of it is in the errors table, and tried again by the next run."""
    run = [(stage, message) for job_id, stage, message in report.errors if job_id is None]
    jobs = [error for error in report.errors if error[0] is not None]
    if run:
        click.echo("the run met problems (they are in the errors table; the next run tries again):", err=True)
        for stage, message in run[:10]:
            echo_data(f"  {stage}: {hide_token(message)}", err=True)
    if jobs:
        click.echo(f"{len(jobs)} job(s) could not be exported; they are in the errors table and are tried again "
                   "on the next run:", err=True)
        for job_id, stage, message in jobs[:10]:
            echo_data(f"  {job_id}: {stage}: {hide_token(message)}", err=True)
    if len(run) > 10 or len(jobs) > 10:
        click.echo(f"  ... and more: oqtopus-data sql {out_dir} \"SELECT * FROM errors\"", err=True)
    if not report.complete:
        say("the listing could not be shown complete (the windows are in the errors table, stage list); run the "
            "same command again to continue")


def print_differences(report: Any) -> None:
    """What --verify found differing (and mended), on stderr: with -q, where notices are not shown, the reason for
    exit status 1 when nothing failed."""
    if report.differences:
        click.echo("--verify found the dataset differing from the server:", err=True)
        for line in report.differences:
            echo_data(f"  {line}", err=True)


def _requests_line(stats: dict[str, Any]) -> str:
    by_kind = {k: v for k, v in (stats.get("requests") or {}).items() if v}
    line = f"{sum(by_kind.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in sorted(by_kind.items())) + ")"
    if stats.get("retries"):
        line += f", {stats['retries']:,} retried"
    return line

