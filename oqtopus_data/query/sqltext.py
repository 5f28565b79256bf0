"""Every piece of SQL text the package writes, in one place: quoting, Arrow -> engine types, DuckDB scans of the
files, and the analysis views, declared once (VIEWS) and rendered for DuckDB, Spark SQL and Trino.

`connect()` (views.py), `ddl_statements()` (ddl.py) and sql/views.sql all render VIEWS, so a view declared there
reaches every engine. sql/views.sql is generated: `python -m oqtopus_data.query.sqltext > sql/views.sql`.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from oqtopus_data.query.viewtext import DEVICE_CALIBRATIONS, JOB_CALIBRATION, JOB_COSTS, JOB_QUBITS, usage_select
from oqtopus_data.tables import schema as S

ENGINES = ("spark", "trino", "duckdb")


# -- names and literals ---------------------------------------------------------------------------------------------

def quote(engine: str, name: str) -> str:
    """`name` as an identifier of `engine`."""
    if engine == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def literal(engine: str, text: str) -> str:
    """`text` as a string literal of `engine`."""
    if engine == "spark":
        # Spark SQL processes backslash escapes in string literals (spark.sql.parser.escapedStringLiterals=false).
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def qualified(engine: str, schema: str | None, name: str | None) -> str:
    """`schema.name` quoted part by part; `schema` may itself be dotted (`catalog.db`)."""
    parts = [*(schema.split(".") if schema else []), *([name] if name else [])]
    return ".".join(quote(engine, p) for p in parts)


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
        return "STRUCT<" + ", ".join(f"{quote('spark', f.name)}: {spark_type(f.type)}" for f in t) + ">"
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
        return "row(" + ", ".join(f"{quote('trino', f.name)} {trino_type(f.type)}" for f in t) + ")"
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
        return "STRUCT(" + ", ".join(f"{quote('duckdb', f.name)} {duckdb_type(f.type)}" for f in t) + ")"
    return _simple(t, {"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "uint64": "UBIGINT",
                       "double": "DOUBLE", "bool": "BOOLEAN"})


TYPE_MAPPERS: dict[str, Callable[[pa.DataType], str]] = {"spark": spark_type, "trino": trino_type,
                                                          "duckdb": duckdb_type}


def _simple(t: pa.DataType, names: dict[str, str]) -> str:
    try:
        return names[str(t)]
    except KeyError:
        raise ValueError(f"no engine type is declared for the Arrow type {t}; add it to "
                         "oqtopus_data.query.sqltext") from None


def _check_unit(t: pa.TimestampType) -> str:
    if t.unit not in ("ms", "us"):
        raise ValueError(f"timestamps are declared in ms or us (Spark and Trino read those exactly), not {t.unit}")
    return str(t.unit)


# -- the analysis views ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    """One analysis view, declared once for every engine.

    `select` is a SELECT in standard SQL: "double-quoted" identifiers and 'single-quoted' strings (each engine gets
    its own quoting), `{table}` for a table of the schema or a view declared before this one, and `{macro(expr)}`
    for what the engines spell differently (MACROS). `comment` says in a line what a row is.
    """

    name: str
    comment: str
    select: str


def _spark_seconds(expr: str) -> str:
    # Epoch seconds as DuckDB's epoch() and Trino's to_unixtime() compute them (the milliseconds, then the rest of
    # the microseconds), so the three engines give the same doubles to the bit.
    return f"(unix_millis({expr}) / 1000D + (unix_micros({expr}) % 1000) / 1000000D)"


def _trino_uint64(expr: str) -> str:
    return (f"CAST(CAST({expr} AS decimal(20,0)) + IF({expr} < 0, DECIMAL '18446744073709551616', DECIMAL '0')"
            " AS decimal(20,0))")


#: What the engines spell differently, by name: engine -> the SQL of the macro applied to an expression.
MACROS: dict[str, dict[str, Callable[[str], str]]] = {
    # A timestamp as seconds since the epoch (a double).
    "epoch_seconds": {
        "duckdb": lambda e: f"epoch({e})",
        "spark": _spark_seconds,
        # Hive timestamps hold the UTC wall clock: name the zone, or Trino would apply the session's.
        "trino": lambda e: f"to_unixtime(with_timezone({e}, 'UTC'))",
    },
    # The UTC date of a timestamp, whatever the session's time zone.
    "utc_date": {
        "duckdb": lambda e: f"CAST({e} AT TIME ZONE 'UTC' AS DATE)",
        # From the instant itself: to_date would follow spark.sql.session.timeZone.
        "spark": lambda e: f"date_from_unix_date(CAST(unix_micros({e}) DIV 86400000000 AS INT))",
        "trino": lambda e: f"CAST({e} AS date)",
    },
    # A number as a double (Trino divides integers as integers).
    "double": {
        "duckdb": lambda e: f"CAST({e} AS DOUBLE)",
        "spark": lambda e: f"CAST({e} AS DOUBLE)",
        "trino": lambda e: f"CAST({e} AS double)",
    },
    # The value of an unsigned 64-bit column. Trino reads one only as bigint, bit for bit: values of 2^63 and more
    # come back from value - 2^64 as decimal(20,0), what Spark reads.
    "uint64": {"duckdb": lambda e: e, "spark": lambda e: e, "trino": _trino_uint64},
    # The median and the 90th percentile, interpolated (Trino has only approx_percentile: close, not exact).
    "median": {"duckdb": lambda e: f"median({e})", "spark": lambda e: f"median({e})",
               "trino": lambda e: f"approx_percentile({e}, 0.5)"},
    "p90": {"duckdb": lambda e: f"quantile_cont({e}, 0.9)", "spark": lambda e: f"percentile({e}, 0.9)",
            "trino": lambda e: f"approx_percentile({e}, 0.9)"},
    # The physical qubits of a job: the values of qubit_mapping in virtual_physical_mapping (JSON text), as an array
    # of integers; null when the text is not such a mapping.
    "mapped_qubits": {
        "duckdb": lambda e: f"CASE WHEN json_valid({e}) THEN map_values(TRY_CAST(json_extract({e}, "
                            "'$.qubit_mapping') AS MAP(VARCHAR, BIGINT))) END",
        "spark": lambda e: f"map_values(from_json({e}, 'qubit_mapping MAP<STRING, BIGINT>').qubit_mapping)",
        "trino": lambda e: f"map_values(TRY(CAST(json_extract({e}, '$.qubit_mapping') AS map(varchar, bigint))))",
    },
    # qubit_mapping of virtual_physical_mapping (JSON text) as a map of virtual qubit (text) -> physical qubit;
    # null when the text is not such a mapping.
    "qubit_map": {
        "duckdb": lambda e: f"CASE WHEN json_valid({e}) THEN TRY_CAST(json_extract({e}, '$.qubit_mapping') AS "
                            "MAP(VARCHAR, BIGINT)) END",
        "spark": lambda e: f"from_json({e}, 'qubit_mapping MAP<STRING, BIGINT>').qubit_mapping",
        "trino": lambda e: f"TRY(CAST(json_extract({e}, '$.qubit_mapping') AS map(varchar, bigint)))",
    },
    # A FROM clause's last item: one row per entry of such a map, as u.virtual_qubit and u.physical_qubit.
    "unnest_mapping": {
        "duckdb": lambda e: f'CROSS JOIN LATERAL (SELECT unnest(map_keys({e})) AS "virtual_qubit", '
                            f'unnest(map_values({e})) AS "physical_qubit") AS "u"',
        "spark": lambda e: f"LATERAL VIEW explode({e}) `u` AS `virtual_qubit`, `physical_qubit`",
        "trino": lambda e: f'CROSS JOIN UNNEST({e}) AS "u"("virtual_qubit", "physical_qubit")',
    },
    # Text of digits as a 64-bit integer; null when it is not one.
    "bigint": {
        "duckdb": lambda e: f"TRY_CAST({e} AS BIGINT)",
        "spark": lambda e: f"TRY_CAST({e} AS BIGINT)",
        "trino": lambda e: f"TRY_CAST({e} AS bigint)",
    },
    # A FROM clause's last item: one row per element of the array, as u.qubit (a lateral join).
    "unnest_qubit": {
        "duckdb": lambda e: f'CROSS JOIN unnest({e}) AS "u"("qubit")',
        "spark": lambda e: f"LATERAL VIEW explode({e}) `u` AS `qubit`",
        "trino": lambda e: f'CROSS JOIN UNNEST({e}) AS "u"("qubit")',
    },
}

#: The analysis views, in order (a view may read the ones before it). Add a view here: DuckDB (connect, the DDL,
#: sql/views.sql), Spark and Trino all get it.
VIEWS: tuple[View, ...] = (
    View("job_timings", "Queue, run and total time per job, in seconds. Queue = submitted -> running; "
         "run = running -> ended.", """
