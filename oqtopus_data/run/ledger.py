"""What an export run knows of jobs beside their rows, in one place: which it follows by id, what failed, what is gone.

The run (`export._Run`) only orchestrates; the ledger keeps the books it writes into the next commit: the sync
state's followed ids (`pending`, `retry`, `log_retry`, `suspects`), the run's errors (in the report, and as the
volatile `errors` rows), the jobs confirmed deleted, and the anomalies that make the run reconcile. Its verbs are
what happens to a job: it is followed (or not), it failed, it answered, it answered 404, it is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from oqtopus_data.dataset.state import GONE_AFTER, SyncState
from oqtopus_data.fetch.jobs import FOREIGN
from oqtopus_data.run.info import ExportReport
from oqtopus_data.run.rows import VolatileRows
from oqtopus_data.tables.storable import escaped
from oqtopus_data.times import duration_text


class Ledger:
    """The books of one run: `state` (replaced when the run continues an export), `report`, `volatile`."""

    def __init__(self, state: SyncState, report: ExportReport, volatile: VolatileRows, now: datetime,
                 notice: Callable[[str], None]) -> None:
        self.state, self.report, self.volatile, self.now = state, report, volatile, now
        self.notice = notice
        self.anomalies: list[str] = []  # what makes this run reconcile: clock steps, foreign bodies, 404s

    # ---- following ---------------------------------------------------------------------------------------------
    def follow(self, job_id: str, *, follow: bool, export: bool) -> None:
        """The selection's decision for a job: follow it by id if it may change; forget its rows if unwanted."""
        (self.state.pending.add if follow else self.state.pending.discard)(job_id)
        if not export:
            self.volatile.drop([job_id])  # it may have had volatile rows while it matched

    def asked_again(self, job_ids: list[str], *, logs: bool = False) -> None:
        """These jobs (or only their SSE logs) are being fetched again by id: a failure puts them back."""
        (self.state.log_retry if logs else self.state.retry).difference_update(job_ids)

    def final_already(self, job_id: str) -> None:
        """A followed job turns out to have final rows: stop following it, keep no volatile rows of it."""
        self.state.suspects.pop(job_id, None)
        self.state.pending.discard(job_id)
        self.volatile.drop([job_id])

    # ---- failures ----------------------------------------------------------------------------------------------
    def failed(self, job_id: str | None, stage: str, message: str, *, keep_rows: bool = False) -> None:
        """Record a failure (the job is tried again next run); `keep_rows` keeps the rows it had (a failed look at a
        job says nothing about it, and another job's body never touches its rows)."""
        self.report.errors.append((job_id, stage, message))
        if stage == FOREIGN:
            self.anomalies.append(f"job {job_id} was answered with another job's body")
            keep_rows = True
        if job_id:
            if not escaped(job_id)[1]:  # an id that is not valid text cannot be asked for by id: no retry
                self.state.retry.add(job_id)
            if not keep_rows:
                self.volatile.drop([job_id])
        self.volatile.error(job_id, stage, message, self.now)

    def log_failed(self, job_id: str, message: str) -> None:
        """An SSE log could not be had: its job keeps its rows, the log is fetched again next run."""
        self.report.errors.append((job_id, "sse_log", message))
        self.state.log_retry.add(job_id)
        self.volatile.error(job_id, "sse_log", message, self.now)

    def listing_failed(self, stage: str, failures: Iterable[object]) -> None:
        """Windows a listing (`stage`: list, verify) could not show complete: the run is not complete, each noted."""
        for failure in failures:
            self.report.complete = False
            self.failed(None, stage, str(failure))

    def logs_saved(self, written: int, errors: list[tuple[str, str]]) -> None:
        """SSE logs saved (`written` index rows), and those that could not be had (fetched again next run)."""
        self.report.rows["sse_logs"] += written
        for job_id, problem in errors:
            self.log_failed(job_id, problem)

    def note_row_error(self, job_id: str | None, stage: str, message: str) -> None:
        """An errors row that is not the run's failure (a device record no column holds): kept, and said."""
        self.volatile.error(job_id, stage, message, self.now)

    # ---- deletions ---------------------------------------------------------------------------------------------
    def answered(self, job_id: str | None) -> bool:
        """A job answered: a 404 it gave before was not its deletion. Always True (for use in conditions)."""
        if job_id is not None:
            self.state.suspects.pop(job_id, None)
        return True

    def answered_404(self, job_id: str) -> bool:
        """The one rule for a 404 on GET /jobs/{id}: evidence, not proof. The job keeps its rows and stays followed
        until `SyncState.answered_404` confirms the deletion; True then (the caller calls `gone`)."""
        if self.state.answered_404(job_id, self.now):
            return True
        self.anomalies.append(f"job {job_id} answered 404")
        self.notice(f"job {job_id}: GET /jobs/{{id}} answered 404; its rows are kept and it is asked for again "
                    f"until the deletion is confirmed (404 again {duration_text(GONE_AFTER)} later)")
        return False

    def gone(self, job_ids: list[str], why: str) -> None:
        """Jobs confirmed deleted on the server: no longer followed, no volatile rows, named in a notice (the caller
        drops their final rows)."""
        for job_id in job_ids:
            self.state.forget(job_id)
        self.volatile.drop(job_ids)
        self.report.gone += job_ids
        shown = ", ".join(job_ids[:5]) + (f" and {len(job_ids) - 5} more" if len(job_ids) > 5 else "")
        self.notice(f"deleted on the server ({why}): job(s) {shown}; their rows were dropped")

    # ---- reconcile ---------------------------------------------------------------------------------------------
    def verified(self, differences: list[str], matches: str, *, complete: bool) -> None:
        """A reconcile ran: what differed in the report and in notices (`matches` when nothing did); a complete one
        is the state's last reconcile."""
        self.report.verified = True
        self.report.differences = differences
        for line in differences:
            self.notice(line)
        if not differences:
            self.notice(matches)
        if complete:
            self.state.verified_at = self.now
