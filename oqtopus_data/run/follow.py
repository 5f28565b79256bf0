"""Jobs followed by id: those not terminal or failed last time fetched again, and what a 404 does to a job's rows.

A followed job is fetched again by GET /jobs/{id}: one still where it was keeps its rows, one that changed is exported
again, one whose rows turn out final is no longer followed. A 404 is evidence, not proof (`Ledger.answered_404`);
only a confirmed deletion drops the job's rows, final ones too, committed at once so that what reads the final files
next (the ids to skip, the reconcile) reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from oqtopus_data.dataset.state import GONE_AFTER
from oqtopus_data.enums import TERMINAL
from oqtopus_data.fetch.jobs import refetch_jobs
from oqtopus_data.run.rows import drop_final
from oqtopus_data.times import duration_text

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.dataset.writer import Writer
    from oqtopus_data.run.ledger import Ledger


class Follow:
    """Fetching followed jobs again and dropping the rows of deleted ones. `take(job)` is the run's selection (it
    also follows or forgets the job); `commit()` commits a checkpoint."""

    def __init__(self, api: ApiClient, ledger: Ledger, writer: Writer, *, workers: int,
                 take: Callable[[object], bool], commit: Callable[[], object]) -> None:
        self.api, self.ledger, self.writer, self.workers = api, ledger, writer, workers
        self.take, self.commit = take, commit

    def changed(self, job_ids: list[str]) -> Generator[dict[str, Any], None, None]:
        """The jobs of `job_ids`, fetched again by id, that changed since last time (a generator: close it); the
        others are settled on the way (failed, 404, final already, unchanged)."""
        already_final = set(job_ids) & self.writer.ids("jobs")
        return self._changed(job_ids, already_final, self.ledger.volatile.statuses())

    def _changed(self, job_ids: list[str], already_final: set[str],
                 known: dict[str, str]) -> Generator[dict[str, Any], None, None]:
        for job_id, job, error in refetch_jobs(self.api, job_ids, workers=self.workers):
            self.ledger.asked_again([job_id])
            if error is not None:  # keep its old rows; try again next run
                self.ledger.failed(job_id, error.stage, error.problem, keep_rows=True)
            elif job is None:
                self.answered_404(job_id)
            elif job_id in already_final:  # its rows are final already
                self.ledger.final_already(job_id)
            elif self.ledger.answered(job_id) and self.take(job) and not (job.get("status") not in TERMINAL
                                                                         and known.get(job_id) == job.get("status")):
                yield job  # changed since last time (a job still where it was keeps its rows)

    def answered_404(self, job_id: str | None) -> None:
        """A 404 on GET /jobs/{id}: the ledger's rule says whether it confirms a deletion; if so, the rows go."""
        if job_id is not None and self.ledger.answered_404(job_id):
            self.gone([job_id], f"GET /jobs/{{id}} answered 404 again {duration_text(GONE_AFTER)} or more after "
                                "the first time")

    def confirm_gone(self, job_ids: list[str]) -> None:
        """Jobs a complete listing no longer shows: gone when GET /jobs/{id} answers 404 too."""
        absent = [job_id for job_id, job, error in refetch_jobs(self.api, job_ids, workers=self.workers)
                  if job is None and error is None]
        if absent:
            self.gone(absent, "absent from a complete listing, and GET /jobs/{id} answered 404")

    def gone(self, job_ids: list[str], why: str) -> None:
        """Drop every row of jobs confirmed deleted on the server (final ones too), and say so."""
        self.ledger.gone(job_ids, why)
        self.drop_final(job_ids)

    def drop_final(self, job_ids: list[str]) -> None:
        """Take these jobs' rows out of the committed final files, committed at once: what reads final files next
        (the ids to skip, the reconcile) reads them."""
        if drop_final(self.writer.storage, self.writer, job_ids):
            self.commit()
