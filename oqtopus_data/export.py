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

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import schema as S
from .api import ApiClient
from .dataset import Dataset, compact, excess_file_count
from .device_snapshot import export_devices, public_url, write_snapshots
from .devices import check_device_names, fetch_devices
from .enums import TERMINAL
from .errors import ConfigError, OqtopusDataError
from .fetch import fetch_jobs, refetch_jobs, refetch_sse_logs
from .flatten import flatten_batch
from .ledger import Ledger, duration_text
from .listing import Lister
from .manifest import Manifest
from .pages import job_identity
from .reconcile import compare, held_statuses, server_inventory
from .results import result_from_raw
from .rows import RunRows, VolatileRows, drop_final
from .runinfo import ExportOptions, ExportReport, Interrupted, Progress
from .selection import select
from .sse import LogStep
from .state import GONE_AFTER, Source, SyncState
from .storable import escaped
from .times import format_time
from .windows import SHIFT_SLACK, root_window
from .writer import Writer, discard_new

#: How far a stored listing bound may lie past the server's clock before time counts as having run backwards.
CLOCK_TOLERANCE = timedelta(minutes=5)


def _local_now() -> datetime:
    """This machine's clock: the run's time only when the server sends no Date header (tests move it)."""
    return datetime.now(UTC)


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
    run = _Run(api, dataset, options, progress or (lambda _event, _n: None), notice or (lambda _m: None),
               stop or threading.Event())
    try:
        report = export_devices(api, dataset, compact_after_files=options.compact_after_files, notice=notice) \
            if options.devices_only else run.execute()
    except BaseException:
        if created:  # under the lock, only while nothing is committed: a racing winner keeps its work
            discard_new(dataset.storage)
        raise
    report.seconds = time.monotonic() - started
    return report


