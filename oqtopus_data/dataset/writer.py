"""Writing a commit: data files staged under hidden names, one manifest created exclusively, then published.

The protocol itself is described in dataset.py. Every step here runs under the dataset's writer lock, which is also
what makes garbage collection safe: no other writer has files in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data.dataset.base_commit import open_base
from oqtopus_data.dataset.datafiles import by_partition, column_values, read_files
from oqtopus_data.dataset.garbage import collect_garbage, discard_new, named_files, names_of, new_run, part_name
from oqtopus_data.dataset.job_rows import JobRows
from oqtopus_data.dataset.manifest import (
    FileEntry,
    Manifest,
    list_versions,
    manifest_name,
    partitions_of,
    table_directory,
)
from oqtopus_data.dataset.storage import Storage
from oqtopus_data.dataset.storage.common import META_DIR, gone
from oqtopus_data.errors import StoreError
from oqtopus_data.tables import schema as S

__all__ = ["DATASET_ID", "Writer", "collect_garbage", "discard_new", "named_files"]

#: A random id written once per dataset (by its first writer) and read again before each commit: a dataset removed
#: and made again meanwhile has another id, or none.
DATASET_ID = f"{META_DIR}/dataset_id"


class Writer:
    """One commit in the making: write data files, then `commit` the manifest that makes them visible.

    Use as a context manager: leaving it without commit (an exception, a kill) leaves the previous commit intact.
    """

    def __init__(self, storage: Storage, *, operation: str, fresh: bool, repair: bool = False) -> None:
        self.storage = storage
        self.operation = operation
        self.fresh = fresh
        self._stack = ExitStack()
        self._stack.enter_context(self.storage.lock())
        try:
            self.dataset_id = _dataset_id(storage)
            opened = open_base(storage, fresh=fresh, repair=repair)
        except BaseException:
            self._stack.close()
            raise
        self.base, self.notes, self.missing = opened.manifest, opened.notes, opened.missing
        self.version = opened.next_version
        self._staged: dict[str, str] = {}
        self.files: dict[str, list[FileEntry]] = {} if fresh else opened.kept()
        self._seq = 0
        self.committed: Manifest | None = None
        self._named: set[str] | None = None  # files the dataset's manifests named: what garbage may be made of
        self.jobs = JobRows(self.files, self._staged, self._read_ids, storage.uri(""))
        try:
            self._token = new_run(storage)  # before anything is staged: a kill leaves files the next GC knows
        except BaseException:
            self._stack.close()
            raise

    def _read_ids(self, entry: FileEntry) -> set[str]:
        """The job ids of a committed file (one column), read where the base commit says it is now."""
        return column_values(self.storage, [entry], "job_id", self.base)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def base_volatile(self, table: str) -> pa.Table:
        """The volatile rows of `table` in the base commit, for the caller to carry forward what still holds."""
        if self.base is None or self.fresh:
            return S.empty_table(table)
        gone = {e.path for e in self.missing}  # a repairing caller fetches their jobs again
        return read_files(self.storage, table, [e for e in self.base.entries(table) if not e.final
                                                and e.path not in gone])

    def ids(self, table: str = "jobs", *, final: bool | None = True) -> set[str]:
        """The job ids with rows in this commit's files of `table` so far (see `JobRows.ids`)."""
        return self.jobs.ids(table, final=final)

    def duplicates(self, jobs: pa.Table, buffered: set[str] | None = None) -> dict[str, str]:
        """The jobs among the `jobs` rows that this commit must refuse, job_id -> why (see `JobRows.duplicates`)."""
        return self.jobs.duplicates(jobs, buffered)

    def write(self, table: str, data: pa.Table, *, final: bool = True) -> list[FileEntry]:
        """Write `data` (declared schema) as one file per partition; visible only after `commit`.

        Rows of `jobs` whose job the commit holds already (`duplicates`) are refused with a StoreError: the last
        guard, for callers that did not take them out first.
        """
        data = S.conform(table, data)
        if data.num_rows == 0:
            return []
        if table == "jobs":
            self.jobs.refuse_duplicates(data)
        written = [self._write_file(table, part, final, month) for month, part in by_partition(table, data)]
        self.files.setdefault(table, []).extend(written)
        return written

    def write_parts(self, table: str, parts: Iterable[pa.Table], month: str | None) -> FileEntry:
        """Write one final file of `table` (partition `month`) from `parts` (declared schema, that partition only),
        one part in memory at a time: compaction's streaming merge."""
        spec = S.TABLES[table]
        rows = 0

        ids: set[str] = set()

        def conformed() -> Iterator[pa.Table]:
            nonlocal rows
            for part in parts:
                part = S.conform(table, part)
                if spec.partitioned:
                    part = part.drop_columns([S.PARTITION_COLUMN])
                rows += part.num_rows
                if "job_id" in part.column_names:
                    ids.update(pc.unique(part["job_id"]).to_pylist())
                yield part

        entry = self._write_file(table, conformed(), True, month)
        entry = replace(entry, rows=rows)
        self.jobs.written(table, entry.path, ids)
        self.jobs.reset()
        self.files.setdefault(table, []).append(entry)
        return entry

    def _write_file(self, table: str, data: pa.Table | Iterable[pa.Table], final: bool,
                    month: str | None) -> FileEntry:
        self._seq += 1
        directory = table_directory(table, month)
        rel = f"{directory}/{part_name(self.version, self._token, self._seq)}"
        staged = self.storage.staged_name(rel)
        size = self.storage.write_parquet(staged, data)
        self._staged[rel] = staged
        if isinstance(data, pa.Table) and "job_id" in data.column_names:
            self.jobs.written(table, rel, set(pc.unique(data["job_id"]).to_pylist()))
        return FileEntry(table, rel, data.num_rows if isinstance(data, pa.Table) else 0, size, final, month)

    def check_identity(self) -> None:
        """Refuse to go on (DatasetGoneError) when the dataset this writer opened is gone: removed, or removed and
        made again. Checked before every commit, so a commit never names files that were deleted with it."""
        if _read_id(self.storage) != self.dataset_id or not self.storage.lock_intact():
            raise gone(self.storage.uri(""))

    def _publish(self, pairs: dict[str, str]) -> None:
        """Rename this commit's staged files to their final names (what Spark and Trino list)."""
        for final, staged in pairs.items():
            if self.storage.exists(staged):
                self.storage.rename(staged, final)

    def drop(self, entries: Iterable[FileEntry]) -> None:
        """Remove files from this commit (compaction replaces them with a rewritten one)."""
        gone = {e.path for e in entries}
        for table in list(self.files):
            self.files[table] = [e for e in self.files[table] if e.path not in gone]
        self.jobs.dropped(gone)

    @property
    def missing_months(self) -> list[str]:
        """The partitions of the per-job final files in `missing`: the months a repair takes out and fetches again
        (lost volatile rows need no repair: their jobs are fetched again by id anyway)."""
        return partitions_of([e for e in self.missing if e.final])

    def drop_partitions(self, months: Iterable[str]) -> list[FileEntry]:
        """Take every final file of these `submitted_month` partitions out of this commit, in every per-job table.

        The repair of a dataset that lost a file: the caller then fetches the jobs of those months again, and their
        rows come back once, whichever table the lost file belonged to. Returns the files taken out.
        """
        months = set(months)
        dropped = [e for table, entries in self.files.items() if S.TABLES[table].partitioned
                   for e in entries if e.partition in months]
        self.drop(dropped)
        return dropped

    def commit(self, state: dict[str, Any] | None = None, info: dict[str, Any] | None = None, *,
               keep_open: bool = False) -> Manifest:
        """Make everything written visible at once by creating the next manifest.

        `keep_open` makes it a checkpoint: the lock is kept and the writer goes on towards the next version.
        Otherwise files no recent commit names are deleted (still under the lock) and the lock is released.
        """
        self.check_identity()
        self.jobs.check_unique()
        files = {t: list(es) for t, es in self.files.items() if es}
        named = {e.path for es in files.values() for e in es}
        manifest = Manifest(
            version=self.version,
            files=files,
            state=state if state is not None else (dict(self.base.state) if self.base else {}),
            created_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            operation=self.operation,
            info=info or {},
            publish={final: staged for final, staged in self._staged.items() if final in named},
            notes=list(self.notes),
        )
        if not self.storage.create_exclusive(manifest_name(self.version), manifest.to_bytes()):
            raise StoreError(
                f"another writer committed version {self.version} of {self.storage.uri('')} during this run; "
                "nothing of this run was committed: run the export again"
            )
        self.committed = manifest
        self._publish(manifest.publish)
        self._staged.clear()
        self.jobs.reset()  # the volatile files written so far now belong to an earlier commit
        if self._named is None:
            self._named = named_files(self.storage, list_versions(self.storage))
        self._named |= names_of(manifest)
        # Still under the lock: no other writer has files in flight. The token of a writer kept open stays noted.
        collect_garbage(self.storage, named=self._named, running=self._token if keep_open else None)
        if keep_open:
            self.base, self.version = manifest, self.version + 1
            return manifest
        self._stack.close()
        return manifest


def _dataset_id(storage: Storage) -> str:
    """The dataset's id, written now (exclusively) if it has none yet: datasets of older versions get one too."""
    found = _read_id(storage)
    if found is None:
        storage.create_exclusive(DATASET_ID, uuid.uuid4().hex.encode())
        found = _read_id(storage)
    if found is None:
        raise gone(storage.uri(""))
    return found


def _read_id(storage: Storage) -> str | None:
    try:
        return storage.read_bytes(DATASET_ID).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