SELECT
    "job_id", "name", "job_type", "status", "device_id", "shots",
    "submitted_at", "running_at", "ended_at", "execution_time",
    {epoch_seconds("running_at")} - {epoch_seconds("submitted_at")} AS "queue_seconds",
    {epoch_seconds("ended_at")} - {epoch_seconds("running_at")} AS "run_seconds",
    {epoch_seconds("ended_at")} - {epoch_seconds("submitted_at")} AS "total_seconds",
    "submitted_month"
FROM {jobs}"""),
    View("device_daily", "Jobs per device, per UTC day of submission, per status.", """
SELECT
    {utc_date("submitted_at")} AS "day",
    "device_id",
    "status",
    count(*) AS "jobs",
    sum("shots") AS "shots",
    sum("execution_time") AS "execution_seconds"
FROM {jobs}
WHERE "submitted_at" IS NOT NULL
GROUP BY 1, 2, 3"""),
    View("count_probabilities", "Each count as a probability: count / the job's total count (the shots that "
         "produced a result).", """
SELECT
    c."job_id", j."name", j."device_id", j."submitted_at",
    c."bitstring", {uint64(c."outcome")} AS "outcome", c."n_bits", c."count", j."shots",
    {double(c."count")} / j."total_count" AS "probability",
    c."submitted_month"
