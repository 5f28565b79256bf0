"""Reading an export: DuckDB connections with the analysis views, polars frames, both from the newest commit."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as pads

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import Manifest
from oqtopus_data.dataset.state import SyncState
from oqtopus_data.dataset.storage import Storage
from oqtopus_data.errors import StoreError
from oqtopus_data.query.prices import Prices, load_prices
from oqtopus_data.query.sqltext import (
    VIEWS,
    duckdb_combined,
    duckdb_registered,
    duckdb_scan,
    duckdb_views,
    priced_view_statements,
    quote,
)
from oqtopus_data.tables import schema as S

Location = str | os.PathLike[str] | Storage


class DatasetWarning(UserWarning):
    """The export was read from an older commit than its newest manifest (which is unreadable); says why."""


def connect(location: Location | Sequence[Location], database: str = ":memory:", *, prices: Prices | None = None,
            **storage_options: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views (oqtopus_data.query.sqltext) over the export at `location`.

    `database` may name a DuckDB file to keep the views in (they point at the export's files by absolute path).
    For an object-store export (s3://...) the tables are pyarrow datasets registered on this connection, so the
    views live only as long as it does. `prices` (a CSV file's path or a table: oqtopus_data.query.prices) adds a
    `prices` table, the `job_costs` view and the estimated `cost`, `currency` and `unpriced_jobs` of the usage
    views; without it they have no cost column at all.

    A list of locations reads several exports as one (sqltext.duckdb_combined): every table gets an `account_id`
    column, the account each export came from (null where the server did not say), and a job two exports of the
    same account hold counts once.
    """
    price_table = load_prices(prices) if prices is not None else None  # checked before anything is opened
    many = isinstance(location, list | tuple)
    locations: list[Location] = list(location) if many else [location]  # type: ignore[list-item, arg-type]
    if not locations:
        raise ValueError("connect([]): name at least one export")
    opened = []
    for where in locations:
        dataset = Dataset(where, **storage_options)
        manifest = _verified(dataset)
        if not dataset.storage.is_local and database != ":memory:":
            raise StoreError(f"the views over {dataset.storage.uri('')} read through this process and cannot be "
                             f"kept in the DuckDB file {database}: connect in memory, or export to a local directory")
        opened.append((dataset, manifest))
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    exports = []
    for i, (dataset, manifest) in enumerate(opened):
        relations = {}
        for name in S.TABLES:
            if dataset.storage.is_local:
                relations[name] = duckdb_scan(name, dataset.uris(name, manifest))
            else:
                registered = f"_oqtopus_{i}_{name}" if many else f"_oqtopus_{name}"
                con.register(registered, _arrow_dataset(dataset, manifest, name))
                relations[name] = duckdb_registered(name, registered)
        exports.append(relations)
    if many:
        helpers, relations = duckdb_combined(exports, [account_of(manifest) for _, manifest in opened])
        con.execute(duckdb_views(relations, helpers))
    else:
        con.execute(duckdb_views(exports[0]))
    if price_table is not None:
        # A table, not a registered relation: it lives in `database` with the views that read it.
        con.register("_oqtopus_prices", price_table)
        con.execute('CREATE OR REPLACE TABLE "prices" AS SELECT * FROM "_oqtopus_prices"')
        con.unregister("_oqtopus_prices")
        con.execute("\n".join(priced_view_statements()))
    return con


def account_of(manifest: Manifest) -> str | None:
    """The account an export came from, as its state recorded GET /users/me; None where the server did not say."""
    try:
        state = SyncState.from_json(manifest.state)
    except StoreError:
        return None
    return state.source.account_id if state is not None and state.source is not None else None


#: The analysis views scan() and read() accept besides the tables.
VIEW_NAMES = tuple(v.name for v in VIEWS)


def scan(location: Location | Sequence[Location], table: str, **storage_options: str) -> pl.LazyFrame:
    """A polars LazyFrame over one table or analysis view of the export (its committed files only).

    A view, or a table of several exports (a list of locations, read as `connect` reads them), is computed by
    DuckDB and handed over as one frame: filter it in SQL when it is large.
    """
    if table in VIEW_NAMES or (isinstance(location, list | tuple) and table in S.TABLES):
        with connect(location, **storage_options) as con:
            return con.sql(f"SELECT * FROM {quote('duckdb', table)}").pl().lazy()
    if table not in S.TABLES:
        raise ValueError(f"unknown table or view {table!r}; tables are: {', '.join(S.TABLES)}; views are: "
                         f"{', '.join(VIEW_NAMES)}")
    dataset = Dataset(location, **storage_options)
    manifest = _verified(dataset)
    spec = S.TABLES[table]
    if not dataset.storage.is_local:
        return pl.scan_pyarrow_dataset(_arrow_dataset(dataset, manifest, table)).select(spec.column_names)
    files = dataset.uris(table, manifest)
    if not files:
        return pl.from_arrow(S.empty_table(table)).lazy()
    # The declared file schema, with missing columns inserted as nulls: files of an older schema version read too.
    file_schema = pl.from_arrow(spec.file_schema.empty_table()).schema
    frame = pl.scan_parquet(files, hive_partitioning=spec.partitioned, schema=file_schema, missing_columns="insert",
                            hive_schema={S.PARTITION_COLUMN: pl.String} if spec.partitioned else None)
    return frame.select(spec.column_names)


def read(location: Location | Sequence[Location], table: str, **storage_options: str) -> pl.DataFrame:
    """A polars DataFrame of one table or analysis view of the export."""
    return scan(location, table, **storage_options).collect()


def _verified(dataset: Dataset) -> Manifest:
    """The newest readable commit with all its files there; a fallback to an older commit is warned about."""
    manifest = dataset.verified()
    if manifest.notes:
        warnings.warn("\n".join(manifest.notes), DatasetWarning, stacklevel=3)
    return manifest


def _arrow_dataset(dataset: Dataset, manifest: Manifest, table: str) -> pads.Dataset:
    """The committed files of `table` as one pyarrow dataset on the storage's filesystem, without listing anything.

    Each file's month and size come from its manifest entry; DuckDB and polars push column and month filters down.
    """
    storage = dataset.storage
    filesystem = storage.arrow_filesystem()
    spec = S.TABLES[table]
    fmt = pads.ParquetFileFormat()
    fragments = []
    for entry, rel in zip(manifest.entries(table), dataset.paths(table, manifest), strict=True):
        month = (pc.field(S.PARTITION_COLUMN) == (entry.partition or S.UNKNOWN_MONTH)) if spec.partitioned else None
        fragments.append(fmt.make_fragment(storage.arrow_path(rel), filesystem=filesystem,
                                           partition_expression=month, file_size=entry.bytes))
    return pads.FileSystemDataset(fragments, spec.schema, fmt, filesystem)
