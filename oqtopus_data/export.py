"""One export run: list jobs, resolve archives, flatten in batches, write files, commit with the sync state.

A run into a directory that already holds an export continues it (incremental by default):

- jobs submitted since the bookmark (the newest `submitted_at` committed, minus a safety overlap) are listed; those
  already committed as final are skipped, so the overlap is read again without duplicating anything;
- jobs that were not terminal last time (`pending`) and jobs that failed to export (`retry`) are fetched again by id;
- rows of terminal jobs are appended as final files; rows of jobs that may still change, and the current errors,
  form the volatile set that every commit replaces, so a job whose status changed never shows twice.

The state is written in the same manifest as the files it describes, so it is never ahead of the data. A long first
export commits a checkpoint every `checkpoint_jobs` jobs, so a crash costs at most that much work.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S
from .api import ApiClient
from .enums import TERMINAL
from .errors import ApiError, JobError, StoreError
from .fetch import fetch_jobs
from .flatten import error_rows, flatten
from .listing import list_jobs
from .results import result_from_raw
from .storage import LocalStorage
from .store import TABLE_DIRS, Dataset, Manifest, Writer, compact, discard_new, excess_file_count
from .times import format_time, parse_time

STATE_VERSION = 1
JOB_TABLES = ("jobs", "counts", "divided_counts", "estimations")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; the CLI maps its flags one to one onto these fields."""

    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    workers: int = 16
    page_size: int = 500
    full_refresh: bool = False
    sse_logs: bool = False
    devices_snapshot: bool = True
    overlap: timedelta = timedelta(minutes=10)
    batch_jobs: int = 500  # jobs flattened at once
    flush_rows: int = 500_000  # buffered count rows before files are written (bounds memory)
    checkpoint_jobs: int = 50_000  # jobs between intermediate commits of a long export
    compact_after_files: int = 64  # files beyond one per partition that trigger automatic compaction

    def filters(self) -> dict[str, list[str]]:
        """The filters that decide which jobs the dataset holds; a continued export must keep them."""
        return {"statuses": sorted(self.statuses), "job_types": sorted(self.job_types),
                "devices": sorted(self.devices)}


@dataclass
class ExportReport:
    """What a run did: the summary the CLI prints and scripts inspect."""

    out_dir: str
    version: int | None = None
    incremental: bool = False
    jobs_by_type_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str | None, str, str]] = field(default_factory=list)
    listed: int = 0
    skipped: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    compacted: bool = False

    @property
    def exported(self) -> int:
        """Jobs written (or rewritten) by this run."""
        return sum(self.jobs_by_type_status.values())

    @property
    def ok(self) -> bool:
        """True when no job failed."""
        return not self.errors


Progress = Callable[[str, int], None]


def export(api: ApiClient, out_dir: str | Path, options: ExportOptions | None = None, *,
           progress: Progress | None = None, storage_options: dict[str, str] | None = None) -> ExportReport:
    """Export (or continue exporting) the job history the API serves into the dataset at `out_dir`.

    `out_dir` is a local directory or an object-store URL (`storage_options` go to that store).
    """
    options = options or ExportOptions()
    started = time.monotonic()
    dataset = Dataset(out_dir, **(storage_options or {}))
    if isinstance(dataset.storage, LocalStorage):
        _check_destination(Path(dataset.storage.uri("")))
    else:
        _check_remote_destination(dataset)
    created = dataset.storage.create_root()  # atomic: of two racing runs, one alone made it
    run = _Run(api, dataset, options, progress or (lambda _event, _n: None))
    try:
        report = run.execute()
    except BaseException:
        if created:  # under the lock, only while nothing is committed: a racing winner keeps its work
            discard_new(dataset)
        raise
    report.seconds = time.monotonic() - started
    return report


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out} exists and is not a directory")
    if out.is_dir() and not (out / "_oqtopus").exists() and any(out.iterdir()):
        raise StoreError(f"{out} is not empty and holds no oqtopus-data export: choose an empty or new directory")


def _check_remote_destination(dataset: Dataset) -> None:
    """An object-store prefix without an export must not hold files that garbage collection would take for ours."""
    if dataset.manifest_versions():
        return
    for directory in sorted(set(TABLE_DIRS.values())):
        for rel in dataset.storage.list(directory):
            if not rel.rsplit("/", 1)[-1].startswith(".part-"):  # staged files of an interrupted first run are ours
                raise StoreError(f"{dataset.storage.uri('')} holds files but no oqtopus-data export (e.g. {rel}): "
                                 "choose an empty or new prefix")