FROM {counts} AS c
JOIN {jobs} AS j ON c."job_id" = j."job_id"
WHERE j."total_count" > 0"""),
    View("device_calibrations", "One row per device and calibration: qubits and couplings calibrated, medians of "
         "T1, T2, 1q and 2q fidelity and readout error.", DEVICE_CALIBRATIONS),
    View("job_calibration", "Each job with the calibration of its device in force when it ran (else when it was "
         "submitted) and the calibration of the qubits it used (virtual_physical_mapping) and of the couplings "
         "between them; nulls where none is known.", JOB_CALIBRATION),
    View("job_qubits", "One row per virtual qubit a job used (virtual_physical_mapping) with its physical qubit "
         "and that qubit's T1, T2, readout error and 1q fidelity in the calibration in force when the job ran (the "
         "rule of job_calibration); nulls where none is known.", JOB_QUBITS),
    View("usage_monthly", "Usage per submission month, device and job type: jobs, shots, execution seconds, failed "
         "and cancelled (wasted) jobs and seconds, median and p90 queue seconds.",
         usage_select(("month", "device_id", "job_type"))),
    View("usage_by_device", "Usage per device over the whole export: the measures of usage_monthly.",
         usage_select(("device_id",))),
)

#: With a price table (connect(..., prices=...), DuckDB only): the cost of each job, and the usage views again with
#: the estimated cost, its currency and the jobs no price covers.
_COMMENTS = {view.name: view.comment for view in VIEWS}
PRICED_VIEWS: tuple[View, ...] = (
    View("job_costs", "The estimated cost of each job a price covers.", JOB_COSTS),
    View("usage_monthly", _COMMENTS["usage_monthly"] + " With the estimated cost.",
         usage_select(("month", "device_id", "job_type"), priced=True)),
    View("usage_by_device", _COMMENTS["usage_by_device"] + " With the estimated cost.",
         usage_select(("device_id",), priced=True)),
)

_QUOTED = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_PLACEHOLDER = re.compile(r"\{(\w+)(?:\((.*?)\))?\}")


def view_statements(engine: str, schema: str | None = None) -> list[str]:
    """`CREATE OR REPLACE VIEW` of each of VIEWS in `engine`'s SQL (a comment line first), every name in `schema`."""
    return _statements(VIEWS, engine, schema, set(S.TABLES))


