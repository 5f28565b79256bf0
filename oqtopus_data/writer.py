"""Writing a commit: data files staged under hidden names, one manifest created exclusively, then published.

The protocol itself is described in dataset.py. Every step here runs under the dataset's writer lock, which is also
what makes garbage collection safe: no other writer has files in flight.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S
from .datafiles import column_values, read_files
from .errors import StoreError
from .manifest import (
    REBUILD,
    REPAIR,
    FileEntry,
    Manifest,
    MissingFilesError,
    list_versions,
    locate,
    manifest_name,
    none_readable,
    partitions_of,
    present,
    read_newest,
    table_directory,
)
from .storage import Storage, is_staged
from .storage.common import META_DIR, gone

#: A random id written once per dataset (by its first writer) and read again before each commit: a dataset removed
#: and made again meanwhile has another id, or none.
DATASET_ID = f"{META_DIR}/dataset_id"
#: The tokens of writers that may have staged files no commit names yet (a writer notes its token before it stages
#: anything; garbage collection deletes their leftovers, then forgets them).
RUNS = f"{META_DIR}/runs"
_TOKEN = re.compile(r"[0-9a-f]{8}")
KEEP_MANIFESTS = 10  # older manifests are pruned; readers only ever need the newest readable one


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
            versions = self._open_base(repair)
        except BaseException:
            self._stack.close()
            raise
        # Above every manifest there is, readable or not: a commit never reuses the number of a broken one.
        self.version = max([0, *versions]) + 1
        self._staged: dict[str, str] = {}
        self.files: dict[str, list[FileEntry]] = {}
        keep = {} if fresh or self.base is None else self.base.files
        gone = {e.path for e in self.missing}
        for table, entries in keep.items():
            finals = [e for e in entries if e.final and e.path not in gone]
            if finals:
                self.files[table] = finals
        self._token = uuid.uuid4().hex[:8]
        self._seq = 0
        self.committed: Manifest | None = None
        self._named: set[str] | None = None  # files the dataset's manifests named: what garbage may be made of
        self._ids: dict[str, dict[str, set[str]]] = {}  # table -> file -> its job ids (see `ids`)
        self._held: set[str] | None = None  # see `_held_jobs`; None: to be worked out again
        try:
            _note_run(storage, self._token)  # before anything is staged: a kill leaves files the next GC knows
        except BaseException:
            self._stack.close()
            raise

    def _open_base(self, repair: bool) -> list[int]:
        """Read the base commit under the lock, roll its publish forward and check that its files are all there.

        Sets `base` (None: empty), `notes` (why newer manifests were skipped) and `missing` (files of the base that
        are gone: an error unless `repair`). One listing of the table directories serves both checks.
        """
        versions = list_versions(self.storage)
        self.base, notes = read_newest(self.storage, versions)
        if self.base is None and notes:
            if not self.fresh:
                raise none_readable(self.storage, notes)
            notes.append("this fresh export starts from an empty dataset")
        self.notes = notes
        self.missing: list[FileEntry] = []
        if self.base is None:
            return versions
        found = present(self.storage)
        for final, staged in self.base.publish.items():  # roll forward a run killed between commit and publish
            if staged in found:
                self.storage.rename(staged, final)
                found.discard(staged)
                found.add(final)
        missing = locate(self.base, found)
        if missing and not self.fresh:
            final = [e for e in missing if e.final]
            if final and not repair:
                raise MissingFilesError(
                    self.storage.uri(""), self.base.version, final,
                    f"an export does not continue a dataset that lost files: restore them from where the dataset "
                    f"came from, {REPAIR}, {REBUILD}")
            if len(final) < len(missing):
                # Volatile rows (jobs not yet terminal, current errors) are replaced by every commit and their jobs
                # are fetched again by id: losing their file loses nothing. Typical after falling back to an older
                # commit, whose volatile files the newer one had replaced.
                self.notes.append(f"{len(missing) - len(final)} file(s) of rows that may still change are gone "
                                  f"from commit {self.base.version}; their jobs are fetched again")
            self.missing = missing
        return versions

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
        """The job ids with rows in this commit's files of `table` so far: final files (default), volatile ones
        (`final=False`) or all (None). Each committed file's ids are read once per writer (one column), those of
        files written here are taken as they are written: the one place that knows which jobs are written."""
        index = self._ids.setdefault(table, {})
        entries = self.files.get(table, [])
        for entry in entries:
            if entry.path not in index:
                index[entry.path] = column_values(self.storage, [entry], "job_id", self.base)
        out: set[str] = set()
        for entry in entries:
            if final is None or entry.final == final:
                out |= index[entry.path]
        return out

    def duplicates(self, jobs: pa.Table, buffered: set[str] | None = None) -> dict[str, str]:
        """The jobs among the `jobs` rows that this commit must refuse (job_id -> why): a job whose row it holds
        already (committed as final, or written by this run, or among the caller's `buffered` rows on their way),
        or one `jobs` holds twice. A commit never holds two rows of one job; the caller refuses every new row of
        these jobs, and the stored rows stay."""
        new = Counter(jobs["job_id"].to_pylist())
        held_now, buffered = (self._held_jobs() if new else set()), buffered or set()
        held = {job_id for job_id in new if job_id in held_now or job_id in buffered}
        out = {job_id: "the dataset holds this job's row already, so the second one the server's answers "
                       "brought in this run was refused (the stored row is kept)" for job_id in sorted(held)}
        for job_id, n in sorted(new.items()):
            if n > 1 and job_id not in out:
                out[job_id] = (f"the server's answers brought {n} rows of this job in one batch, so none was "
                               "written; it is fetched again next run")
        return out

    def _held_jobs(self) -> set[str]:
        """Jobs the next commit holds rows of so far: in final files, and in volatile files written since the last
        commit (those of an earlier checkpoint are replaced by the next commit's volatile set). Kept between
        calls: a batch's check costs its own size, not the dataset's."""
        if self._held is None:
            held = self.ids("jobs", final=True)
            index = self._ids["jobs"]
            for entry in self.files.get("jobs", []):
                if not entry.final and entry.path in self._staged:
                    held |= index[entry.path]
            self._held = held
        return self._held

    def _check_unique_jobs(self) -> None:
        """At commit: every jobs file written since the last commit holds each of its jobs once, and no job another
        file of the commit holds (the guard behind `duplicates`, whatever wrote the files)."""
        entries = self.files.get("jobs", [])
        new = [e for e in entries if e.path in self._staged]
        if not new:
            return
        self.ids("jobs", final=None)
        index = self._ids["jobs"]
        others: Counter[str] = Counter()
        for entry in entries:
            others.update(index[entry.path])
        for entry in new:
            twice = sorted(j for j in index[entry.path] if others[j] > 1)
            if twice or entry.rows > len(index[entry.path]):
                shown = f"job {twice[0]}" if twice else f"a job of {entry.path}"
                raise StoreError(f"{shown} would have two rows in the jobs table of {self.storage.uri('')}: "
                                 "nothing of this run was committed")

    def write(self, table: str, data: pa.Table, *, final: bool = True) -> list[FileEntry]:
        """Write `data` (declared schema) as one file per partition; visible only after `commit`.

        Rows of `jobs` whose job the commit holds already (`duplicates`) are refused with a StoreError: the last
        guard, for callers that did not take them out first.
        """
        data = S.conform(table, data)
        if data.num_rows == 0:
            return []
        if table == "jobs":
            twice = self.duplicates(data)
            if twice:
                job_id, why = next(iter(twice.items()))
                raise StoreError(f"job {job_id}: {why}; {len(twice)} job(s) would have two rows in "
                                 f"{self.storage.uri('')}: nothing of this write was committed")
        spec = S.TABLES[table]
        written = []
        if spec.partitioned:
            months = data[S.PARTITION_COLUMN]
            unique = sorted(pc.unique(months).to_pylist())
            for month in unique:
                # One month (every compaction, most flushes): no filtered copy of the whole table.
                part = data if len(unique) == 1 else data.filter(pc.equal(months, month))
                written.append(self._write_file(table, part.drop_columns([S.PARTITION_COLUMN]), final, month))
        else:
            written.append(self._write_file(table, data, final, None))
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
        self._ids.setdefault(table, {})[entry.path] = ids
        self._held = None
        self.files.setdefault(table, []).append(entry)
        return entry

    def _write_file(self, table: str, data: pa.Table | Iterable[pa.Table], final: bool,
                    month: str | None) -> FileEntry:
        self._seq += 1
        directory = table_directory(table, month)
        name = f"part-{self.version:06d}-{self._token}-{self._seq:05d}.parquet"
        rel = f"{directory}/{name}"
        staged = self.storage.staged_name(rel)
        size = self.storage.write_parquet(staged, data)
        self._staged[rel] = staged
        if isinstance(data, pa.Table) and "job_id" in data.column_names:
            ids = self._ids.setdefault(table, {})[rel] = set(pc.unique(data["job_id"]).to_pylist())
            if table == "jobs" and self._held is not None:
                self._held |= ids
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
        for index in self._ids.values():
            for path in gone:
                index.pop(path, None)
        self._held = None

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
        self._check_unique_jobs()
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
        self._staged = {}
        self._held = None  # the volatile files written so far now belong to an earlier commit
        if self._named is None:
            self._named = named_files(self.storage, list_versions(self.storage))
        self._named |= _names(manifest)
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


def collect_garbage(storage: Storage, *, named: set[str] | None = None, running: str | None = None) -> int:
    """Delete the data files of this dataset that the newest manifest does not name (replaced, compacted, left by
    killed runs); returns how many.

    Only files a manifest of this dataset named (`named`, default: read from every manifest kept) or that one of
    its writers staged (their tokens are noted in RUNS before they stage anything) are ever deleted: a table
    directory may be a symlink to a disk that holds other files, and a file this dataset never wrote is never
    its garbage. `running` is the token of a writer that goes on (a checkpoint): it stays noted.
    Call it only under the writer lock. Readers of an older manifest may then miss a file: they re-open. Nothing is
    deleted unless the newest manifest reads and passes its checks: never on partial knowledge.
    """
    versions = list_versions(storage)
    if not versions:
        return 0
    name = manifest_name(versions[-1])
    try:
        manifest = Manifest.from_bytes(storage.read_bytes(name), name, version=versions[-1])
    except (OSError, StoreError):
        return 0
    live = _names(manifest)
    if named is None:
        named = named_files(storage, versions)
    runs = _runs(storage)
    removed = 0
    for rel in sorted(present(storage)):
        if rel not in live and (rel in named or _run_of(rel, runs) is not None):
            storage.delete(rel)
            removed += 1
    for version in versions[:-KEEP_MANIFESTS]:
        storage.delete(manifest_name(version))
    still = {running} if running else set()
    if set(runs) != still:
        storage.write_bytes(RUNS, json.dumps(sorted(still)).encode())
    return removed


def named_files(storage: Storage, versions: list[int]) -> set[str]:
    """Every data file (final and staged name) that the readable manifests among `versions` name."""
    out: set[str] = set()
    for version in versions:
        name = manifest_name(version)
        try:
            out |= _names(Manifest.from_bytes(storage.read_bytes(name), name, version=version))
        except (OSError, StoreError):  # pruned meanwhile, or unreadable: it names nothing we can trust
            continue
    return out


def _names(manifest: Manifest) -> set[str]:
    return {e.path for e in manifest.all_entries()} | set(manifest.publish.values())


def _runs(storage: Storage) -> list[str]:
    """The tokens of the writers that may have left staged files (RUNS; none when absent or unreadable)."""
    try:
        runs = json.loads(storage.read_bytes(RUNS))
    except (FileNotFoundError, ValueError):
        return []
    return [r for r in runs if isinstance(r, str) and _TOKEN.fullmatch(r)] if isinstance(runs, list) else []


def _note_run(storage: Storage, token: str) -> None:
    """Note `token` in RUNS: the staged files named with it are this dataset's own, whatever becomes of its run."""
    runs = _runs(storage)
    storage.write_bytes(RUNS, json.dumps(sorted({*runs, token})).encode())


def _run_of(rel: str, runs: list[str]) -> str | None:
    """The noted run whose staged file (or the temporary file of one) `rel` is, or None."""
    name = rel.rpartition("/")[2]
    if not is_staged(rel):
        return None
    return next((token for token in runs if f"-{token}-" in name), None)


def discard_new(storage: Storage) -> bool:
    """Remove a location that `Storage.create_root` made for a run that then committed nothing.

    Only under the writer lock and only while no manifest exists: the winner of a race for a new directory keeps
    everything, and a run that committed a checkpoint keeps it. Never raises (it runs while another error is
    reported); returns whether the location was removed.
    """
    try:
        with storage.lock():
            if list_versions(storage):
                return False
            storage.remove_root()
            return True
    except (StoreError, OSError):  # another writer holds the lock (LockError) or the store is unreachable
        return False
