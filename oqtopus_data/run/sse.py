"""SSE log archives, saved on request (`--sse-logs`) into `OUT_DIR/sse_logs/` under names we choose.

The archives come from the fetcher (`fetch.fetch_jobs(..., sse_logs=True)`, `fetch.refetch_sse_logs`). A file
name is derived from the job id alone, bounded and unique, and the `sse_logs` table's `path` says which file belongs
to which job; a name the server suggests is never used as a path.

`--sse-logs` may come on a later run than the jobs: the first run with it after runs without it fetches the logs
of the finished SSE jobs already exported that have none saved (`LogStep.backfill`), once; the sync state keeps the
jobs found to have no log (`log_none`) and whether every exported job's log was looked for (`logs_complete`), so no
later run asks again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data.client.archives import ArchiveError, check_zip
from oqtopus_data.dataset.datafiles import column_values, iter_files
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import LOG_DIR, FileEntry
from oqtopus_data.enums import TERMINAL, JobType
from oqtopus_data.fetch.jobs import has_log, refetch_sse_logs
from oqtopus_data.tables import schema as S

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.dataset.state import SyncState
    from oqtopus_data.dataset.writer import Writer
    from oqtopus_data.errors import JobError

SAVE_EVERY = 32  # logs of a backfill held in memory before they are saved
READABLE_PREFIX = 64  # characters of the job id kept readable in the file name; a hash of the whole id follows
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class SavedLogs:
    """The `sse_logs` rows of the archives saved, and (job_id, problem) for those that could not be."""

    table: pa.Table
    errors: list[tuple[str, str]] = field(default_factory=list)


def safe_log_name(job_id: str) -> str:
    """The archive's file name for a job: a readable prefix of the id (anything but [A-Za-z0-9._-] replaced)
    and a hash of the whole id. Ids that differ only in unsafe characters (`a/b`, `a_b`, `a?b`) or beyond the
    prefix get different names, and no name is longer than about 90 bytes whatever the id."""
    readable = _UNSAFE.sub("_", job_id[:READABLE_PREFIX]).lstrip(".") or "job"
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return f"{readable}-{digest}.zip"


def save_sse_logs(dataset: Dataset, logs: Iterable[tuple[str, bytes]]) -> SavedLogs:
    """Save each (job id, log zip) atomically under `sse_logs/`; one table row per archive, the last one for a
    job given twice. Bytes that are not a readable zip are an error of that job, not saved."""
    latest: dict[str, bytes] = {}
    for job_id, data in logs:  # type: ignore[union-attr]
        latest.pop(job_id, None)
        latest[job_id] = data
    rows: dict[str, list[Any]] = {name: [] for name in S.SSE_LOGS.column_names}
    errors: list[tuple[str, str]] = []
    for job_id, data in latest.items():
        try:
            job_id.encode("utf-8")
            check_zip(data, key="sse_log")
        except UnicodeEncodeError:
            errors.append((job_id, "the job id is not valid Unicode text (a lone surrogate): the log is not saved"))
            continue
        except ArchiveError as exc:
            errors.append((job_id, str(exc)))
            continue
        rel = f"{LOG_DIR}/{safe_log_name(job_id)}"
        dataset.storage.write_bytes(rel, data)  # named by job id: a rerun replaces, never duplicates
        for name, value in zip(S.SSE_LOGS.column_names, (job_id, None, len(data), rel), strict=True):
            rows[name].append(value)
    table = pa.table({f.name: pa.array(rows[f.name], f.type) for f in S.SSE_LOGS.schema}, schema=S.SSE_LOGS.schema)
    return SavedLogs(table, errors)


class LogStep:
    """SSE logs as their own step of an export: held while their job is fetched, saved once its rows are final.

    A log that fails is the caller's to retry (its job's rows stay final); a job's log is indexed once, whatever
    brought it back (its file is replaced by the same name, never doubled). Jobs found to have no log are kept in
    `none`, for the sync state."""

    def __init__(self, dataset: Dataset, writer: Writer) -> None:
        self.dataset = dataset
        self.writer = writer
        self.none: set[str] = set()  # finished SSE jobs asked for their log this run that have none
        self.backfilled = False  # every exported job's log was looked for (see `backfill`)
        self._held: dict[str, tuple[bytes | None, JobError | None]] = {}
        self._indexed: set[str] | None = None

    def hold(self, job_id: str, data: bytes | None, error: JobError | None, job: object = None) -> None:
        """Keep a fetched log (or the error that stopped it, or that a finished SSE `job` has none) until its
        job's rows are written."""
        if data is not None or error is not None or (isinstance(job, dict) and has_log(job)):
            self._held[job_id] = (data, error)

    def release(self, final_ids: Iterable[str]) -> tuple[int, list[tuple[str, str]]]:
        """Save the held logs of jobs whose rows are final now: (index rows written, [(job_id, problem)])."""
        taken = [(job_id, self._held.pop(job_id)) for job_id in final_ids if job_id in self._held]
        failed = [(job_id, error.problem) for job_id, (_data, error) in taken if error is not None]
        self.none.update(job_id for job_id, (data, error) in taken if data is None and error is None)
        written, errors = self.save([(job_id, data) for job_id, (data, _e) in taken if data is not None])
        return written, failed + errors

    def save(self, logs: list[tuple[str, bytes]]) -> tuple[int, list[tuple[str, str]]]:
        """Save logs and index the jobs not indexed yet: (index rows written, [(job_id, problem)])."""
        if not logs:
            return 0, []
        indexed = self.indexed()
        saved = save_sse_logs(self.dataset, logs)
        fresh = pa.array([j for j, _ in logs if j not in indexed], pa.string())
        table = saved.table.filter(pc.is_in(saved.table["job_id"], value_set=fresh))
        indexed.update(table["job_id"].to_pylist())
        if table.num_rows:
            self.writer.write("sse_logs", table, final=True)
        return table.num_rows, saved.errors

    def retry(self, api: ApiClient, job_ids: list[str], *, workers: int) -> tuple[int, list[tuple[str, str]]]:
        """Download again the logs that failed last time (their jobs' rows are final already) and save them:
        (index rows written, [(job_id, problem)])."""
        logs, failed = [], []
        for job_id, data, error in refetch_sse_logs(api, job_ids, workers=workers):
            if error is not None:
                failed.append((job_id, error.problem))
            elif data is not None:
                logs.append((job_id, data))
        written, errors = self.save(logs)
        return written, failed + errors

    def indexed(self) -> set[str]:
        """Ids of the jobs whose log the dataset holds (read once, then kept up to date by `save`)."""
        if self._indexed is None:
            self._indexed = column_values(self.dataset.storage, self.writer.files.get("sse_logs", []), "job_id")
        return self._indexed

    def backfill(self, api: ApiClient, state: SyncState, *, workers: int,
                 progress: Callable[[str, int], None], notice: Callable[[str], None],
                 stop: Callable[[], bool] = lambda: False) -> tuple[int, list[tuple[str, str]]]:
        """Fetch the logs of the finished SSE jobs exported without them (by runs without `--sse-logs`), unless
        `state` says every exported job's log was looked for: (index rows written, [(job_id, problem)]).

        Jobs whose log is saved, was found missing (`state.log_none`) or awaits a retry (`state.log_retry`) are not
        asked again; each job asked is one `progress("logs", 1)`. When `stop()` turns true the logs saved so far
        are kept and the rest is left to the next run."""
        self.backfilled = True
        if state.logs_complete:
            return 0, []
        entries = [e for e in self.writer.files.get("jobs", []) if e.final]
        owed = sorted(finished_sse_jobs(self.dataset, entries) - self.indexed() - self.none - state.log_none
                      - state.log_retry)
        if not owed:
            return 0, []
        notice(f"fetching the logs of {len(owed):,} SSE job(s) exported without their log (by runs without "
               "--sse-logs)")
        written, errors, logs = 0, [], []
        fetched = refetch_sse_logs(api, owed, workers=workers)
        try:
            for job_id, data, error in fetched:
                if stop():
                    self.backfilled = False  # the next run goes on where this one stopped
                    break
                progress("logs", 1)
                if error is not None:
                    errors.append((job_id, error.problem))
                elif data is None:
                    self.none.add(job_id)
                else:
                    logs.append((job_id, data))
                if len(logs) >= SAVE_EVERY:
                    done, failed = self.save(logs)
                    written, logs = written + done, []
                    errors += failed
        finally:
            fetched.close()
        done, failed = self.save(logs)
        return written + done, errors + failed

    def settle(self, state: SyncState, *, asked: bool) -> None:
        """Record in `state` what this run learnt: the jobs with no log, and whether every exported job's log was
        looked for (a run without `--sse-logs`, `asked` False, leaves the logs of its jobs to a later one)."""
        state.log_none |= self.none
        state.logs_complete = asked and self.backfilled


def finished_sse_jobs(dataset: Dataset, entries: Iterable[FileEntry]) -> set[str]:
    """Ids of the finished SSE jobs in these `jobs` files (one file in memory at a time)."""
    done = pa.array(sorted(TERMINAL), pa.string())
    ids: set[str] = set()
    for table in iter_files(dataset.storage, "jobs", entries):
        mask = pc.and_(pc.equal(table["job_type"], JobType.SSE.value), pc.is_in(table["status"], value_set=done))
        ids.update(table.filter(mask)["job_id"].to_pylist())
    return ids