class _Run:
    """The state of one run; `execute` is the whole algorithm, the helpers each do one step."""

    def __init__(self, api: ApiClient, dataset: Dataset, options: ExportOptions, progress: Progress) -> None:
        self.api = api
        self.dataset = dataset
        self.options = options
        self.progress = progress
        self.report = ExportReport(str(dataset.storage.uri("")))
        self.manifest: Manifest | None = None
        self.now = datetime.now(UTC)
        self.volatile: dict[str, list[pa.Table]] = {name: [] for name in (*JOB_TABLES, "errors")}
        self.buffer: dict[str, list[pa.Table]] = {name: [] for name in JOB_TABLES}
        self.buffered_rows = 0
        self.pending: set[str] = set()
        self.retry: set[str] = set()
        self.bookmark: datetime | None = None
        self.since_checkpoint = 0
        self._order: deque[tuple[str | None, datetime | None]] = deque()
        self._drops: list[str] = []
        self.since = options.since

    # ------------------------------------------------------------------------------------------ the run
    def execute(self) -> ExportReport:
        opts = self.options
        operation = "full-refresh" if opts.full_refresh else "export"
        with self.dataset.writer(operation=operation, fresh=opts.full_refresh) as writer:
            self.writer = writer
            state = self._base_state(writer)
            self.report.incremental = bool(state)
            self.pending = set(state.get("pending", []))
            old_retry = set(state.get("retry", []))
            self.bookmark = parse_time(state.get("bookmark"))
            start = self._listing_start()
            known_final = self._final_ids_since(start) if state else set()
            for name in self.volatile:  # old volatile rows stay until this run has news of their job
                old = writer.base_volatile(name)
                if name == "errors":  # run-level failures (no job id) are not carried: this run retries them
                    old = old.filter(pc.is_valid(old["job_id"]))
                if old.num_rows:
                    self.volatile[name].append(old)

            refreshed = self._refresh(sorted(self.pending | old_retry))
            self._process(self._listed(start, known_final | refreshed), checkpoints=True)
            while self._order:  # jobs listed after the last one processed were all skipped or filtered
                self._advance_bookmark(None)
            if opts.devices_snapshot:
                self._snapshot_devices()
            self.manifest = self._commit(final=True)
        self.report.version = self.manifest.version
        stats = getattr(self.api, "stats", None)
        self.report.requests = dict(stats.snapshot()) if stats is not None else {}
        if excess_file_count(self.manifest) >= opts.compact_after_files:
            compacted = compact(self.dataset)
            if compacted is not None:
                self.manifest, self.report.compacted = compacted, True
                self.report.version = compacted.version
        return self.report

    def _base_state(self, writer: Writer) -> dict[str, Any]:
        if writer.base is None or self.options.full_refresh:
            return {}
        state = writer.base.state
        if not state:
            return {}
        if state.get("state_version", 0) > STATE_VERSION:
            raise StoreError("the export state was written by a newer oqtopus-data: upgrade, or use --full-refresh")
        if state.get("filters") != self.options.filters():
            raise StoreError(
                f"this directory was exported with filters {state.get('filters')}, not {self.options.filters()}: "
                "use the same --status/--job-type/--device options, another directory, or --full-refresh"
            )
        old_since = parse_time(state.get("since"))
        if old_since is not None and self.options.since is not None and self.options.since < old_since:
            raise StoreError(
                f"this directory holds jobs since {old_since.isoformat()}; an earlier --since needs --full-refresh"
            )
        if self.options.since is None:  # a continued run without --since keeps the export's own
            self.since = old_since
        return state

    def _listing_start(self) -> datetime | None:
        if self.bookmark is None:
            return self.since
        start = self.bookmark - self.options.overlap
        return max(start, self.since) if self.since else start

    def _listing_end(self) -> datetime:
        # Cap at the run's start: jobs submitted during the run are the next run's, never half-seen.
        return min(self.options.until, self.now) if self.options.until else self.now

    # --------------------------------------------------------------------------------------- sources
    def _final_ids_since(self, start: datetime | None) -> set[str]:
        """Ids of jobs committed as final and submitted at or after `start`: the overlap to skip."""
        entries = [e for e in self.writer.files.get("jobs", []) if e.final]
        if start is not None:
            month = start.strftime("%Y-%m")
            entries = [e for e in entries if (e.partition or "") >= month or e.partition == S.UNKNOWN_MONTH]
        if not entries:
            return set()
        return set(self.dataset.read_table("jobs", entries)["job_id"].to_pylist())

    def _refresh(self, job_ids: list[str]) -> set[str]:
        """Fetch again, by id, the jobs that were pending or failed last time; returns the ids handled."""
        if not job_ids:
            return set()

        def get(job_id: str) -> tuple[str, dict[str, Any] | None, JobError | None]:
            try:
                return job_id, self.api.get_job(job_id), None
            except ApiError as exc:
                if exc.status == 404:  # deleted since
                    return job_id, None, None
                return job_id, None, JobError(job_id, "fetch", str(exc))

        known = self._volatile_statuses()
        jobs = []
        with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
            for job_id, job, error in pool.map(get, job_ids):
                if error is not None:  # keep its old rows; try again next run
                    self._record_error(job_id, error.stage, error.problem)
                elif job is None:
                    self.pending.discard(job_id)
                    self._drop_volatile({job_id})
                elif job.get("status") not in TERMINAL and known.get(job_id) == job.get("status"):
                    continue  # still where it was: its rows stand, no archive to fetch again
                else:
                    jobs.append(job)
        self._process(jobs)
        return set(job_ids)

    def _volatile_statuses(self) -> dict[str, str]:
        """Status of each job whose rows are volatile now (non-terminal when last exported)."""
        out: dict[str, str] = {}
        for table in self.volatile["jobs"]:
            out.update(zip(table["job_id"].to_pylist(), table["status"].to_pylist(), strict=True))
        return out

    def _listed(self, start: datetime | None, skip: set[str]) -> Iterator[dict[str, Any]]:
        for job in list_jobs(self.api, since=start, until=self._listing_end(), page_size=self.options.page_size):
            self.report.listed += 1
            self.progress("listed", 1)
            self._order.append((job.get("job_id"), parse_time(job.get("submitted_at"))))
            if job.get("job_id") in skip:
                self.report.skipped += 1
                continue
            yield job

    def _advance_bookmark(self, job_id: str | None) -> None:
        """Move the bookmark over listed jobs up to `job_id`, now processed (listing order = fetch order)."""
        while self._order:
            listed_id, submitted = self._order.popleft()
            if submitted is not None and (self.bookmark is None or submitted > self.bookmark):
                self.bookmark = submitted
            if listed_id == job_id:
                return

    # --------------------------------------------------------------------------------------- processing
    def _process(self, jobs: Iterable[dict[str, Any]], *, checkpoints: bool = False) -> None:
        """Fetch, parse and flatten `jobs` in batches, committing checkpoints when asked."""
        wanted = (job for job in jobs if self._wanted(job))
        batch: list[Any] = []
        for item in fetch_jobs(self.api, wanted, workers=self.options.workers):
            if checkpoints:
                self._advance_bookmark(item.job_id)
            self._apply_drops()
            if item.error is not None:
                self._record_error(item.job_id, item.error.stage, item.error.problem)
                continue
            if item.job is None:  # deleted on the server since it was listed
                self.pending.discard(item.job_id)
                self._drop_volatile({item.job_id})
                continue
            self.progress("fetched", 1)
            try:
                result = result_from_raw(item.job, client=self.api)
            except (ValueError, TypeError) as exc:
                self._record_error(item.job_id, "parse", str(exc))
                continue
            batch.append(result)
            if len(batch) >= min(self.options.batch_jobs, self.options.checkpoint_jobs):
                self._flatten(batch)
                batch = []
                if checkpoints and self.since_checkpoint >= self.options.checkpoint_jobs:
                    self._commit(final=False)
        if batch:
            self._flatten(batch)
        self._apply_drops()

    def _wanted(self, job: dict[str, Any]) -> bool:
        """Whether a listed or re-fetched job is exported; non-terminal ones are followed by id next run.

        May run on the fetcher's feeding thread: it only appends to lists and sets.
        """
        job_id, status = job.get("job_id"), job.get("status")
        if not isinstance(job_id, str):
            return True  # the parser reports it
        if status in TERMINAL:
            self.pending.discard(job_id)
        else:
            self.pending.add(job_id)  # whatever the filters say now, it may change
        opts = self.options
        if status == "registered" or (
            (opts.statuses and status not in opts.statuses)
            or (opts.job_types and job.get("job_type") not in opts.job_types)
            or (opts.devices and job.get("device_id") not in opts.devices)
        ):
            self._drops.append(job_id)  # it may have had volatile rows when it matched
            return False
        return True

    def _apply_drops(self) -> None:
        if self._drops:
            drops, self._drops = self._drops, []
            self._drop_volatile(set(drops))

    def _flatten(self, results: list[Any]) -> None:
        tables = flatten(results, exported_at=self.now)
        ids = [r.job_id for r in results]
        self._drop_volatile(set(ids))
        statuses = {r.job_id: _value(r.status) for r in results}
        for job_id, _stage, message in _rows(tables["errors"]):
            self._record_error(job_id, "flatten", message, already_flat=True)
        good = tables["jobs"]
        final_ids = pa.array([j for j in good["job_id"].to_pylist() if statuses.get(j) in TERMINAL], pa.string())
        for name in JOB_TABLES:
            table = tables[name]
            is_final = pc.is_in(table["job_id"], value_set=final_ids)
            final, volatile = table.filter(is_final), table.filter(pc.invert(is_final))
            if final.num_rows:
                self.buffer[name].append(final)
                self.report.rows[name] += final.num_rows
                if name == "counts":
                    self.buffered_rows += final.num_rows
            if volatile.num_rows:
                self.volatile[name].append(volatile)
                self.report.rows[name] += volatile.num_rows
        for row in good.select(["job_type", "status"]).to_pylist():
            self.report.jobs_by_type_status[(row["job_type"], row["status"])] += 1
        self.since_checkpoint += len(results)
        self.progress("rows", sum(t.num_rows for t in tables.values()))
        if self.buffered_rows >= self.options.flush_rows or len(self.buffer["jobs"]) >= 20:
            self._flush()
        if self.options.sse_logs:
            from .sse import save_sse_logs  # only runs that ask for logs pay for the module

            logs = save_sse_logs(self.api, self.dataset, [r for r in results if statuses.get(r.job_id) in TERMINAL
                                                          and _value(r.job_type) == "sse"])
            for job_id, message in logs.errors:
                self._record_error(job_id, "sse_log", message)
            if logs.table.num_rows:
                self.writer.write("sse_logs", logs.table, final=True)
                self.report.rows["sse_logs"] += logs.table.num_rows

    def _record_error(self, job_id: str | None, stage: str, message: str, *, already_flat: bool = False) -> None:
        self.report.errors.append((job_id, stage, message))
        if job_id:
            self.retry.add(job_id)
            if not already_flat:
                self._drop_volatile({job_id}, tables=["errors"])
        self.volatile["errors"].append(error_rows([(job_id, stage, message)], self.now))

    def _drop_volatile(self, job_ids: set[str], *, tables: Iterable[str] | None = None) -> None:
        """Forget volatile rows (and errors) of jobs this run has news about."""
        if not job_ids:
            return
        drop = pa.array(sorted(job_ids), pa.string())
        for name in list(tables or self.volatile):
            kept = [t.filter(pc.invert(pc.fill_null(pc.is_in(t["job_id"], value_set=drop), False)))
                    for t in self.volatile[name]]
            kept = [t for t in kept if t.num_rows]
            # One table per name: later drops filter one table, not one per batch seen so far.
            self.volatile[name] = [pa.concat_tables(kept)] if len(kept) > 1 else kept
        if tables is None:
            self.retry -= job_ids

    def _snapshot_devices(self) -> None:
        from .devices import devices_table  # small module; keeps this one about the job flow

        try:
            table = devices_table(self.api.get_devices(), self.now)
        except (ApiError, ValueError) as exc:
            self._record_error(None, "devices", str(exc))
            return
        self.writer.write("devices", table, final=True)
        self.report.rows["devices"] += table.num_rows

    # --------------------------------------------------------------------------------------- writing
    def _flush(self) -> None:
        for name, parts in self.buffer.items():
            if parts:
                self.writer.write(name, pa.concat_tables(parts), final=True)
            self.buffer[name] = []
        self.buffered_rows = 0

    def _commit(self, *, final: bool) -> Manifest:
        """Write buffered and volatile rows, then commit them with the state they make true."""
        self._flush()
        self.writer.drop([e for es in self.writer.files.values() for e in es if not e.final])
        for name, parts in self.volatile.items():
            parts = [t for t in parts if t.num_rows]
            if parts:
                self.writer.write(name, pa.concat_tables(parts), final=False)
        state = {
            "state_version": STATE_VERSION,
            "since": _iso(self.since),
            "filters": self.options.filters(),
            "bookmark": _iso(self.bookmark),
            "pending": sorted(self.pending),
            "retry": sorted(self.retry),
            "last_sync": _iso(self.now),
        }
        info = {"listed": self.report.listed, "exported": self.report.exported, "errors": len(self.report.errors)}
        self.since_checkpoint = 0
        manifest = self.writer.commit(state=state, info=info, keep_open=not final)
        self.manifest = manifest
        return manifest


def _rows(errors: pa.Table) -> list[tuple[str | None, str, str]]:
    return list(zip(errors["job_id"].to_pylist(), errors["stage"].to_pylist(), errors["message"].to_pylist(),
                    strict=True))


def _value(value: Any) -> str | None:
    value = getattr(value, "value", value)
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)