class _Run:
    """One run; `execute` is the whole algorithm, each helper one step of it."""

    def __init__(self, api: ApiClient, dataset: Dataset, options: ExportOptions, progress: Progress,
                 notice: Callable[[str], None], stop: threading.Event) -> None:
        self.api, self.dataset, self.options = api, dataset, options
        self.progress, self.notice, self.stop = progress, notice, stop
        self.filters = options.filters()
        self.report = ExportReport(str(dataset.storage.uri("")))
        self.manifest: Manifest | None = None
        self.now = datetime.now(UTC)
        self.volatile = VolatileRows()
        self.ledger = Ledger(SyncState(since=options.since, filters=self.filters.locked()), self.report,
                             self.volatile, self.now, self._notice)
        self.previous: SyncState | None = None
        self.lister: Lister | None = None
        self.outstanding: Counter[int] = Counter()  # listed jobs of each window not processed yet
        self.since_checkpoint = (0, time.monotonic())

    @property
    def state(self) -> SyncState:
        """The sync state this run builds (the ledger keeps it)."""
        return self.ledger.state

    # ------------------------------------------------------------------------------------------ the run
    def execute(self) -> ExportReport:
        account = self.api.preflight() or {}  # set-up errors (no connection, wrong URL, bad token) end here
        self.now = self.ledger.now = self._clock()
        source = Source(api_url=public_url(self.api), account_id=_text(account.get("id")),
                        organization=_text(account.get("organization")), name=_text(account.get("name")))
        devices, device_error = (None, None)
        if self.options.devices_snapshot or self.options.devices:
            devices, device_error = fetch_devices(self.api)
        self._check_devices(devices)
        operation = "full-refresh" if self.options.full_refresh else "export"
        with self.dataset.writer(operation=operation, fresh=self.options.full_refresh,
                                 repair=self.options.repair) as writer:
            self.writer = writer
            self.rows = RunRows(writer, self.now, self.options.flush_rows, self.volatile, refused=self.ledger.failed)
            self.logs = LogStep(self.dataset, writer)
            for note in writer.notes:
                self._notice(note)
            self._continue_from(writer, source)
            self._check_clock(writer)
            self._repair(writer)
            refreshed = self._refresh(sorted(self.state.followed()))
            self._retry_logs(sorted(self.state.log_retry - refreshed))
            if self.options.sse_logs:  # the logs of jobs exported by runs without --sse-logs, once
                self._logs_done(*self.logs.backfill(self.api, self.state, workers=self.options.workers,
                                                    progress=self.progress, notice=self._notice,
                                                    stop=self.stop.is_set))
            root = self._root()
            known = writer.ids("jobs") if self.previous else set()  # read once per run, by the writer that also
            # refuses a second row of a job
            self._list(root, known | refreshed)
            if device_error is not None:
                self.ledger.failed(None, "devices", device_error)
            if devices is not None and self.options.devices_snapshot:
                self._snapshot(devices)
            reason = self._verify_reason()
            if reason is not None:
                self._reconcile(reason)
            self.manifest = self._commit(final=True)
        self.report.version = self.manifest.version
        stats = getattr(self.api, "stats", None)
        self.report.requests = dict(stats.snapshot()) if stats is not None else {}
        if excess_file_count(self.manifest) >= self.options.compact_after_files:
            compacted = compact(self.dataset)
            if compacted is not None:
                self.manifest, self.report.compacted = compacted, True
                self.report.version = compacted.version
        return self.report

    def _continue_from(self, writer: Writer, source: Source) -> None:
        """Take the previous commit's state (checked: the same selection and source) and its volatile rows."""
        self.state.source = source
        self.state.verified_at = self.now  # a first run lists the whole selection: as good as a reconcile
        if self.options.full_refresh or writer.base is None:
            return
        previous = SyncState.from_json(writer.base.state)
        if previous is None:
            return
        self.previous = previous
        self.report.incremental = True
        self.ledger.state = previous.continued(self.filters, source)
        self.filters = replace(self.filters, since=self.state.since)
        self.rows.carry()

    def _clock(self) -> datetime:
        """The run's time: the server's clock (its latest Date header), else this machine's."""
        server_now = getattr(self.api, "server_now", None)
        server = server_now() if callable(server_now) else None
        return server if server is not None else _local_now()

    def _check_clock(self, writer: Writer) -> None:
        """Time ran backwards (the stored listing bound is later than the server's now): list again from the start
        of the newest month the dataset holds jobs of, which no job created since the bound was stored precedes."""
        stored = self.state.listed_until if self.previous else None
        if stored is None or stored - self.now <= CLOCK_TOLERANCE:
            return
        months = sorted(e.partition for e in writer.files.get("jobs", [])
                        if e.partition and e.partition != S.UNKNOWN_MONTH)
        earlier = datetime.strptime(months[-1], "%Y-%m").replace(tzinfo=UTC) if months else None
        if earlier is not None:
            earlier = min(earlier, self.now)
        self.state.listed_until = earlier
        self.ledger.anomalies.append("the clock stepped back")
        self._notice(f"time ran backwards: the last run listed jobs up to {format_time(stored)}, but the server's "
                     f"clock says {format_time(self.now)}; listing again from "
                     f"{format_time(earlier) if earlier else 'the start of the selection'}")

    def _repair(self, writer: Writer) -> None:
        """Take out every file of the months that lost one, and list from the first of them again."""
        months = writer.missing_months if writer.missing else []
        if not months:
            return
        writer.drop_partitions(months)
        self._notice(f"repairing: {len(writer.missing)} lost data file(s); fetching the jobs of "
                     f"{', '.join(months)} again")
        dated = sorted(m for m in months if m != S.UNKNOWN_MONTH)
        if S.UNKNOWN_MONTH in months or not dated:
            self.state.listed_until = None  # jobs without a month: list from the start of the selection
        else:
            first = datetime.strptime(dated[0], "%Y-%m").replace(tzinfo=UTC)
            if self.state.listed_until is not None:
                self.state.listed_until = min(self.state.listed_until, first)

    def _root(self) -> Any:
        """The window of creation time this run lists (in GET /jobs' terms)."""
        lookback = self.options.max_submit_delay + SHIFT_SLACK
        starts = [t - lookback for t in (self.state.listed_until, self.filters.since) if t is not None]
        end = self.options.until + SHIFT_SLACK if self.options.until is not None else None
        return root_window(max(starts) if starts else None, end)

    # --------------------------------------------------------------------------------------- sources
    def _refresh(self, job_ids: list[str]) -> set[str]:
        """Fetch again, by id, the jobs that were pending or failed last time; returns the ids handled."""
        if not job_ids:
            return set()
        already_final = set(job_ids) & self.writer.ids("jobs")
        known = self.volatile.statuses()

        def changed() -> Iterator[dict[str, Any]]:
            for job_id, job, error in refetch_jobs(self.api, job_ids, workers=self.options.workers):
                self.ledger.asked_again([job_id])
                if error is not None:  # keep its old rows; try again next run
                    self.ledger.failed(job_id, error.stage, error.problem, keep_rows=True)
                elif job is None:
                    self._answered_404(job_id)
                elif job_id in already_final:  # its rows are final already
                    self.ledger.final_already(job_id)
                elif self.ledger.answered(job_id) and self._take(job) and not (job.get("status") not in TERMINAL
                                              and known.get(job_id) == job.get("status")):
                    yield job  # changed since last time (a job still where it was keeps its rows)

        jobs = changed()
        try:
            self._process(jobs)
        finally:
            jobs.close()
        return set(job_ids)

    def _retry_logs(self, job_ids: list[str]) -> None:
        """Download again the SSE logs that failed last time (the jobs' rows are final already)."""
        if not job_ids or not self.options.sse_logs:
            return
        self.ledger.asked_again(job_ids, logs=True)
        logs = []
        for job_id, data, error in refetch_sse_logs(self.api, job_ids, workers=self.options.workers):
            if error is not None:
                self.ledger.log_failed(job_id, error.problem)
            elif data is not None:
                logs.append((job_id, data))
        self._logs_done(*self.logs.save(logs))

    def _list(self, root: Any, skip: set[str]) -> None:
        """Walk the listing and export what it brings, checkpointing as it goes."""
        workers = max(1, min(self.options.workers, 8))
        self.lister = Lister(self.api, root, now=self.now, page_size=self.options.page_size, workers=workers,
                             limits=self.options.listing_limits, notice=self._notice)
        order: deque[int] = deque()

        def listed() -> Iterator[dict[str, Any]]:
            assert self.lister is not None
            for item in self.lister:
                self.report.listed += 1
                self.progress("listed", 1)
                if job_identity(item.job) in skip:
                    self.report.skipped += 1
                    continue
                if not self._take(item.job):
                    continue
                self.outstanding[item.window] += 1
                order.append(item.window)
                yield item.job

        def done() -> None:
            self.outstanding[order.popleft()] -= 1

        jobs = listed()
        try:
            self._process(jobs, done=done, checkpoints=True)
        finally:
            jobs.close()  # stops the listing threads when the run ends early
        for failure in self.lister.failures:
            self.report.complete = False
            self.ledger.failed(None, "list", str(failure))

    def _take(self, job: Any) -> bool:
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
        batch: list[Any] = []
        fetched = fetch_jobs(self.api, jobs, workers=self.options.workers, sse_logs=self.options.sse_logs)
        try:
            for item in fetched:
                if item.error is not None:
                    self.ledger.failed(item.job_id, item.error.stage, item.error.problem)
                elif item.job is None:  # GET /jobs/{id} answered 404
                    self._answered_404(item.job_id)
                else:
                    self.ledger.answered(item.job_id)
                    self.progress("fetched", 1)
                    if self.options.sse_logs:
                        self.logs.hold(item.job_id, item.sse_log, item.sse_log_error, item.job)
                    try:
                        batch.append(result_from_raw(item.job, client=self.api))
                    except (ValueError, TypeError) as exc:
                        self.ledger.failed(item.job_id, "parse", str(exc))
                if done is not None:
                    done()
                if len(batch) >= min(self.options.batch_jobs, self.options.checkpoint_jobs):
                    self._flatten(batch)
                    batch = []
                if (checkpoints and self._checkpoint_due()) or self.stop.is_set():
                    self._flatten(batch)
                    batch = []
                    manifest = self._commit(final=False)
                    if self.stop.is_set():
                        raise Interrupted(f"stopped on request: commit {manifest.version} holds the "
                                          f"{self.report.exported:,} jobs exported so far")
        finally:
            fetched.close()
        self._flatten(batch)

    def _checkpoint_due(self) -> bool:
        jobs, since = self.since_checkpoint
        return jobs >= self.options.checkpoint_jobs or (
            jobs > 0 and time.monotonic() - since >= self.options.checkpoint_seconds)

    def _flatten(self, results: list[Any]) -> None:
        """Rows of a batch: final ones buffered, volatile ones kept for the commit, failures recorded."""
        if not results:
            return
        flat = flatten_batch(results, exported_at=self.now)
        tables, final_ids = flat.tables, flat.final_ids
        self.volatile.drop([r.job_id for r in results])
        for job_id, message in flat.errors:
            self.ledger.failed(job_id, "flatten", message)
        self.report.rows.update(self.rows.add(tables, final_ids))
        for row in tables["jobs"].select(["job_type", "status"]).to_pylist():
            self.report.jobs_by_type_status[(row["job_type"], row["status"])] += 1
        count, since = self.since_checkpoint
        self.since_checkpoint = (count + len(results), since)
        self.progress("rows", sum(t.num_rows for t in tables.values()))
        if self.options.sse_logs:
            self._logs_done(*self.logs.release(final_ids))

    def _logs_done(self, written: int, errors: list[tuple[str, str]]) -> None:
        self.report.rows["sse_logs"] += written
        for job_id, problem in errors:
            self.ledger.log_failed(job_id, problem)

    # --------------------------------------------------------------------------------------- deletions
    def _answered_404(self, job_id: str | None) -> None:
        """A 404 on GET /jobs/{id}: the ledger's rule says whether it confirms a deletion; if so, the rows go."""
        if job_id is not None and self.ledger.answered_404(job_id):
            self._gone([job_id], f"GET /jobs/{{id}} answered 404 again {duration_text(GONE_AFTER)} or more after "
                                 "the first time")

    def _gone(self, job_ids: list[str], why: str) -> None:
        """Drop every row of jobs confirmed deleted on the server (final ones too), and say so."""
        self.ledger.gone(job_ids, why)
        self._drop_final(job_ids)

    def _drop_final(self, job_ids: list[str]) -> None:
        """Take these jobs' rows out of the committed final files, committed at once: what reads final files next
        (the ids to skip, the reconcile) reads them."""
        if drop_final(self.dataset.storage, self.writer, job_ids):
            self._commit(final=False)

    # --------------------------------------------------------------------------------------- reconcile
    def _verify_reason(self) -> str | None:
        """Why this run reconciles (asked, after anomalies, or on schedule), or None."""
        if self.options.verify:
            return "asked for"
        anomalies = self.ledger.anomalies
        if anomalies:
            return "after " + "; ".join(anomalies[:3]) + (" ..." if len(anomalies) > 3 else "")
        every, last = self.options.verify_every, self.state.verified_at
        if self.previous is None or not every:
            return None
        if last is None or self.now - last >= every or last - self.now > CLOCK_TOLERANCE:
            return f"none in the last {duration_text(every)}"
        return None

    def _reconcile(self, reason: str) -> None:
        """List the whole selection lightly, compare it with the dataset, fetch what is missing or changed, drop
        what is confirmed gone, and say what differed."""
        self._notice(f"verify ({reason}): listing the ids and statuses of the whole selection")
        self._commit(final=False)  # everything this run wrote, readable where the comparison reads it
        lookback = self.options.max_submit_delay + SHIFT_SLACK
        end = self.options.until + SHIFT_SLACK if self.options.until is not None else None
        root = root_window(self.filters.since - lookback if self.filters.since is not None else None, end)
        inventory = server_inventory(self.api, root, self.filters, now=self.now,
                                     workers=max(1, min(self.options.workers, 8)),
                                     limits=self.options.listing_limits, notice=self._notice)
        for failure in inventory.failures:
            self.report.complete = False
            self.ledger.failed(None, "verify", failure)
        held = held_statuses(self.dataset.storage, self.writer.files.get("jobs", []))
        differences = compare(inventory.statuses, held, complete=inventory.complete, failing=self.state.retry)
        self._drop_final([j for j in differences.changed if held[escaped(j)[0]][1]])
        self._refresh(differences.missing + differences.changed)
        unlisted = sorted(set(differences.absent) | ({j for j in self.state.suspects if j not in inventory.listed}
                                                     if inventory.complete else set()))
        absent = [job_id for job_id, job, error in refetch_jobs(self.api, unlisted, workers=self.options.workers)
                  if job is None and error is None]
        if absent:
            self._gone(absent, "absent from a complete listing, and GET /jobs/{id} answered 404")
        self.report.verified = True
        self.report.differences = differences.describe()
        for line in self.report.differences:
            self._notice(line)
        if not differences:
            self._notice(f"verify: the dataset matches the server's {len(inventory.statuses):,} selected job(s) "
                         f"({inventory.requests:,} listing requests{'' if inventory.light else ', whole pages'})")
        if inventory.complete:
            self.state.verified_at = self.now

    def _check_devices(self, devices: list[dict[str, Any]] | None) -> None:
        """Refuse a --device no one has heard of (a typo would select nothing and lock the directory to it)."""
        if not self.options.devices:
            return
        if devices is None:
            self._notice("GET /devices failed: the --device names could not be checked")
            return
        known = [d.get("device_id") for d in devices if isinstance(d, dict)]
        with contextlib.suppress(OqtopusDataError):  # devices seen before (retired ones, no longer listed) count
            known += self.dataset.read_table("devices")["device_id"].to_pylist()
        try:
            check_device_names(self.options.devices, known)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _snapshot(self, devices: list[dict[str, Any]]) -> None:
        """Write the device snapshot and the calibrations not stored yet; a record no column can hold, or a
        calibration that cannot be read, is noted (an errors row), the others kept."""
        written = write_snapshots(self.writer, [(self.now, devices)])
        self.report.rows.update(written.rows)
        self.report.calibrations += written.new
        for job_id, stage, message in written.errors:
            self.ledger.note_row_error(job_id, stage, message)
            self._notice(f"{stage}: {message}")

    def _notice(self, message: str) -> None:
        self.report.notes.append(message)
        self.notice(message)

    # --------------------------------------------------------------------------------------- writing
    def _listed_until(self) -> datetime | None:
        """How far the listing got, as the next run needs it (never behind what the previous run established)."""
        previous = self.state.listed_until if self.previous else None
        if self.lister is None:
            return previous
        resume = self.lister.resume_point(w for w, n in self.outstanding.items() if n > 0)
        if resume is None or (previous is not None and resume < previous):
            return previous
        return resume

    def _commit(self, *, final: bool) -> Manifest:
        """Write buffered and volatile rows, then commit them with the state they make true."""
        self.logs.settle(self.state, asked=self.options.sse_logs)
        state = replace(self.state, filters=self.filters.locked(), listed_until=self._listed_until(),
                        last_sync=self.now)
        info = {"listed": self.report.listed, "exported": self.report.exported, "errors": len(self.report.errors),
                "notes": self.report.notes[-50:]}
        self.since_checkpoint = (0, time.monotonic())
        self.manifest = self.rows.commit(state.to_json(), info, final=final)
        return self.manifest


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
