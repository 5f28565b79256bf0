"""Rows on their way to a commit: final rows buffered for writing, volatile rows replaced at every commit.

Rows of terminal jobs are final: written once, kept. Rows of jobs that may still change, and the current errors, are
volatile: every commit writes the whole volatile set again, which is how a job whose status changed replaces its old
rows without rewriting history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data.dataset.datafiles import column_values, read_files
from oqtopus_data.tables.flatten import error_rows
from oqtopus_data.tables.storable import escaped

if TYPE_CHECKING:
    from oqtopus_data.dataset.manifest import Manifest
    from oqtopus_data.dataset.storage import Storage
    from oqtopus_data.dataset.writer import Writer

#: The tables holding rows per job (the rest are per run).
JOB_TABLES = ("jobs", "counts", "divided_counts", "estimations")


def split_final(tables: dict[str, pa.Table], final_ids: Iterable[str]) -> tuple[dict[str, pa.Table],
                                                                                dict[str, pa.Table]]:
    """Each per-job table cut in two: rows of the jobs in `final_ids`, and the others."""
    value_set = pa.array(sorted({escaped(i)[0] for i in final_ids}), pa.string())
    final, volatile = {}, {}
    for name in JOB_TABLES:
        table = tables[name]
        is_final = pc.fill_null(pc.is_in(table["job_id"], value_set=value_set), False)
        final[name], volatile[name] = table.filter(is_final), table.filter(pc.invert(is_final))
    return final, volatile


class VolatileRows:
    """The volatile rows of the next commit, per table, kept as one table per name so drops stay cheap."""

    def __init__(self) -> None:
        self._tables: dict[str, list[pa.Table]] = {name: [] for name in (*JOB_TABLES, "errors")}

    def add(self, name: str, table: pa.Table) -> None:
        """Add rows to one table's volatile set."""
        if table.num_rows:
            self._tables[name].append(table)

    def drop(self, job_ids: Iterable[str], *, tables: Iterable[str] | None = None) -> None:
        """Forget the rows of these jobs (the run has news of them) in every table, or only in `tables`."""
        # Ids are stored as storable text (a lone surrogate escaped), so they are compared the same way.
        drop = pa.array(sorted({escaped(i)[0] for i in job_ids}), pa.string())
        if not len(drop):
            return
        for name in tables or self._tables:
            kept = [t.filter(pc.invert(pc.fill_null(pc.is_in(t["job_id"], value_set=drop), False)))
                    for t in self._tables[name]]
            kept = [t for t in kept if t.num_rows]
            self._tables[name] = [pa.concat_tables(kept)] if len(kept) > 1 else kept

    def error(self, job_id: str | None, stage: str, message: str, at: datetime) -> None:
        """Record one failure as the job's only error row (run-level failures have no job id)."""
        if job_id is not None:
            self.drop([job_id], tables=["errors"])
        self.add("errors", error_rows([(job_id, stage, message)], at))

    def statuses(self) -> dict[str, str]:
        """The status each job with volatile rows had when it was exported."""
        out: dict[str, str] = {}
        for table in self._tables["jobs"]:
            out.update(zip(table["job_id"].to_pylist(), table["status"].to_pylist(), strict=True))
        return out

    def tables(self) -> dict[str, pa.Table]:
        """The volatile set, one table per name that has rows."""
        return {name: pa.concat_tables(parts) for name, parts in self._tables.items() if parts}


