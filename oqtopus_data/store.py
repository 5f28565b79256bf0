"""The Parquet dataset: immutable data files plus one manifest per commit, written last.

Layout of an export directory:

    jobs/submitted_month=2024-01/part-000003-1a2b3c4d.parquet     data files, never modified after commit
    counts/submitted_month=2024-01/...                            (per-job tables are Hive-partitioned by month)
    errors/part-....parquet, devices/..., sse_log_index/...
    _oqtopus/manifests/00000000000000000003.json                  commit 3: every live file, the sync state
    _oqtopus/lock                                                 held (flock) by the one writer

A reader takes the newest manifest and reads exactly the files it names, so it sees a whole commit or the one
before, never a half-written run. Engines that list directories instead (Spark, Trino, Hive) must not see an
uncommitted file either: a writer stages each file under a hidden name (`.part-....parquet.staged`, which those
engines skip), commits the manifest, then publishes (renames) the staged files; a run killed between the two is
rolled forward by the next writer, and readers of that manifest fall back to the staged names meanwhile. After a
commit, files the manifest no longer names (replaced, compacted, left by killed runs) are deleted, so the
directories hold exactly the newest commit whenever no export is running.
Each file entry is `final` (rows of terminal jobs, kept until compaction) or volatile (rows of jobs that may still
change, and the current errors): every commit replaces the whole volatile set, which is how a job whose status
changed replaces its old rows without rewriting history.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from . import schema as S
from .errors import StoreError
from .storage import Storage, open_storage

MANIFEST_DIR = "_oqtopus/manifests"
FORMAT = "oqtopus-data"
KEEP_MANIFESTS = 10  # older manifests are pruned; readers only ever need the newest
# Directory of each table; the SSE log archives themselves live in sse_logs/, so their index table does not.
TABLE_DIRS = {name: name for name in S.TABLES} | {"sse_logs": "sse_log_index"}


@dataclass(frozen=True)
class FileEntry:
    """One data file of a commit."""

    table: str
    path: str
    rows: int
    bytes: int
    final: bool = True
    partition: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "final": self.final,
                "partition": self.partition}


@dataclass
class Manifest:
    """One commit: the live files of every table and the export state that goes with them."""

    version: int
    files: dict[str, list[FileEntry]]
    state: dict[str, Any] = field(default_factory=dict)
    schema_version: int = S.SCHEMA_VERSION
    created_at: str = ""
    operation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, str] = field(default_factory=dict)  # final path -> staged path, until renamed

    def entries(self, table: str) -> list[FileEntry]:
        """The files of `table` (empty when it has none)."""
        return self.files.get(table, [])

    def rows(self, table: str) -> int:
        """Rows of `table` in this commit."""
        return sum(e.rows for e in self.entries(table))

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "schema_version": self.schema_version,
            "version": self.version,
            "created_at": self.created_at,
            "operation": self.operation,
            "writer": f"oqtopus-data {__version__}",
            "tables": {t: [e.to_json() for e in es] for t, es in sorted(self.files.items())},
            "state": self.state,
            "info": self.info,
            "publish": self.publish,
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT:
                raise ValueError("not an oqtopus-data manifest")
            files = {
                t: [FileEntry(t, e["path"], int(e["rows"]), int(e["bytes"]), bool(e["final"]), e.get("partition"))
                    for e in es]
                for t, es in body["tables"].items()
            }
            manifest = cls(int(body["version"]), files, body.get("state") or {}, int(body["schema_version"]),
                           body.get("created_at", ""), body.get("operation", ""), body.get("info") or {},
                           dict(body.get("publish") or {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{where} is not a readable oqtopus-data manifest: {exc}") from exc
        return _migrate(manifest, where)


def _migrate(manifest: Manifest, where: str) -> Manifest:
    """Bring an older manifest up to SCHEMA_VERSION step by step; refuse a newer one."""
    if manifest.schema_version > S.SCHEMA_VERSION:
        raise StoreError(
            f"{where} was written by a newer oqtopus-data (schema version {manifest.schema_version}, this one "
            f"reads up to {S.SCHEMA_VERSION}); upgrade oqtopus-data to read or extend it"
        )
    # Each step goes here as `if v == N: ...; v = N + 1`. 1 -> 2 (jobs.extra, estimations.operator_coeff_imag) needs
    # nothing: the readers take a column a file lacks as nulls.
    return manifest


def _manifest_name(version: int) -> str:
    return f"{MANIFEST_DIR}/{version:020d}.json"


class Dataset:
    """An export directory (or URL): read its latest commit, or open a writer to add one."""

    def __init__(self, location: str | os.PathLike[str] | Storage, **storage_options: str) -> None:
        self.storage: Storage = (
            open_storage(location, **storage_options) if isinstance(location, str | os.PathLike) else location
        )

    def manifest_versions(self) -> list[int]:
        """Committed versions, oldest first."""
        versions = []
        for rel in self.storage.list(MANIFEST_DIR):
            name = rel.rsplit("/", 1)[-1]
            if name.endswith(".json") and name[:-5].isdigit():
                versions.append(int(name[:-5]))
        return sorted(versions)

    def latest(self) -> Manifest | None:
        """The newest commit, or None for a directory that holds no export yet."""
        versions = self.manifest_versions()
        if not versions:
            return None
        name = _manifest_name(versions[-1])
        return Manifest.from_bytes(self.storage.read_bytes(name), self.storage.uri(name))

    def require_latest(self) -> Manifest:
        """The newest commit, or a StoreError saying the location holds no export."""
        manifest = self.latest()
        if manifest is None:
            raise StoreError(f"{self.storage.uri('')} holds no oqtopus-data export (no {MANIFEST_DIR}/)")
        return manifest

    def uris(self, table: str, manifest: Manifest | None = None) -> list[str]:
        """Locations of the live files of `table`, for DuckDB, polars or pyarrow."""
        manifest = manifest or self.latest()
        if manifest is None:
            return []
        return [self.storage.uri(self._where(e, manifest)) for e in manifest.entries(table)]

    def _where(self, entry: FileEntry, manifest: Manifest | None) -> str:
        """The path to read an entry at: its final name, or its staged one while a publish is unfinished."""
        staged = manifest.publish.get(entry.path) if manifest else None
        if staged and not self.storage.exists(entry.path) and self.storage.exists(staged):
            return staged
        return entry.path

    def read_table(self, table: str, entries: Iterable[FileEntry] | None = None) -> pa.Table:
        """Rows of `table` from the given files (default: the latest commit), with the declared schema."""
        manifest = None
        if entries is None:
            manifest = self.latest()
            entries = manifest.entries(table) if manifest else []
        parts = [self._read_entry(e, manifest) for e in entries]
        if not parts:
            return S.empty_table(table)
        return pa.concat_tables(parts)

    def _read_entry(self, entry: FileEntry, manifest: Manifest | None = None) -> pa.Table:
        spec = S.TABLES[entry.table]
        path = self._where(entry, manifest) if manifest else entry.path
        data = pq.read_table(pa.BufferReader(self.storage.read_bytes(path)), schema=spec.file_schema)
        if spec.partitioned:
            month = pa.array([entry.partition or S.UNKNOWN_MONTH] * len(data), pa.string())
            data = data.append_column(S.PARTITION_COLUMN, month)
        return S.conform(entry.table, data)

    def writer(self, *, operation: str = "append", fresh: bool = False) -> Writer:
        """A transaction that holds the lock until commit or abort; `fresh` starts from an empty dataset."""
        return Writer(self, operation=operation, fresh=fresh)


class Writer:
    """One commit in the making: write data files, then `commit` the manifest that makes them visible.

    Use as a context manager: leaving it without commit (an exception, a kill) leaves the previous commit intact.
    """

    def __init__(self, dataset: Dataset, *, operation: str, fresh: bool) -> None:
        self.dataset = dataset
        self.storage = dataset.storage
        self.operation = operation
        self._stack = ExitStack()
        self._stack.enter_context(self.storage.lock())
        try:
            self.base = dataset.latest()
        except BaseException:
            self._stack.close()
            raise
        if self.base is not None:
            self._publish(self.base.publish)  # roll forward a run killed between its commit and its publish
        self.version = (self.base.version if self.base else 0) + 1
        self.fresh = fresh
        self._staged: dict[str, str] = {}
        self.files: dict[str, list[FileEntry]] = {}
        keep = {} if fresh or self.base is None else self.base.files
        for table, entries in keep.items():
            finals = [e for e in entries if e.final]
            if finals:
                self.files[table] = finals
        self._token = uuid.uuid4().hex[:8]
        self._seq = 0
        self.committed: Manifest | None = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def base_volatile(self, table: str) -> pa.Table:
        """The volatile rows of `table` in the base commit, for the caller to carry forward what still holds."""
        if self.base is None or self.fresh:
            return S.empty_table(table)
        return self.dataset.read_table(table, [e for e in self.base.entries(table) if not e.final])

    def write(self, table: str, data: pa.Table, *, final: bool = True) -> list[FileEntry]:
        """Write `data` (declared schema) as one file per partition; visible only after `commit`."""
        data = S.conform(table, data)
        if data.num_rows == 0:
            return []
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

    def _write_file(self, table: str, data: pa.Table, final: bool, month: str | None) -> FileEntry:
        self._seq += 1
        directory = TABLE_DIRS[table] + (f"/{S.PARTITION_COLUMN}={month}" if month else "")
        name = f"part-{self.version:06d}-{self._token}-{self._seq:05d}.parquet"
        rel, staged = f"{directory}/{name}", f"{directory}/.{name}.staged"
        size = self.storage.write_parquet(staged, data)
        self._staged[rel] = staged
        return FileEntry(table, rel, data.num_rows, size, final, month)

    def _publish(self, pairs: dict[str, str]) -> None:
        for final, staged in pairs.items():
            if self.storage.exists(staged):
                self.storage.rename(staged, final)

    def drop(self, entries: Iterable[FileEntry]) -> None:
        """Remove files from this commit (compaction replaces them with a rewritten one)."""
        gone = {e.path for e in entries}
        for table in list(self.files):
            self.files[table] = [e for e in self.files[table] if e.path not in gone]

    def commit(self, state: dict[str, Any] | None = None, info: dict[str, Any] | None = None, *,
               keep_open: bool = False) -> Manifest:
        """Make everything written visible at once by creating the next manifest.

        `keep_open` makes it a checkpoint: the lock is kept and the writer goes on towards the next version.
        Otherwise files no recent commit names are deleted (still under the lock) and the lock is released.
        """
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
        )
        if not self.storage.create_exclusive(_manifest_name(self.version), manifest.to_bytes()):
            raise StoreError(
                f"another writer committed version {self.version} of {self.storage.uri('')} during this run; "
                "nothing of this run was committed: run the export again"
            )
        self.committed = manifest
        self._publish(manifest.publish)
        self._staged = {}
        collect_garbage(self.dataset)  # still under the lock: no other writer has files in flight
        if keep_open:
            self.base, self.version = manifest, self.version + 1
            return manifest
        self._stack.close()
        return manifest


def collect_garbage(dataset: Dataset) -> int:
    """Delete data files the newest manifest does not name (replaced, compacted, left by killed runs).

    Call it only under the writer lock. Readers of an older manifest may then miss a file: they re-open.
    """
    versions = dataset.manifest_versions()
    if not versions:
        return 0
    storage = dataset.storage
    name = _manifest_name(versions[-1])
    try:
        manifest = Manifest.from_bytes(storage.read_bytes(name), name)
    except (FileNotFoundError, StoreError):
        return 0  # never delete on partial knowledge
    live = {e.path for es in manifest.files.values() for e in es} | set(manifest.publish.values())
    removed = 0
    for directory in set(TABLE_DIRS.values()):
        for rel in storage.list(directory):
            if (rel.endswith(".parquet") or rel.endswith(".staged")) and rel not in live:
                storage.delete(rel)
                removed += 1
    for version in versions[:-KEEP_MANIFESTS]:
        storage.delete(_manifest_name(version))
    return removed


def write_dataset(tables: dict[str, pa.Table], out_dir: str | os.PathLike[str]) -> Manifest:
    """Append `tables` (name -> table with the declared schema) to the dataset at `out_dir` in one commit.

    Files appear under `out_dir/<table>/` with zstd compression; a second call adds files, never rewrites them.
    """
    unknown = set(tables) - set(S.TABLES)
    if unknown:
        raise ValueError(f"unknown tables: {', '.join(sorted(unknown))} (known: {', '.join(S.TABLES)})")
    with Dataset(out_dir).writer(operation="append") as writer:
        for name, table in tables.items():
            writer.write(name, table, final=True)
        return writer.commit()


def compact(location: str | os.PathLike[str] | Dataset, *, min_files: int = 2,
            target_rows: int = 2_000_000, target_bytes: int = 32 * 2**20) -> Manifest | None:
    """Merge the final files of each table partition into few large ones; query results do not change.

    Returns the new commit, or None when no partition had `min_files` files or more.
    """
    dataset = location if isinstance(location, Dataset) else Dataset(location)
    with dataset.writer(operation="compact") as writer:
        base = writer.base
        if base is None:
            return None
        changed = False
        for table, group in _groups(base):
            if len(group) < min_files:
                continue
            for batch in _batches(group, target_rows, target_bytes):
                if len(batch) < 2:
                    continue
                merged = dataset.read_table(table, batch)
                writer.drop(batch)
                writer.write(table, merged, final=True)
                changed = True
        if not changed:
            return None
        # Volatile files are kept as they are: compaction must not change what they say.
        for table, entries in base.files.items():
            writer.files.setdefault(table, []).extend(e for e in entries if not e.final)
        return writer.commit(state=dict(base.state), info={"compacted_from": base.version})


def _groups(manifest: Manifest) -> Iterator[tuple[str, list[FileEntry]]]:
    for table, entries in sorted(manifest.files.items()):
        by_partition: dict[str | None, list[FileEntry]] = {}
        for entry in entries:
            if entry.final:
                by_partition.setdefault(entry.partition, []).append(entry)
        for _, group in sorted(by_partition.items(), key=lambda kv: kv[0] or ""):
            yield table, group


def _batches(group: list[FileEntry], target_rows: int, target_bytes: int) -> Iterator[list[FileEntry]]:
    """Files to merge together: at most `target_rows` rows and `target_bytes` of Parquet, since each batch is read
    into memory whole (a partition of the jobs table holds kilobytes of program text per row)."""
    batch: list[FileEntry] = []
    rows = size = 0
    for entry in sorted(group, key=lambda e: e.path):
        if batch and (rows + entry.rows > target_rows or size + entry.bytes > target_bytes):
            yield batch
            batch, rows, size = [], 0, 0
        batch.append(entry)
        rows += entry.rows
        size += entry.bytes
    if batch:
        yield batch


def excess_file_count(manifest: Manifest) -> int:
    """Final files beyond one per table partition: what compaction would merge, and its automatic trigger."""
    return sum(len(group) - 1 for _, group in _groups(manifest))
