"""Register an export with a big engine: external tables for Spark SQL, Trino's Hive connector or DuckDB, and the
analysis views of sql/views.sql translated to that engine's dialect.

Every column and type comes from oqtopus_data.schema through one Arrow -> engine mapping per engine, so a new column
reaches all three without a second list. The tables read the table directories, which hold exactly the newest commit
whenever no export runs (staged files have hidden names that these engines skip).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pyarrow as pa

from . import schema as S
from .manifest import TABLE_DIRS
from .views import views_sql_text

ENGINES = ("spark", "trino", "duckdb")
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


# -- Arrow -> engine types ------------------------------------------------------------------------------------------

def spark_type(t: pa.DataType) -> str:
    """Spark SQL type that reads an Arrow-written Parquet column of type `t` with the same meaning."""
    if pa.types.is_timestamp(t):
        _check_unit(t)
        # LTZ, not TIMESTAMP: that follows spark.sql.timestampType, and an NTZ column is a wall clock, not an instant.
        return "TIMESTAMP_LTZ" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_list(t):
        return f"ARRAY<{spark_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "STRUCT<" + ", ".join(f"{_backtick(f.name)}: {spark_type(f.type)}" for f in t) + ">"
    # Spark reads Parquet UINT64 exactly only as DECIMAL(20,0): BIGINT fails on dictionary pages and wraps values
    # of 2^63 and more on plain ones (tests/test_spark.py shows both).
    return _simple(t, {"string": "STRING", "int32": "INT", "int64": "BIGINT", "uint64": "DECIMAL(20,0)",
                       "double": "DOUBLE", "bool": "BOOLEAN"})


def trino_type(t: pa.DataType) -> str:
    """Trino (Hive connector) type for a Parquet column of Arrow type `t`."""
    if pa.types.is_timestamp(t):
        # Hive has no zoned timestamp: the column holds the UTC wall clock, at the catalog's timestamp precision.
        return f"timestamp({3 if _check_unit(t) == 'ms' else 6})"
    if pa.types.is_list(t):
        return f"array({trino_type(t.value_type)})"
    if pa.types.is_struct(t):
        return "row(" + ", ".join(f"{_dquote(f.name)} {trino_type(f.type)}" for f in t) + ")"
    # Trino reads Parquet UINT64 only as bigint, bit for bit: values of 2^63 and more read negative (v - 2^64).
    return _simple(t, {"string": "varchar", "int32": "integer", "int64": "bigint", "uint64": "bigint",
                       "double": "double", "bool": "boolean"})


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB type of an Arrow type (what DuckDB reads from the Parquet files)."""
    if pa.types.is_timestamp(t):
        _check_unit(t)
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{_dquote(f.name)} {duckdb_type(f.type)}" for f in t) + ")"
    return _simple(t, {"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "uint64": "UBIGINT",
                       "double": "DOUBLE", "bool": "BOOLEAN"})


TYPE_MAPPERS: dict[str, Callable[[pa.DataType], str]] = {"spark": spark_type, "trino": trino_type,
                                                          "duckdb": duckdb_type}


def _simple(t: pa.DataType, names: dict[str, str]) -> str:
    try:
        return names[str(t)]
    except KeyError:
        raise ValueError(f"no engine type is declared for the Arrow type {t}; add it to oqtopus_data.ddl") from None


def _check_unit(t: pa.TimestampType) -> str:
    if t.unit not in ("ms", "us"):
        raise ValueError(f"timestamps are declared in ms or us (Spark and Trino read those exactly), not {t.unit}")
    return str(t.unit)


# -- names, literals, locations -------------------------------------------------------------------------------------