def priced_view_statements() -> list[str]:
    """The DuckDB statements of PRICED_VIEWS, which read the views and a `prices` table (oqtopus_data.query.prices)."""
    return _statements(PRICED_VIEWS, "duckdb", None, {*S.TABLES, *(v.name for v in VIEWS), "prices"})


def _statements(views: tuple[View, ...], engine: str, schema: str | None, known: set[str]) -> list[str]:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines are: {', '.join(ENGINES)}")
    out = []
    for view in views:
        select = _render(view, engine, lambda name: qualified(engine, schema, name), known)
        out.append(f"-- {view.comment}\nCREATE OR REPLACE VIEW {qualified(engine, schema, view.name)} AS\n"
                   f"{select.strip()};")
        known.add(view.name)
    return out


def _render(view: View, engine: str, relation: Callable[[str], str], known: set[str]) -> str:
    def requote(match: re.Match[str]) -> str:
        token = match.group()
        if token.startswith('"'):
            return quote(engine, token[1:-1].replace('""', '"'))
        if token.startswith("'"):
            return literal(engine, token[1:-1].replace("''", "'"))
        return token  # a comment

    def expand(match: re.Match[str]) -> str:
        name, argument = match.groups()
        if argument is not None:
            if name not in MACROS:
                raise ValueError(f"view {view.name!r} uses {{{name}(...)}}, which is not one of MACROS "
                                 f"({', '.join(MACROS)})")
            return MACROS[name][engine](argument)
        if name not in known:
            raise ValueError(f"view {view.name!r} reads {{{name}}}, which is neither a table nor a view declared "
                             "before it")
        return relation(name)

    return _PLACEHOLDER.sub(expand, _QUOTED.sub(requote, view.select))


# -- DuckDB ---------------------------------------------------------------------------------------------------------

def duckdb_views(relations: dict[str, str], helpers: list[str] | None = None) -> str:
    """The DuckDB script of every view: `helpers` (statements the relations read), one view per table over
    `relations[table]` (SQL of a relation), then VIEWS."""
    base = [*(helpers or []),
            *(f"CREATE OR REPLACE VIEW {quote('duckdb', t)} AS SELECT * FROM {relations[t]};" for t in S.TABLES)]
    return "\n".join(base) + "\n\n" + "\n\n".join(view_statements("duckdb")) + "\n"


def render(select: str, engine: str = "duckdb") -> str:
    """A SELECT written as the views are (quoting, `{relation}`, macros) in `engine`'s SQL, over the tables and views
    of the connection (e.g. usage_select with a WHERE, run by `oqtopus_data.query.usage`)."""
    known = {*S.TABLES, *(v.name for v in VIEWS), *(v.name for v in PRICED_VIEWS), "prices"}
    return _render(View("query", "", select), engine, lambda name: quote(engine, name), known)


def duckdb_scan(table: str, files: list[str] | str) -> str:
    """A DuckDB relation of `table`'s declared columns, in order, over Parquet `files`: a list of files (none: no
    rows), or one glob, which may match nothing."""
    spec = S.TABLES[table]
    typed = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {quote('duckdb', c.name)}" for c in spec.columns)
    if not files:
        return f"(SELECT {typed} LIMIT 0)"
    options = ["union_by_name = true", f"hive_partitioning = {'true' if spec.partitioned else 'false'}"]
    if spec.partitioned:
        options.append(f"hive_types = {{{literal('duckdb', S.PARTITION_COLUMN)}: 'VARCHAR'}}")
    options.append("hive_types_autocast = false")
    if isinstance(files, str):
        source = literal("duckdb", files)
        options.append("allow_empty = true")
    else:
        source = "[" + ", ".join(literal("duckdb", f) for f in files) + "]"
    # The column list pins the declared order, whatever engine version wrote a file. Files written before a column
    # was added lack it: union_by_name reads them side by side, and the typed empty branch supplies (as nulls) a
    # column no file has yet, and every column when a glob matches nothing (its one dummy column is not selected).
    cols = ", ".join(quote("duckdb", c.name) for c in spec.columns)
    scan = f"read_parquet({source}, {', '.join(options)})"
    return f"(SELECT {cols} FROM ((SELECT {typed} LIMIT 0) UNION ALL BY NAME (SELECT * FROM {scan})))"