class FinalRows:
    """Final rows waiting to be written, flushed once they hold `flush_rows` count rows or 20 batches."""

    def __init__(self, flush_rows: int) -> None:
        self.flush_rows = flush_rows
        self._tables: dict[str, list[pa.Table]] = {name: [] for name in JOB_TABLES}
        self._count_rows = 0
        self.ids: set[str] = set()  # the jobs whose rows are buffered

    def add(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            if table.num_rows:
                self._tables[name].append(table)
        self._count_rows += tables["counts"].num_rows
        self.ids.update(tables["jobs"]["job_id"].to_pylist())

    @property
    def full(self) -> bool:
        """Whether the buffer should be written now (memory stays bounded)."""
        return self._count_rows >= self.flush_rows or len(self._tables["jobs"]) >= 20

    def take(self) -> dict[str, pa.Table]:
        """The buffered rows, one table per name, and an empty buffer."""
        out = {name: pa.concat_tables(parts) for name, parts in self._tables.items() if parts}
        self._tables = {name: [] for name in JOB_TABLES}
        self._count_rows = 0
        self.ids = set()
        return out


#: The stage of the errors row of a job whose new rows were refused because the commit holds its row already.
STORE_STAGE = "store"


class RunRows:
    """A run's rows on their way to the next commit: the volatile set carried from the last commit and updated,
    final rows buffered and written in files as they fill, all made visible by `commit`.

    A job whose rows the commit holds already, or that a batch brings twice, has its new rows refused
    (`Writer.duplicates`): `refused(job_id, stage, message)` is told (default: the job's errors row).
    """

    def __init__(self, writer: Writer, now: datetime, flush_rows: int, volatile: VolatileRows | None = None,
                 refused: Callable[[str, str, str], None] | None = None) -> None:
        self.writer = writer
        self.now = now
        self.volatile = volatile if volatile is not None else VolatileRows()
        self.final = FinalRows(flush_rows)
        self.refused = refused or self._refused

    def carry(self) -> None:
        """Take the base commit's volatile rows; run-level errors (no job id) are not carried: a run retries."""
        for name in (*JOB_TABLES, "errors"):
            old = self.writer.base_volatile(name)
            if name == "errors":
                old = old.filter(old["job_id"].is_valid())
            self.volatile.add(name, old)

    def add(self, tables: dict[str, pa.Table], final_ids: Iterable[str]) -> dict[str, int]:
        """A flattened batch: rows of `final_ids` buffered as final, the others volatile; rows per table.

        Rows of a job the dataset or the buffer holds already, or that the batch holds twice, are refused here,
        before the state of the next commit is made (the refused job is fetched again)."""
        tables = self._unique(tables, buffered=self.final.ids)
        final, volatile = split_final(tables, final_ids)
        self.final.add(final)
        for name, table in volatile.items():
            self.volatile.add(name, table)
        if self.final.full:
            self.flush()
        return {name: final[name].num_rows + volatile[name].num_rows for name in JOB_TABLES}

    def flush(self) -> None:
        """Write the buffered final rows as files (visible only once committed)."""
        for name, table in self._unique(self.final.take()).items():
            self.writer.write(name, table, final=True)

    def commit(self, state: dict[str, Any], info: dict[str, Any], *, final: bool) -> Manifest:
        """Write what is buffered, replace the volatile set, and commit it with `state`; `final=False` keeps the
        writer open for the next checkpoint."""
        self.flush()
        self.writer.drop([e for es in self.writer.files.values() for e in es if not e.final])
        self._unique(self.volatile.tables())  # a refused job's rows leave the volatile set, its errors row joins it
        for name, table in self.volatile.tables().items():
            self.writer.write(name, table, final=False)
        return self.writer.commit(state=state, info=info, keep_open=not final)

    def _unique(self, tables: dict[str, pa.Table], buffered: set[str] | None = None) -> dict[str, pa.Table]:
        """`tables` without the rows of jobs the commit must not hold twice (also jobs of `buffered` rows), each
        refused job told once. Checked as a batch arrives, and once more as rows are written."""
        jobs = tables.get("jobs")
        refused = self.writer.duplicates(jobs, buffered or set()) if jobs is not None else {}
        if not refused:
            return tables
        for job_id, why in refused.items():
            self.volatile.drop([job_id], tables=JOB_TABLES)
            self.refused(job_id, STORE_STAGE, why)
        drop = pa.array(sorted(refused), pa.string())
        return {name: table.filter(pc.invert(pc.fill_null(pc.is_in(table["job_id"], value_set=drop), False)))
                if name in JOB_TABLES else table for name, table in tables.items()}

    def _refused(self, job_id: str, stage: str, message: str) -> None:
        self.volatile.error(job_id, stage, message, self.now)


# ---- final rows already committed -------------------------------------------------------------------------------
def drop_final(storage: Storage, writer: Writer, job_ids: Iterable[str]) -> bool:
    """Rewrite the committed final files holding rows of these jobs without them (rare: jobs confirmed deleted, or
    whose final rows a reconcile found wrong); True when a file was rewritten (the caller commits)."""
    wanted = {escaped(j)[0] for j in job_ids}
    if not wanted or writer.base is None:
        return False
    value_set = pa.array(sorted(wanted), pa.string())
    rewritten = False
    for table in JOB_TABLES:
        committed = {e.path for e in writer.base.entries(table) if e.final}
        for entry in [e for e in writer.files.get(table, []) if e.path in committed]:
            if not column_values(storage, [entry], "job_id") & wanted:
                continue
            data = read_files(storage, table, [entry])
            writer.drop([entry])
            writer.write(table, data.filter(pc.invert(pc.is_in(data["job_id"], value_set=value_set))))
            rewritten = True
    return rewritten
