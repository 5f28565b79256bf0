"""One export run: list jobs, fetch their archives, flatten in batches, write, commit with the sync state.

A run into a directory that holds an export continues it:

- the listing starts where the last run's ended (`listed_until`), minus a lookback that covers the longest gap
  between a job's creation and its submission (`max_submit_delay`) and a server comparing bounds in another time
  zone; jobs already committed as final are skipped, so the overlap costs requests but never duplicates a row;
- jobs that were not terminal last time (`pending`) and jobs that failed (`retry`) are fetched again by id; SSE jobs
  whose log failed (`log_retry`) have only their log fetched again;
- rows of terminal jobs are final; rows of jobs that may still change, and the current errors, are volatile and
  replaced by every commit (`rows`).

The state (`state.SyncState`) is written in the same manifest as the files it describes. A long run commits a
checkpoint every `checkpoint_jobs` jobs or `checkpoint_seconds` seconds, and when asked to stop.

What a run does not take on one answer's word:

- the run's time is the server's clock (the Date header of its answers; this machine's only when it sends none);
  a stored listing bound later than the server's now (time ran backwards) lists again from the start of the newest
  month the dataset holds jobs of, and says so;
- a job whose GET /jobs/{id} answers 404 keeps its rows and is fetched again by id until the deletion is confirmed:
  a 404 again at least `state.GONE_AFTER` (1 hour, server's clock) after the first, or absent from a reconcile's
  complete listing and 404 again; then its rows are dropped and a notice names it;
- a body of another job than the one asked for is that job's error (its rows untouched);
- a clock step, a foreign body or an unconfirmed 404 makes the run reconcile (`reconcile`) before its last commit,
  as `verify` asks and as `verify_every` schedules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from oqtopus_data.client.api import ApiClient
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import Manifest
from oqtopus_data.dataset.state import Source, SyncState
from oqtopus_data.dataset.writer import Writer, discard_new
from oqtopus_data.fetch.jobs import fetch_jobs
from oqtopus_data.fetch.pages import job_identity
from oqtopus_data.fetch.windows import Window
from oqtopus_data.results.base import OqtopusJobResult
from oqtopus_data.run.bounds import Span, run_clock
from oqtopus_data.run.checkpoint import Commits, conclude
from oqtopus_data.run.device_snapshot import check_devices, export_devices, public_url, write_snapshots
from oqtopus_data.run.follow import Follow
from oqtopus_data.run.info import ExportOptions, ExportReport, Interrupted, Progress
from oqtopus_data.run.ledger import Ledger
from oqtopus_data.run.reconcile import reconcile, verify_reason
from oqtopus_data.run.rows import RunRows, VolatileRows
from oqtopus_data.run.sse import LogStep
from oqtopus_data.selection import select
from oqtopus_data.tables.devices import fetch_devices
from oqtopus_data.tables.flatten import flatten_batch
from oqtopus_data.tables.typed import TypedJob, read_job


def export(api: ApiClient, out_dir: str | Path, options: ExportOptions | None = None, *,
           progress: Progress | None = None, storage_options: dict[str, str] | None = None,
           notice: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> ExportReport:
    """Export (or continue exporting) the job history the API serves into the dataset at `out_dir`.

    `out_dir` is a local directory or an object-store URL (`storage_options` go to that store). `notice` receives
    one-line remarks worth showing a user (a refused page size, jobs the server left out); setting `stop` makes the
    run commit what it has and raise Interrupted.
    """
    options = options or ExportOptions()
    started = time.monotonic()
    dataset = Dataset(out_dir, **(storage_options or {}))
    created = dataset.prepare()  # atomic: of two racing runs, one alone made it
    try:
        report = export_devices(api, dataset, compact_after_files=options.compact_after_files, notice=notice) \
            if options.devices_only else _export(api, dataset, options, progress or (lambda _event, _n: None),
                                                 notice or (lambda _m: None), stop or threading.Event())
    except BaseException:
        if created:  # under the lock, only while nothing is committed: a racing winner keeps its work
            discard_new(dataset.storage)
        raise
    report.seconds = time.monotonic() - started
    return report


def _export(api: ApiClient, dataset: Dataset, options: ExportOptions, progress: Progress,
            notice: Callable[[str], None], stop: threading.Event) -> ExportReport:
    """Set a run up (the account, the server's clock, the devices, the previous state), run it inside one writer,
    and conclude its report."""
    report = ExportReport(str(dataset.storage.uri("")))

    def say(message: str) -> None:
        report.notes.append(message)
        notice(message)

    account = api.preflight() or {}  # set-up errors (no connection, wrong URL, bad token) end here
    now = run_clock(api)
    source = Source.from_account(public_url(api), account)
    devices, device_error = fetch_devices(api) if options.devices_snapshot or options.devices else (None, None)
    check_devices(options.devices, devices, dataset, say)
    ledger = Ledger(SyncState(since=options.since, filters=options.filters().locked()), report, VolatileRows(),
                    now, say)
    operation = "full-refresh" if options.full_refresh else "export"
    with dataset.writer(operation=operation, fresh=options.full_refresh, repair=options.repair) as writer:
        for note in writer.notes:
            say(note)
        base = None if options.full_refresh or writer.base is None else writer.base.state
        run = _Run(api, dataset, writer, options, ledger, SyncState.from_json(base), progress, stop)
        manifest = run.execute(source, devices, device_error)
    conclude(report, api, dataset, manifest, compact_after_files=options.compact_after_files)
    return report


class _Run:
    """One run inside its writer: `execute` is the whole algorithm, each helper one step of it; the ledger keeps
    its books, `span` its listing bounds, `follow` the jobs followed by id, `commits` its commits."""

    def __init__(self, api: ApiClient, dataset: Dataset, writer: Writer, options: ExportOptions, ledger: Ledger,
                 previous: SyncState | None, progress: Progress, stop: threading.Event) -> None:
        self.api, self.writer, self.options, self.previous = api, writer, options, previous
        self.ledger, self.report, self.now, self.notice = ledger, ledger.report, ledger.now, ledger.notice
        self.progress, self.stop = progress, stop
        self.filters = options.filters()
        self.rows = RunRows(writer, self.now, options.flush_rows, ledger.volatile, refused=ledger.failed)
        self.logs = LogStep(dataset, writer)
        self.span = Span(ledger, options, writer, continued=previous is not None)
        self.commits = Commits(self.rows, self.logs, ledger, self.span, options)
        self.follow = Follow(api, ledger, writer, workers=options.workers, take=self._take, commit=self.commits.commit)

    @property
    def state(self) -> SyncState:
        """The sync state this run builds (the ledger keeps it)."""
        return self.ledger.state

    def execute(self, source: Source, devices: list[dict[str, Any]] | None, device_error: str | None) -> Manifest:
        """Continue the last run, fetch the followed jobs again, list the new ones, snapshot the devices, reconcile
        when due, and commit."""
        self._continue_from(source)
        self.span.check_clock()
        self.span.repair()
        refreshed = self._refresh(sorted(self.state.followed()))
        self._retry_logs(sorted(self.state.log_retry - refreshed))
        if self.options.sse_logs:  # the logs of jobs exported by runs without --sse-logs, once
            self.ledger.logs_saved(*self.logs.backfill(self.api, self.state, workers=self.options.workers,
                                                       progress=self.progress, notice=self.notice,
                                                       stop=self.stop.is_set))
        root = self.span.root(self.filters.since)
        known = self.writer.ids("jobs") if self.previous else set()  # read once per run, by the writer that also
        # refuses a second row of a job
        self._list(root, known | refreshed)
        if device_error is not None:
            self.ledger.failed(None, "devices", device_error)
        if devices is not None and self.options.devices_snapshot:
            self._snapshot(devices)
        reason = verify_reason(self.options, self.ledger, continued=self.previous is not None)
        if reason is not None:
            self._reconcile(reason)
        return self.commits.commit(final=True)

    def _continue_from(self, source: Source) -> None:
        """Take the previous commit's state (checked: the same selection and source) and its volatile rows."""
        self.state.source = source
        self.state.verified_at = self.now  # a first run lists the whole selection: as good as a reconcile
        if self.previous is None:
            return
        self.report.incremental = True
        self.ledger.state = self.previous.continued(self.filters, source)
        self.filters = replace(self.filters, since=self.state.since)
        self.rows.carry()

    # --------------------------------------------------------------------------------------- sources
    def _refresh(self, job_ids: list[str]) -> set[str]:
        """Fetch again, by id, the jobs that were pending or failed last time; returns the ids handled."""
        if not job_ids:
            return set()
        jobs = self.follow.changed(job_ids)
        try:
            self._process(jobs)
        finally:
            jobs.close()
        return set(job_ids)

    def _retry_logs(self, job_ids: list[str]) -> None:
        """Download again the SSE logs that failed last time (the jobs' rows are final already)."""
        if job_ids and self.options.sse_logs:
            self.ledger.asked_again(job_ids, logs=True)
            self.ledger.logs_saved(*self.logs.retry(self.api, job_ids, workers=self.options.workers))

    def _list(self, root: Window, skip: set[str]) -> None:
        """Walk the listing and export what it brings, checkpointing as it goes."""
        lister = self.span.walk(self.api, root)

        def listed() -> Iterator[dict[str, Any]]:
            for item in lister:
                self.report.listed += 1
                self.progress("listed", 1)
                if job_identity(item.job) in skip:
                    self.report.skipped += 1
                elif self._take(item.job):
                    self.span.listed(item.window)
                    yield item.job

        jobs = listed()
        try:
            self._process(jobs, done=self.span.processed, checkpoints=True)
        finally:
            jobs.close()  # stops the listing threads when the run ends early
        self.ledger.listing_failed("list", lister.failures)

    def _take(self, job: object) -> bool:
        """Apply the selection to one job: follow it by id if it may change; True when its rows are wanted."""
        choice = select(job, self.filters)
        job_id = job.get("job_id") if isinstance(job, dict) else None
        if isinstance(job_id, str):
            self.ledger.follow(job_id, follow=choice.follow, export=choice.export)
        return choice.export

    # --------------------------------------------------------------------------------------- processing
    def _process(self, jobs: Iterable[dict[str, Any]], *, done: Callable[[], None] | None = None,
                 checkpoints: bool = False) -> None:
        """Fetch, parse and flatten `jobs` in batches, committing checkpoints when asked."""
        batch: list[TypedJob | OqtopusJobResult] = []
        fetched = fetch_jobs(self.api, jobs, workers=self.options.workers, sse_logs=self.options.sse_logs)
        try:
            for item in fetched:
                if item.error is not None:
                    self.ledger.failed(item.job_id, item.error.stage, item.error.problem)
                elif item.job is None:  # GET /jobs/{id} answered 404
                    self.follow.answered_404(item.job_id)
                else:
                    self.ledger.answered(item.job_id)
                    self.progress("fetched", 1)
                    if self.options.sse_logs:
                        self.logs.hold(item.job_id, item.sse_log, item.sse_log_error, item.job)
                    try:
                        batch.append(read_job(item.job, client=self.api))
                    except (ValueError, TypeError) as exc:
                        self.ledger.failed(item.job_id, "parse", str(exc))
                if done is not None:
                    done()
                if len(batch) >= min(self.options.batch_jobs, self.options.checkpoint_jobs):
                    self._flatten(batch)
                    batch = []
                if (checkpoints and self.commits.due()) or self.stop.is_set():
                    self._flatten(batch)
                    batch = []
                    manifest = self.commits.commit()
                    if self.stop.is_set():
                        raise Interrupted(f"stopped on request: commit {manifest.version} holds the "
                                          f"{self.report.exported:,} jobs exported so far")
        finally:
            fetched.close()
        self._flatten(batch)

    def _flatten(self, results: list[TypedJob | OqtopusJobResult]) -> None:
        """Rows of a batch: final ones buffered, volatile ones kept for the commit, failures recorded."""
        if not results:
            return
        flat = flatten_batch(results, exported_at=self.now)
        self.ledger.volatile.drop([r.job_id for r in results])
        for job_id, message in flat.errors:
            self.ledger.failed(job_id, "flatten", message)
        self.report.rows.update(self.rows.add(flat.tables, flat.final_ids))
        self.report.count_jobs(flat.tables["jobs"])
        self.commits.counted(len(results))
        self.progress("rows", sum(t.num_rows for t in flat.tables.values()))
        if self.options.sse_logs:
            self.ledger.logs_saved(*self.logs.release(flat.final_ids))

    # --------------------------------------------------------------------------------------- closing steps
    def _snapshot(self, devices: list[dict[str, Any]]) -> None:
        """Write the device snapshot and the calibrations not stored yet; a record no column can hold, or a
        calibration that cannot be read, is noted (an errors row), the others kept."""
        written = write_snapshots(self.writer, [(self.now, devices)])
        for job_id, stage, message in written.errors:
            self.ledger.note_row_error(job_id, stage, message)
        written.tell(self.report, self.notice)

    def _reconcile(self, reason: str) -> None:
        """List the whole selection lightly, compare it with the dataset, fetch what is missing or changed, drop
        what is confirmed gone, and say what differed."""
        self.notice(f"verify ({reason}): listing the ids and statuses of the whole selection")
        self.commits.commit()  # everything this run wrote, readable where the comparison reads it
        found = reconcile(self.api, self.writer, self.span.root(self.filters.since, resume=False), self.filters,
                          failing=self.state.retry, now=self.now, workers=self.options.listing_workers,
                          limits=self.options.listing_limits, notice=self.notice)
        self.ledger.listing_failed("verify", found.inventory.failures)
        self.follow.drop_final(found.final_changed())
        self._refresh(found.to_fetch())
        self.follow.confirm_gone(found.unlisted(self.state.suspects))
        self.ledger.verified(found.differences.describe(), found.matches(), complete=found.inventory.complete)