def duckdb_registered(table: str, registered: str) -> str:
    """A DuckDB relation of `table`'s declared columns from a relation registered on the connection."""
    cols = ", ".join(quote("duckdb", c.name) for c in S.TABLES[table].columns)
    return f"(SELECT {cols} FROM {quote('duckdb', registered)})"


#: Several exports read as one (connect([a, b, ...])): the tables whose rows belong to a job, taken from the export
#: that holds its newest row; the calibration tables (one row per key, whoever stored it) by their keys.
JOB_TABLES = ("counts", "divided_counts", "estimations", "sse_logs")
_KEYS = {"devices": ("snapshot_at", "device_id"), "qubit_calibrations": ("device_id", "calibrated_at", "qubit_id"),
         "coupling_calibrations": ("device_id", "calibrated_at", "control", "target")}


def duckdb_combined(exports: list[dict[str, str]], accounts: list[str | None]) -> tuple[list[str], dict[str, str]]:
    """Several exports as one: each row tagged with its export's `account_id` (a column after the declared ones),
    a job held by two exports of the same account once (the row exported last), its counts, estimations and logs
    from that same export; devices and calibrations once per key. `exports[i]` maps each table to a relation of
    export i (duckdb_scan, duckdb_registered). Returns the helper views to create first and the relation of every
    table, for duckdb_views."""
    def union(table: str) -> str:
        account = [literal("duckdb", a) if a is not None else "CAST(NULL AS VARCHAR)" for a in accounts]
        return " UNION ALL BY NAME ".join(
            f"(SELECT *, {account[i]} AS account_id, {i} AS _export FROM {relations[table]})"
            for i, relations in enumerate(exports))

    helpers = [
        f"CREATE OR REPLACE VIEW _oqtopus_jobs AS SELECT * FROM ({union('jobs')}) QUALIFY row_number() OVER ("
        "PARTITION BY account_id, job_id ORDER BY exported_at DESC NULLS LAST, _export DESC) = 1;"]
    relations = {"jobs": "(SELECT * EXCLUDE (_export) FROM _oqtopus_jobs)",
                 "errors": f"(SELECT * EXCLUDE (_export) FROM ({union('errors')}))"}
    for table in JOB_TABLES:
        relations[table] = (f"(SELECT t.* EXCLUDE (_export) FROM ({union(table)}) AS t SEMI JOIN _oqtopus_jobs AS j "
                            "ON j.job_id = t.job_id AND j._export = t._export)")
    for table, keys in _KEYS.items():
        by = ", ".join(quote("duckdb", k) for k in keys)
        relations[table] = (f"(SELECT * EXCLUDE (_export) FROM ({union(table)}) QUALIFY row_number() OVER ("
                            f"PARTITION BY {by} ORDER BY _export) = 1)")
    return helpers, relations


def views_file() -> str:
    """The text of sql/views.sql: the DuckDB views, each `{{table}}` where connect() puts that table's files."""
    paragraphs = [
        "oqtopus-data: DuckDB views over an export directory.",
        "GENERATED from oqtopus_data/query/sqltext.py, where the views are declared once for DuckDB, Spark and Trino: "
        "edit VIEWS there, then run `python -m oqtopus_data.query.sqltext > sql/views.sql`.",
        f"The base views {', '.join(f'`{t}`' for t in S.TABLES)} read exactly the Parquet files named by the "
        "export's newest commit manifest. Each `{{table}}` below is replaced by oqtopus_data.connect with a "
        "`read_parquet([...])` of those files (or an empty relation of the declared columns), so a reader never "
        "sees a half-written export. Columns are documented in docs/schema.md (oqtopus_data.tables.schema). Timestamps "
        "are TIMESTAMPTZ in UTC; connect() sets the session time zone to UTC.",
    ]
    header = "\n--\n".join(textwrap.fill(p, 117, initial_indent="-- ", subsequent_indent="-- ") for p in paragraphs)
    return header + "\n\n" + duckdb_views({t: "{{" + t + "}}" for t in S.TABLES})


if __name__ == "__main__":
    sys.stdout.write(views_file())
