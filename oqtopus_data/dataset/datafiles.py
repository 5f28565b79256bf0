"""The data files a commit names: where each one is read now, and its rows with the declared schema."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oqtopus_data.dataset.manifest import REBUILD, FileEntry, Manifest, MissingFilesError
from oqtopus_data.dataset.storage import Storage
from oqtopus_data.errors import StoreError
from oqtopus_data.tables import schema as S


def where(storage: Storage, entry: FileEntry, manifest: Manifest | None) -> str:
    """The path to read `entry` at: its final name, or its staged one while its commit's publish is unfinished."""
    if manifest is None:
        return entry.path
    if entry.path in manifest.located:
        return manifest.located[entry.path]
    staged = manifest.publish.get(entry.path)
    if staged and not storage.exists(entry.path) and storage.exists(staged):
        return staged
    return entry.path


def read_files(storage: Storage, table: str, entries: Iterable[FileEntry],
               manifest: Manifest | None = None) -> pa.Table:
    """Rows of `table` from these files of `manifest` (whole, with the declared schema; empty for no files)."""
    parts = [_read_entry(storage, e, manifest) for e in entries]
    if not parts:
        return S.empty_table(table)
    return pa.concat_tables(parts)


def iter_files(storage: Storage, table: str, entries: Iterable[FileEntry],
               manifest: Manifest | None = None) -> Iterator[pa.Table]:
    """Rows of `table` file by file (declared schema): one file in memory at a time, as compaction merges them."""
    for entry in entries:
        yield _read_entry(storage, entry, manifest)


def column_values(storage: Storage, entries: Iterable[FileEntry], column: str,
                  manifest: Manifest | None = None) -> set:
    """The distinct values of one column in these files, reading only that column (e.g. the job ids a run must
    not write again: a fraction of the bytes of whole rows)."""
    values: set = set()
    for entry in entries:
        path = where(storage, entry, manifest)
        try:
            data = pq.read_table(storage.arrow_path(path), filesystem=storage.arrow_filesystem(), columns=[column])
        except FileNotFoundError:
            raise MissingFilesError(storage.uri(""), manifest.version if manifest else None, [entry],
                                    f"restore it from where the dataset came from, {REBUILD}") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{storage.uri(path)} is not a readable {entry.table} file ({exc}); restore it "
                             f"from where the dataset came from, {REBUILD}") from None
        values.update(data[column].unique().to_pylist())
    return values


def by_partition(table: str, data: pa.Table) -> Iterator[tuple[str | None, pa.Table]]:
    """`data` of `table` (declared schema) as the rows of one data file each: (month, its rows without the partition
    column) per partition of a partitioned table, one at a time; (None, data) for the others."""
    if not S.TABLES[table].partitioned:
        yield None, data
        return
    months = data[S.PARTITION_COLUMN]
    unique = sorted(pc.unique(months).to_pylist())
    for month in unique:
        # One month (every compaction, most flushes): no filtered copy of the whole table.
        part = data if len(unique) == 1 else data.filter(pc.equal(months, month))
        yield month, part.drop_columns([S.PARTITION_COLUMN])


def _read_entry(storage: Storage, entry: FileEntry, manifest: Manifest | None) -> pa.Table:
    spec = S.TABLES[entry.table]
    path = where(storage, entry, manifest)
    try:
        data = pq.read_table(pa.BufferReader(storage.read_bytes(path)), schema=spec.file_schema)
        if spec.partitioned:
            month = pa.array([entry.partition or S.UNKNOWN_MONTH] * len(data), pa.string())
            data = data.append_column(S.PARTITION_COLUMN, month)
        return S.conform(entry.table, data)
    except FileNotFoundError:
        raise MissingFilesError(storage.uri(""), manifest.version if manifest else None, [entry],
                                f"restore it from where the dataset came from, {REBUILD}") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"{storage.uri(path)} is not a readable {entry.table} file ({exc}); restore it "
                         f"from where the dataset came from, {REBUILD}") from None
