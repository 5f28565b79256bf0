"""SSE log archives, saved on request (`--sse-logs`) into `OUT_DIR/sse_logs/` under names we choose.

The archives come from the fetcher (`fetch.fetch_jobs(..., sse_logs=True)`, `fetch.refetch_sse_logs`): nothing is
downloaded here. A file name is derived from the job id alone, bounded and unique, and the `sse_logs` table's
`path` says which file belongs to which job; a name the server suggests is never used as a path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S
from .archives import ArchiveError, check_zip
from .dataset import Dataset
from .manifest import LOG_DIR

if TYPE_CHECKING:
    from .errors import JobError
    from .writer import Writer

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
    brought it back (its file is replaced by the same name, never doubled)."""

    def __init__(self, dataset: Dataset, writer: Writer) -> None:
        self.dataset = dataset
        self.writer = writer
        self._held: dict[str, tuple[bytes | None, JobError | None]] = {}
        self._indexed: set[str] | None = None

    def hold(self, job_id: str, data: bytes | None, error: JobError | None) -> None:
        """Keep a fetched log (or the error that stopped it) until its job's rows are written."""
        if data is not None or error is not None:
            self._held[job_id] = (data, error)

    def release(self, final_ids: Iterable[str]) -> tuple[int, list[tuple[str, str]]]:
        """Save the held logs of jobs whose rows are final now: (index rows written, [(job_id, problem)])."""
        taken = [(job_id, self._held.pop(job_id)) for job_id in final_ids if job_id in self._held]
        failed = [(job_id, error.problem) for job_id, (_data, error) in taken if error is not None]
        written, errors = self.save([(job_id, data) for job_id, (data, _e) in taken if data is not None])
        return written, failed + errors

    def save(self, logs: list[tuple[str, bytes]]) -> tuple[int, list[tuple[str, str]]]:
        """Save logs and index the jobs not indexed yet: (index rows written, [(job_id, problem)])."""
        if not logs:
            return 0, []
        if self._indexed is None:
            from .datafiles import column_values

            self._indexed = column_values(self.dataset.storage, self.writer.files.get("sse_logs", []), "job_id")
        saved = save_sse_logs(self.dataset, logs)
        fresh = pa.array([j for j, _ in logs if j not in self._indexed], pa.string())
        table = saved.table.filter(pc.is_in(saved.table["job_id"], value_set=fresh))
        self._indexed.update(table["job_id"].to_pylist())
        if table.num_rows:
            self.writer.write("sse_logs", table, final=True)
        return table.num_rows, saved.errors
