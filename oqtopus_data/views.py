"""Reading an export: DuckDB connections with the bundled views, polars frames, both from the newest commit."""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as pads

from . import schema as S
from .dataset import Dataset
from .errors import StoreError
from .manifest import Manifest

_REPO_SQL = Path(__file__).resolve().parent.parent / "sql" / "views.sql"


class DatasetWarning(UserWarning):
    """The export was read from an older commit than its newest manifest (which is unreadable); says why."""


def views_sql_text() -> str:
    """The template of sql/views.sql, from the installed package (or the source tree in a checkout)."""
    packaged = resources.files("oqtopus_data").joinpath("sql/views.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _REPO_SQL.read_text(encoding="utf-8")


def render_views(dataset: Dataset, manifest: Manifest | None = None) -> str:
    """sql/views.sql with each `{{table}}` replaced by a scan of that table's committed files."""
    manifest = manifest if manifest is not None else dataset.latest()
    sql = views_sql_text()
    for name in S.TABLES:
        files = dataset.uris(name, manifest) if manifest else []
        sql = sql.replace("{{" + name + "}}", _relation(name, files))
    return sql


def _render_registered(names: dict[str, str]) -> str:
    """sql/views.sql over relations registered on the connection (table -> registered name)."""
    sql = views_sql_text()
    for table, registered in names.items():
        cols = ", ".join(_ident(c.name) for c in S.TABLES[table].columns)
        sql = sql.replace("{{" + table + "}}", f"(SELECT {cols} FROM {_ident(registered)})")
    return sql


def _relation(table: str, files: list[str]) -> str:
    from .ddl import duckdb_type  # ddl reads views.sql through this module: import at call time

    spec = S.TABLES[table]
    typed = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {_ident(c.name)}" for c in spec.columns)
    if not files:
        return f"(SELECT {typed} LIMIT 0)"
    listed = ", ".join(_literal(f) for f in files)
    hive = "true" if spec.partitioned else "false"
    # The column list pins the declared order, whatever engine version wrote a file. Files written before a column
    # was added lack it: union_by_name reads them side by side, and the typed empty branch supplies (as nulls)
    # a column no file has yet.
    cols = ", ".join(_ident(c.name) for c in spec.columns)
    scan = (f"read_parquet([{listed}], hive_partitioning = {hive}, hive_types_autocast = false, "
            "union_by_name = true)")
    return f"(SELECT {cols} FROM ((SELECT {typed} LIMIT 0) UNION ALL BY NAME (SELECT * FROM {scan})))"


def connect(location: str | os.PathLike[str], database: str = ":memory:",
            **storage_options: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views of sql/views.sql over the export at `location`.

    `database` may name a DuckDB file to keep the views in (they point at the export's files by absolute path).
    For an object-store export (s3://...) the tables are pyarrow datasets registered on this connection, so the
    views live only as long as it does.
    """
    dataset = Dataset(location, **storage_options)
    manifest = _verified(dataset)
    if dataset.storage.is_local:
        con = duckdb.connect(database)
        con.execute("SET TimeZone = 'UTC'")
        con.execute(render_views(dataset, manifest))
        return con
    if database != ":memory:":
        raise StoreError(f"the views over {dataset.storage.uri('')} read through this process and cannot be kept in "
                         f"the DuckDB file {database}: connect in memory, or export to a local directory")
    tables = {name: _arrow_dataset(dataset, manifest, name) for name in S.TABLES}
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    for name, arrow in tables.items():
        con.register(f"_oqtopus_{name}", arrow)
    con.execute(_render_registered({name: f"_oqtopus_{name}" for name in tables}))
    return con


def scan(location: str | os.PathLike[str], table: str, **storage_options: str) -> pl.LazyFrame:
    """A polars LazyFrame over one table of the export (its committed files only)."""
    if table not in S.TABLES:
        raise ValueError(f"unknown table {table!r}; tables are: {', '.join(S.TABLES)}")
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


def read(location: str | os.PathLike[str], table: str, **storage_options: str) -> pl.DataFrame:
    """A polars DataFrame of one table of the export."""
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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
