"""Rows on their way to a commit: final rows buffered for writing, volatile rows replaced at every commit.

Rows of terminal jobs are final: written once, kept. Rows of jobs that may still change, and the current errors, are
volatile: every commit writes the whole volatile set again, which is how a job whose status changed replaces its old
rows without rewriting history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data import schema as S
from oqtopus_data.datafiles import column_values, read_files
from oqtopus_data.flatten import error_rows
from oqtopus_data.storable import escaped
from oqtopus_data.windows import SHIFT_SLACK

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

    def add(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            if table.num_rows:
                self._tables[name].append(table)
        self._count_rows += tables["counts"].num_rows

    @property
    def full(self) -> bool:
        """Whether the buffer should be written now (memory stays bounded)."""
        return self._count_rows >= self.flush_rows or len(self._tables["jobs"]) >= 20

    def take(self) -> dict[str, pa.Table]:
        """The buffered rows, one table per name, and an empty buffer."""
        out = {name: pa.concat_tables(parts) for name, parts in self._tables.items() if parts}
        self._tables = {name: [] for name in JOB_TABLES}
        self._count_rows = 0
        return out


class RunRows:
    """A run's rows on their way to the next commit: the volatile set carried from the last commit and updated,
    final rows buffered and written in files as they fill, all made visible by `commit`."""

    def __init__(self, writer: Any, now: datetime, flush_rows: int, volatile: VolatileRows | None = None) -> None:
        self.writer = writer
        self.now = now
        self.volatile = volatile if volatile is not None else VolatileRows()
        self.final = FinalRows(flush_rows)

    def carry(self) -> None:
        """Take the base commit's volatile rows; run-level errors (no job id) are not carried: a run retries."""
        for name in (*JOB_TABLES, "errors"):
            old = self.writer.base_volatile(name)
            if name == "errors":
                old = old.filter(old["job_id"].is_valid())
            self.volatile.add(name, old)

    def add(self, tables: dict[str, pa.Table], final_ids: Iterable[str]) -> dict[str, int]:
        """A flattened batch: rows of `final_ids` buffered as final, the others volatile; rows per table."""
        final, volatile = split_final(tables, final_ids)
        self.final.add(final)
        for name, table in volatile.items():
            self.volatile.add(name, table)
        if self.final.full:
            self.flush()
        return {name: final[name].num_rows + volatile[name].num_rows for name in JOB_TABLES}

    def flush(self) -> None:
        """Write the buffered final rows as files (visible only once committed)."""
        for name, table in self.final.take().items():
            self.writer.write(name, table, final=True)

    def commit(self, state: dict[str, Any], info: dict[str, Any], *, final: bool) -> Any:
        """Write what is buffered, replace the volatile set, and commit it with `state`; `final=False` keeps the
        writer open for the next checkpoint."""
        self.flush()
        self.writer.drop([e for es in self.writer.files.values() for e in es if not e.final])
        for name, table in self.volatile.tables().items():
            self.writer.write(name, table, final=False)
        return self.writer.commit(state=state, info=info, keep_open=not final)


# ---- final rows already committed -------------------------------------------------------------------------------
def final_ids(storage: Any, writer: Any, start: datetime | None) -> set[str]:
    """Ids of jobs committed as final that a listing from `start` can meet again: those a run skips."""
    entries = [e for e in writer.files.get("jobs", []) if e.final]
    if start is not None:
        month = (start - SHIFT_SLACK).strftime("%Y-%m")
        entries = [e for e in entries if (e.partition or "") >= month or e.partition == S.UNKNOWN_MONTH]
    return column_values(storage, entries, "job_id")


def final_among(storage: Any, writer: Any, job_ids: Iterable[str]) -> set[str]:
    """Which of these jobs already have final rows (so a job brought back by id is never written twice)."""
    wanted = set(job_ids)
    entries = [e for e in writer.files.get("jobs", []) if e.final]
    if not wanted or not entries:
        return set()
    return wanted & column_values(storage, entries, "job_id")


def drop_final(storage: Any, writer: Any, job_ids: Iterable[str]) -> bool:
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