def _backtick(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _dquote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _spark_literal(text: str) -> str:
    # Spark SQL processes backslash escapes in string literals (spark.sql.parser.escapedStringLiterals=false).
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Quoting(dict[str, str]):
    """`q[name]` in the view templates: the name quoted for the engine."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        super().__init__()
        self.quote = quote

    def __missing__(self, name: str) -> str:
        return self.quote(name)


def _qualified(schema: str | None, name: str | None, quote: Callable[[str], str]) -> str:
    """`schema.name` quoted part by part; `schema` may itself be dotted (`catalog.db`)."""
    parts = [*(schema.split(".") if schema else []), *([name] if name else [])]
    return ".".join(quote(p) for p in parts)


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
        return _qualified(schema, table, _backtick)

    out = _header("Spark SQL", base, [
        "Run MSCK REPAIR TABLE again after each export: a new month becomes a partition.",
        "outcome is DECIMAL(20,0): how Spark reads the files' unsigned 64-bit integers.",
    ])
    if schema:
        out.append(f"CREATE SCHEMA IF NOT EXISTS {_qualified(schema, None, _backtick)};")
    for spec in S.TABLES.values():
        cols = ",\n".join(f"    {_backtick(c.name)} {spark_type(c.type)} COMMENT {_spark_literal(c.description)}"
                          for c in _ordered(spec))
        partition = f"\nPARTITIONED BY ({_backtick(S.PARTITION_COLUMN)})" if spec.partitioned else ""
        out.append(f"CREATE TABLE IF NOT EXISTS {name(spec.name)} (\n{cols}\n)\nUSING parquet{partition}\n"
                   f"LOCATION {_spark_literal(_table_url(base, spec.name))}\n"
                   f"COMMENT {_spark_literal(spec.grain)};")
    out += [f"MSCK REPAIR TABLE {name(spec.name)} SYNC PARTITIONS;" for spec in S.TABLES.values() if spec.partitioned]

    def seconds(col: str) -> str:
        # Epoch seconds as DuckDB's epoch() and Trino's to_unixtime() compute them (the milliseconds, then the rest
        # of the microseconds), so the three engines give the same doubles to the bit.
        col = _backtick(col)
        return f"(unix_millis({col}) / 1000D + (unix_micros({col}) % 1000) / 1000000D)"

    q = _Quoting(_backtick)
    out.append(_JOB_TIMINGS.format(
        view=name("job_timings"), jobs=name("jobs"), q=q,
        queue=f"{seconds('running_at')} - {seconds('submitted_at')}",
        run=f"{seconds('ended_at')} - {seconds('running_at')}",
        total=f"{seconds('ended_at')} - {seconds('submitted_at')}"))
    # The UTC day from the instant itself, whatever spark.sql.session.timeZone says (to_date would follow it).
    out.append(_DEVICE_DAILY.format(
        view=name("device_daily"), jobs=name("jobs"), q=q,
        day="date_from_unix_date(CAST(unix_micros(`submitted_at`) DIV 86400000000 AS INT))"))
    out.append(_COUNT_PROBABILITIES.format(
        view=name("count_probabilities"), counts=name("counts"), jobs=name("jobs"), q=q,
        outcome="c.`outcome`", probability="c.`count` / j.`total_count`"))
    return "\n\n".join(out) + "\n"


# -- Trino (Hive connector) -----------------------------------------------------------------------------------------

def _trino(base: str, schema: str) -> str:
    def name(table: str) -> str:
        return _qualified(schema, table, _dquote)

    *catalog, schema_name = schema.split(".")
    procedure = ".".join([*(_dquote(c) for c in catalog), "system", "sync_partition_metadata"])
    out = _header("Trino (Hive connector)", base, [
        "The catalog needs hive.timestamp-precision=MICROSECONDS: timestamp(6) columns are refused otherwise.",
        "On HDFS or a local file system every table directory must exist: mkdir the ones an export has not",
        "written yet (errors/, sse_log_index/) first. Call sync_partition_metadata again after each export.",
        "counts.outcome is bigint: Trino reads unsigned 64-bit Parquet integers bit for bit, so values of 2^63",
        "and more appear as value - 2^64 (bitstring is exact; count_probabilities.outcome gives the value back).",
    ])
    out.append(f"CREATE SCHEMA IF NOT EXISTS {_qualified(schema, None, _dquote)};")
    for spec in S.TABLES.values():
        cols = ",\n".join(f"    {_dquote(c.name)} {trino_type(c.type)} COMMENT {_sql_literal(c.description)}"
                          for c in _ordered(spec))
        props = [f"external_location = {_sql_literal(_table_url(base, spec.name))}", "format = 'PARQUET'"]
        if spec.partitioned:
            props.append(f"partitioned_by = ARRAY[{_sql_literal(S.PARTITION_COLUMN)}]")
        out.append(f"CREATE TABLE IF NOT EXISTS {name(spec.name)} (\n{cols}\n)\n"
                   f"COMMENT {_sql_literal(spec.grain)}\nWITH (\n    " + ",\n    ".join(props) + "\n);")
    out += [f"CALL {procedure}(schema_name => {_sql_literal(schema_name)}, table_name => {_sql_literal(spec.name)}, "
            "mode => 'FULL');" for spec in S.TABLES.values() if spec.partitioned]

    def seconds(col: str) -> str:
        # Hive timestamps hold the UTC wall clock: name the zone, or Trino would apply the session's.
        return f"to_unixtime(with_timezone({_dquote(col)}, 'UTC'))"

    q = _Quoting(_dquote)
    out.append(_JOB_TIMINGS.format(
        view=name("job_timings"), jobs=name("jobs"), q=q,
        queue=f"{seconds('running_at')} - {seconds('submitted_at')}",
        run=f"{seconds('ended_at')} - {seconds('running_at')}",
        total=f"{seconds('ended_at')} - {seconds('submitted_at')}"))
    out.append(_DEVICE_DAILY.format(view=name("device_daily"), jobs=name("jobs"), q=q,
                                    day='CAST("submitted_at" AS date)'))
    # Trino divides integers as integers: make the count a double first.
    out.append(_COUNT_PROBABILITIES.format(
        view=name("count_probabilities"), counts=name("counts"), jobs=name("jobs"), q=q,
        outcome=_trino_unsigned('c."outcome"', _column_type("counts", "outcome")),
        probability='CAST(c."count" AS double) / j."total_count"'))
    return "\n\n".join(out) + "\n"


def _trino_unsigned(expr: str, t: pa.DataType) -> str:
    """An unsigned 64-bit column read as bigint, back to its value (as Spark shows it: decimal(20,0))."""
    if not pa.types.is_uint64(t):
        return expr
    return (f"CAST(CAST({expr} AS decimal(20,0)) + IF({expr} < 0, DECIMAL '18446744073709551616', DECIMAL '0')"
            " AS decimal(20,0))")


def _column_type(table: str, column: str) -> pa.DataType:
    return S.TABLES[table].schema.field(column).type


# -- DuckDB ---------------------------------------------------------------------------------------------------------

def _duckdb(base: str, schema: str | None) -> str:
    out = _header("DuckDB", base, [
        "The views list the directories; oqtopus_data.connect() reads the newest commit's manifest instead.",
    ])
    out.append("SET TimeZone = 'UTC';")
    if schema:
        target = _qualified(schema, None, _dquote)
        # Views bind their table names in their own schema, so sql/views.sql applies unchanged after USE.
        out += [f"CREATE SCHEMA IF NOT EXISTS {target};", f"USE {target};"]
    sql = _strip_leading_comments(views_sql_text())
    for table in S.TABLES:
        sql = sql.replace("{{" + table + "}}", _duckdb_relation(table, _table_url(base, table)))
    out.append(sql.strip())
    return "\n\n".join(out) + "\n"


def _duckdb_relation(table: str, url: str) -> str:
    """The table's files by glob, with the declared columns even when the directory holds none yet."""
    spec = S.TABLES[table]
    options = ["union_by_name = true", "allow_empty = true"]
    if spec.partitioned:
        options += ["hive_partitioning = true", f"hive_types = {{{_sql_literal(S.PARTITION_COLUMN)}: 'VARCHAR'}}",
                    "hive_types_autocast = false"]
    else:
        options.append("hive_partitioning = false")
    scan = f"read_parquet({_sql_literal(url + '/**/*.parquet')}, {', '.join(options)})"
    typed = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {_dquote(c.name)}" for c in spec.columns)
    cols = ", ".join(_dquote(c.name) for c in spec.columns)
    # An empty glob yields one dummy column: the typed empty branch supplies every declared column either way.
    return (f"(\n  SELECT {cols}\n  FROM (SELECT * FROM {scan}\n"
            f"        UNION ALL BY NAME\n        SELECT {typed} WHERE false))")


def _strip_leading_comments(sql: str) -> str:
    lines = sql.splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


# -- the analysis views of sql/views.sql, in Spark and Trino syntax ({q} quotes a name) ------------------------------

_JOB_TIMINGS = """-- Queue, run and total time per job, in seconds. Queue = submitted -> running; run = running -> ended
CREATE OR REPLACE VIEW {view} AS
SELECT
    {q[job_id]}, {q[name]}, {q[job_type]}, {q[status]}, {q[device_id]}, {q[shots]},
    {q[submitted_at]}, {q[running_at]}, {q[ended_at]}, {q[execution_time]},
    {queue} AS {q[queue_seconds]},
    {run} AS {q[run_seconds]},
    {total} AS {q[total_seconds]},
    {q[submitted_month]}
FROM {jobs};"""

_DEVICE_DAILY = """-- Jobs per device, per UTC day of submission, per status.
CREATE OR REPLACE VIEW {view} AS
SELECT
    {day} AS {q[day]},
    {q[device_id]},
    {q[status]},
    count(*) AS {q[jobs]},
    sum({q[shots]}) AS {q[shots]},
    sum({q[execution_time]}) AS {q[execution_seconds]}
FROM {jobs}
WHERE {q[submitted_at]} IS NOT NULL
GROUP BY 1, 2, 3;"""

_COUNT_PROBABILITIES = """-- Each count as a probability: count / the job's total count (shots that gave a result)
CREATE OR REPLACE VIEW {view} AS
SELECT
    c.{q[job_id]}, j.{q[name]}, j.{q[device_id]}, j.{q[submitted_at]},
    c.{q[bitstring]}, {outcome} AS {q[outcome]}, c.{q[n_bits]}, c.{q[count]}, j.{q[shots]},
    {probability} AS {q[probability]},
    c.{q[submitted_month]}
FROM {counts} AS c
JOIN {jobs} AS j ON c.{q[job_id]} = j.{q[job_id]}
WHERE j.{q[total_count]} > 0;"""
