"""What a user writes instead of oqtopus-data to turn a JSON-lines dump of jobs (job_info inline) into Parquet
tables with DuckDB: read_json with declared columns (auto-detection turns divided_counts into structs with one
field per bitstring, and takes minutes to sample), unnest the counts maps, COPY partitioned by month."""

from __future__ import annotations

from pathlib import Path

import duckdb

COLUMNS = """{job_id: 'VARCHAR', name: 'VARCHAR', description: 'VARCHAR', job_type: 'VARCHAR', status: 'VARCHAR',
 device_id: 'VARCHAR', shots: 'BIGINT', job_info: 'JSON', transpiler_info: 'JSON', simulator_info: 'JSON',
 mitigation_info: 'JSON', execution_time: 'DOUBLE', submitted_at: 'TIMESTAMPTZ', ready_at: 'TIMESTAMPTZ',
 running_at: 'TIMESTAMPTZ', ended_at: 'TIMESTAMPTZ'}"""

OPTIONS = "FORMAT parquet, COMPRESSION zstd, PARTITION_BY (submitted_month), OVERWRITE_OR_IGNORE"


def _json(path: str) -> str:
    return f"json_extract(job_info, '{path}')"


def _text(path: str) -> str:
    return f"json_extract_string(job_info, '{path}')"


def script(dump: Path, out: Path) -> list[str]:
    """The statements, in order."""
    counts, divided = _json("$.result.sampling.counts"), _json("$.result.sampling.divided_counts")
    return [
        "SET TimeZone = 'UTC'",
        f"CREATE TEMP TABLE raw AS SELECT *, strftime(submitted_at, '%Y-%m') AS submitted_month "
        f"FROM read_json('{dump}', format = 'newline_delimited', columns = {COLUMNS}, "
        "maximum_object_size = 268435456)",
        f"""COPY (SELECT job_id, name, description, job_type, status, device_id, shots, submitted_at, ready_at,
              running_at, ended_at, execution_time, {_text('$.message')} AS message,
              CAST(transpiler_info AS VARCHAR) AS transpiler_info, CAST(simulator_info AS VARCHAR) AS simulator_info,
              CAST(mitigation_info AS VARCHAR) AS mitigation_info,
              CAST({_json('$.input.program')} AS VARCHAR[]) AS program,
              {_text('$.input.sse_program')} AS sse_program,
              {_text('$.transpile_result.transpiled_program')} AS transpiled_program,
              CAST({_json('$.transpile_result.virtual_physical_mapping')} AS VARCHAR) AS virtual_physical_mapping,
              CAST({_json('$.transpile_result.stats')} AS VARCHAR) AS transpile_stats, submitted_month
            FROM raw) TO '{out}/jobs' ({OPTIONS})""",
        f"""COPY (WITH e AS (
                SELECT job_id, submitted_month, unnest(map_entries(CAST({counts} AS MAP(VARCHAR, BIGINT)))) AS kv
                FROM raw WHERE {counts} IS NOT NULL)
              SELECT job_id, kv.key AS bitstring, TRY_CAST('0b' || kv.key AS UBIGINT) AS outcome,
                     CAST(length(kv.key) AS INTEGER) AS n_bits, kv.value AS count, submitted_month FROM e)
            TO '{out}/counts' ({OPTIONS})""",
        f"""COPY (WITH s AS (
                SELECT job_id, submitted_month,
                       unnest(map_entries(CAST({divided} AS MAP(VARCHAR, MAP(VARCHAR, BIGINT))))) AS sub
                FROM raw WHERE {divided} IS NOT NULL),
              e AS (SELECT job_id, submitted_month, CAST(sub.key AS INTEGER) AS sub_result,
                           unnest(map_entries(sub.value)) AS kv FROM s)
              SELECT job_id, sub_result, kv.key AS bitstring, TRY_CAST('0b' || kv.key AS UBIGINT) AS outcome,
                     CAST(length(kv.key) AS INTEGER) AS n_bits, kv.value AS count, submitted_month FROM e)
            TO '{out}/divided_counts' ({OPTIONS})""",
        f"""COPY (SELECT job_id, CAST({_json('$.result.estimation.exp_value')} AS DOUBLE) AS exp_value,
                     CAST({_json('$.result.estimation.stds')} AS DOUBLE) AS stds,
                     CAST({_json('$.input.operator')} AS STRUCT(pauli VARCHAR, coeff DOUBLE)[]) AS operator,
                     submitted_month
              FROM raw WHERE {_json('$.result.estimation')} IS NOT NULL)
            TO '{out}/estimations' ({OPTIONS})""",
    ]


def run(dump: Path, out: Path) -> dict[str, int]:
    """Run the script; returns the rows of each table it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for statement in script(dump, out):
        con.execute(statement)
    rows = {}
    for name in ("jobs", "counts", "divided_counts", "estimations"):
        if not any((out / name).rglob("*.parquet")):  # COPY writes no file for an empty result
            rows[name] = 0
            continue
        rows[name] = con.execute(f"SELECT count(*) FROM read_parquet('{out}/{name}/**/*.parquet')").fetchone()[0]
    con.close()
    return rows
