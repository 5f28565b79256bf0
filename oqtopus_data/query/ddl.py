"""Register an export with a big engine: external tables for Spark SQL, Trino's Hive connector or DuckDB, and the
analysis views (oqtopus_data.query.sqltext.VIEWS) in that engine's dialect.

Every column and type comes from oqtopus_data.tables.schema through one Arrow -> engine mapping per engine, so a new
column reaches all three without a second list. The tables read the table directories, which hold exactly the newest
commit whenever no export runs (staged files have hidden names that these engines skip).
"""

from __future__ import annotations

import os

from oqtopus_data.dataset.manifest import TABLE_DIRS
from oqtopus_data.query.sqltext import (
    ENGINES,
    duckdb_scan,
    duckdb_views,
    literal,
    qualified,
    quote,
    spark_type,
    trino_type,
    view_statements,
)
from oqtopus_data.tables import schema as S

#: Trino's sync_partition_metadata takes the schema by name, so Trino always gets one: this unless one is given.
DEFAULT_TRINO_SCHEMA = "oqtopus"


def ddl_statements(location: str, engine: str, *, schema: str | None = None) -> str:
    """The SQL script that registers the export at `location` as external tables plus the analysis views.

    `location` is the export directory (made absolute) or a URL such as s3://bucket/prefix; `schema` qualifies every
    name (`db` or `catalog.db`). Each statement ends with `;` at the end of a line.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines are: {', '.join(ENGINES)}")
    if any(ord(ch) < 32 for ch in location):
        raise ValueError("the dataset location contains a control character (a newline?)")
    if engine == "spark":
        return _spark(_base_url(location, local_as_uri=True), schema)
    if engine == "trino":
        return _trino(_base_url(location, local_as_uri=True), schema or DEFAULT_TRINO_SCHEMA)
    return _duckdb(_base_url(location, local_as_uri=False), schema)


# -- locations and columns ------------------------------------------------------------------------------------

def _base_url(location: str, *, local_as_uri: bool) -> str:
    """The export's root without a trailing slash: URLs as given, local paths absolute (file:// for JVM engines)."""
    if "://" in location and not location.startswith("file://"):
        return location.rstrip("/")
    path = location[len("file://"):] if location.startswith("file://") else location
    path = os.path.abspath(os.path.expanduser(path)).rstrip("/")
    # Not Path.as_uri(): Hadoop's Path takes the URI text verbatim, so percent-escapes would stay in the name.
    return "file://" + path if local_as_uri else path


def _table_url(base: str, table: str) -> str:
    return f"{base}/{TABLE_DIRS[table]}"


def _ordered(spec: S.Table) -> list[S.Column]:
    """Columns with the partition column last (Trino requires it; Spark moves it there anyway)."""
    cols = [c for c in spec.columns if not (spec.partitioned and c.name == S.PARTITION_COLUMN)]
    return cols + [c for c in spec.columns if spec.partitioned and c.name == S.PARTITION_COLUMN]


def _header(engine: str, base: str, notes: list[str]) -> list[str]:
    """The script's first block: what it registers, then the engine's caveats, as SQL comments."""
    lines = [f"-- oqtopus-data schema version {S.SCHEMA_VERSION}: {engine} tables over {base}",
             "-- Columns are documented in docs/schema.md. Timestamps are UTC, microseconds."]
    return ["\n".join(lines + [f"-- {note}" for note in notes])]


# -- Spark SQL ------------------------------------------------------------------------------------------------------

def _spark(base: str, schema: str | None) -> str:
    def name(table: str) -> str:
        return qualified("spark", schema, table)

    out = _header("Spark SQL", base, [
        "Run MSCK REPAIR TABLE again after each export: a new month becomes a partition.",
        "outcome is DECIMAL(20,0): how Spark reads the files' unsigned 64-bit integers.",
    ])
    if schema:
        out.append(f"CREATE SCHEMA IF NOT EXISTS {qualified('spark', schema, None)};")
    for spec in S.TABLES.values():
        cols = ",\n".join(f"    {quote('spark', c.name)} {spark_type(c.type)} COMMENT {literal('spark', c.description)}"
                          for c in _ordered(spec))
        partition = f"\nPARTITIONED BY ({quote('spark', S.PARTITION_COLUMN)})" if spec.partitioned else ""
        out.append(f"CREATE TABLE IF NOT EXISTS {name(spec.name)} (\n{cols}\n)\nUSING parquet{partition}\n"
                   f"LOCATION {literal('spark', _table_url(base, spec.name))}\n"
                   f"COMMENT {literal('spark', spec.grain)};")
    out += [f"MSCK REPAIR TABLE {name(spec.name)} SYNC PARTITIONS;" for spec in S.TABLES.values() if spec.partitioned]
    out += view_statements("spark", schema)
    return "\n\n".join(out) + "\n"


# -- Trino (Hive connector) -----------------------------------------------------------------------------------------

def _trino(base: str, schema: str) -> str:
    def name(table: str) -> str:
        return qualified("trino", schema, table)

    *catalog, schema_name = schema.split(".")
    procedure = ".".join([*(quote("trino", c) for c in catalog), "system", "sync_partition_metadata"])
    out = _header("Trino (Hive connector)", base, [
        "The catalog needs hive.timestamp-precision=MICROSECONDS: timestamp(6) columns are refused otherwise.",
        "On HDFS or a local file system every table directory must exist: mkdir the ones an export has not",
        "written yet (errors/, sse_log_index/, and qubit_calibrations/ and coupling_calibrations/ when no QPU was",
        "calibrated) first. Call sync_partition_metadata again after each export.",
        "The medians and p90s of the calibration and usage views are approx_percentile's: close, not exact.",
        "counts.outcome is bigint: Trino reads unsigned 64-bit Parquet integers bit for bit, so values of 2^63",
        "and more appear as value - 2^64 (bitstring is exact; count_probabilities.outcome gives the value back).",
    ])
    out.append(f"CREATE SCHEMA IF NOT EXISTS {qualified('trino', schema, None)};")
    for spec in S.TABLES.values():
        cols = ",\n".join(f"    {quote('trino', c.name)} {trino_type(c.type)} COMMENT {literal('trino', c.description)}"
                          for c in _ordered(spec))
        props = [f"external_location = {literal('trino', _table_url(base, spec.name))}", "format = 'PARQUET'"]
        if spec.partitioned:
            props.append(f"partitioned_by = ARRAY[{literal('trino', S.PARTITION_COLUMN)}]")
        out.append(f"CREATE TABLE IF NOT EXISTS {name(spec.name)} (\n{cols}\n)\n"
                   f"COMMENT {literal('trino', spec.grain)}\nWITH (\n    " + ",\n    ".join(props) + "\n);")
    out += [f"CALL {procedure}(schema_name => {literal('trino', schema_name)}, "
            f"table_name => {literal('trino', spec.name)}, mode => 'FULL');"
            for spec in S.TABLES.values() if spec.partitioned]
    out += view_statements("trino", schema)
    return "\n\n".join(out) + "\n"


# -- DuckDB ---------------------------------------------------------------------------------------------------------

def _duckdb(base: str, schema: str | None) -> str:
    out = _header("DuckDB", base, [
        "The views list the directories; oqtopus_data.connect() reads the newest commit's manifest instead.",
    ])
    out.append("SET TimeZone = 'UTC';")
    if schema:
        target = qualified("duckdb", schema, None)
        # Views bind their table names in their own schema, so the views apply unchanged after USE.
        out += [f"CREATE SCHEMA IF NOT EXISTS {target};", f"USE {target};"]
    globs = {table: duckdb_scan(table, _table_url(base, table) + "/**/*.parquet") for table in S.TABLES}
    out.append(duckdb_views(globs).strip())
    return "\n\n".join(out) + "\n"
