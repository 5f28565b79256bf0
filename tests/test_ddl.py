"""The DDL that registers an export with Spark, Trino and DuckDB: DuckDB runs it, the others are checked as text
(tests/test_spark.py runs the Spark script on a real Spark)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

import oqtopus_data as od
from oqtopus_data.cli import export_command
from oqtopus_data.query.ddl import DEFAULT_TRINO_SCHEMA, ddl_statements
from oqtopus_data.query.sqltext import TYPE_MAPPERS, duckdb_type, spark_type, trino_type
from oqtopus_data.tables import schema as S

ANALYSIS_VIEWS = ("job_timings", "device_daily", "count_probabilities", "device_calibrations", "job_calibration",
                  "usage_monthly", "usage_by_device")
#: Views with sums or means of doubles: their last bits follow the order the files are read in.
FLOAT_SUMS = ("device_daily", "job_calibration", "usage_monthly", "usage_by_device")
QUOTE = {"spark": lambda n: f"`{n}`", "trino": lambda n: f'"{n}"', "duckdb": lambda n: f'"{n}"'}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo export in a directory whose name has a quote and a space, plus one commit with an errors row;
    sse_log_index/ is never written, so one table has no directory at all."""
    out = tmp_path_factory.mktemp("ddl") / "it's here" / "out"
    result = CliRunner().invoke(export_command, ["--demo", "--demo-jobs", "300", "--quiet", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    error = {"job_id": ["job-x"], "stage": ["archive"], "message": ["archive never arrived"],
             "recorded_at": [datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)]}
    od.write_dataset({"errors": pa.table(error, schema=S.SCHEMAS["errors"])}, out)
    assert not (out / "sse_log_index").exists()
    return str(out)


def fresh(script: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(script)
    return con


class Close(float):
    """A double compared within 1e-9 (relative): a sum or mean whose last bits follow the order of the files."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(self, other, rel_tol=1e-9)

    __hash__ = float.__hash__


def rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    found = con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
    if name.rpartition(".")[2] in FLOAT_SUMS:
        return [tuple(Close(v) if isinstance(v, float) else v for v in row) for row in found]
    return found


def statement(script: str, prefix: str, table: str) -> str:
    """The one statement of `script` that starts with `prefix` and names `table` (quoted) before its body."""
    pattern = rf"^{re.escape(prefix)} (\S+\.)?{re.escape(table)} "
    found = [s for s in script.split(";\n") if re.search(pattern, s, re.MULTILINE)]
    assert len(found) == 1, (prefix, table, found)
    return found[0]


def test_duckdb_ddl_in_a_fresh_connection_answers_like_connect(export_dir: str) -> None:
    reference, con = od.connect(export_dir), fresh(ddl_statements(export_dir, "duckdb"))
    for name in [*S.TABLES, *ANALYSIS_VIEWS]:
        assert con.execute(f"DESCRIBE {name}").fetchall() == reference.execute(f"DESCRIBE {name}").fetchall()
        assert rows(con, name) == rows(reference, name), name
    assert rows(con, "errors") == [("job-x", "archive", "archive never arrived",
                                    datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))]
    for name in ("jobs", "counts", "divided_counts", "estimations", "devices", "qubit_calibrations",
                 "coupling_calibrations", *ANALYSIS_VIEWS):
        assert con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] > 0, name  # nothing compared vacuously


def test_duckdb_ddl_under_a_schema_puts_every_view_there(export_dir: str) -> None:
    reference, con = od.connect(export_dir), fresh(ddl_statements(export_dir, "duckdb", schema="lab"))
    con.execute("USE memory.main")  # the views must not depend on the session's schema
    for name in [*S.TABLES, *ANALYSIS_VIEWS]:
        assert rows(con, f"lab.{name}") == rows(reference, name), name


def test_a_table_without_a_directory_is_empty_with_its_declared_columns(export_dir: str) -> None:
    con = fresh(ddl_statements(export_dir, "duckdb"))
    described = con.execute("SELECT column_name, column_type FROM (DESCRIBE sse_logs)").fetchall()
    declared = [(c.name, con.execute(f"SELECT typeof(CAST(NULL AS {duckdb_type(c.type)}))").fetchall()[0][0])
                for c in S.TABLES["sse_logs"].columns]
    assert described == declared
    assert con.execute("SELECT count(*) FROM sse_logs").fetchall() == [(0,)]


def test_a_partitioned_table_without_files_reads_as_empty(tmp_path: Path) -> None:
    od.write_dataset({"errors": S.empty_table("errors")}, tmp_path)  # a committed export with no data at all
    con = fresh(ddl_statements(str(tmp_path), "duckdb"))
    for name in [*S.TABLES, *ANALYSIS_VIEWS]:
        assert con.execute(f"SELECT count(*) FROM {name}").fetchall() == [(0,)], name
    assert [r[0] for r in con.execute("DESCRIBE counts").fetchall()] == S.TABLES["counts"].column_names


@pytest.mark.parametrize("engine", ["spark", "trino"])
def test_every_column_of_every_table_is_declared_with_its_mapped_type_partition_last(engine: str) -> None:
    script, quote = ddl_statements("/data/out", engine), QUOTE[engine]
    for spec in S.TABLES.values():
        body = statement(script, "CREATE TABLE IF NOT EXISTS", quote(spec.name))
        declared = re.findall(r"^    (\S+) (.+) COMMENT '", body, re.MULTILINE)
        expected = [(quote(c.name), TYPE_MAPPERS[engine](c.type)) for c in spec.columns]
        assert declared == expected, spec.name  # schema.py keeps the partition column last
        assert declared[-1][0] == quote(S.PARTITION_COLUMN) or not spec.partitioned


def test_duckdb_ddl_types_every_column_from_the_schema() -> None:
    script = ddl_statements("/data/out", "duckdb")
    for spec in S.TABLES.values():
        typed = ", ".join(f'CAST(NULL AS {duckdb_type(c.type)}) AS "{c.name}"' for c in spec.columns)
        assert f"(SELECT {typed} LIMIT 0)" in script, spec.name


def test_only_partitioned_tables_get_partitions_and_their_repair() -> None:
    spark, trino = ddl_statements("/data/out", "spark"), ddl_statements("/data/out", "trino")
    duck = ddl_statements("/data/out", "duckdb")
    for spec in S.TABLES.values():
        create_spark = statement(spark, "CREATE TABLE IF NOT EXISTS", f"`{spec.name}`")
        create_trino = statement(trino, "CREATE TABLE IF NOT EXISTS", f'"{spec.name}"')
        assert ("PARTITIONED BY (`submitted_month`)" in create_spark) == spec.partitioned
        assert ("partitioned_by = ARRAY['submitted_month']" in create_trino) == spec.partitioned
        assert (f"MSCK REPAIR TABLE `{spec.name}` SYNC PARTITIONS;" in spark) == spec.partitioned
        assert (f"table_name => '{spec.name}', mode => 'FULL');" in trino) == spec.partitioned
        scan = re.search(rf"read_parquet\('/data/out/{spec.name if spec.name != 'sse_logs' else 'sse_log_index'}"
                         r"/\*\*/\*\.parquet', [^)]*\)", duck)
        assert scan is not None, spec.name
        assert ("hive_partitioning = true" in scan.group()) == spec.partitioned


def test_paths_with_quotes_and_backslashes_are_quoted_for_each_engine() -> None:
    location = "/data/it's a\\b/out"
    assert "LOCATION 'file:///data/it\\'s a\\\\b/out/jobs'" in ddl_statements(location, "spark")
    assert "external_location = 'file:///data/it''s a\\b/out/jobs'" in ddl_statements(location, "trino")
    assert "read_parquet('/data/it''s a\\b/out/jobs/**/*.parquet'" in ddl_statements(location, "duckdb")


def test_urls_are_kept_and_local_paths_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "LOCATION 's3://bucket/exports/jobs'" in ddl_statements("s3://bucket/exports/", "spark")
    assert "external_location = 's3://bucket/exports/errors'" in ddl_statements("s3://bucket/exports", "trino")
    assert "'/data/out/sse_log_index/**/*.parquet'" in ddl_statements("file:///data/out", "duckdb")
    monkeypatch.chdir(tmp_path)
    assert f"LOCATION 'file://{tmp_path}/out/devices'" in ddl_statements("out", "spark")


def test_schema_names_are_quoted_and_trino_always_gets_one() -> None:
    spark = ddl_statements("/d", "spark", schema="spark_catalog.quantum")
    assert "CREATE SCHEMA IF NOT EXISTS `spark_catalog`.`quantum`;" in spark
    assert "FROM `spark_catalog`.`quantum`.`counts` AS c" in spark
    assert "CREATE SCHEMA" not in ddl_statements("/d", "spark") + ddl_statements("/d", "duckdb")
    trino = ddl_statements("/d", "trino")
    assert f'CREATE TABLE IF NOT EXISTS "{DEFAULT_TRINO_SCHEMA}"."jobs" (' in trino
    assert f"CALL system.sync_partition_metadata(schema_name => '{DEFAULT_TRINO_SCHEMA}', table_name => 'jobs'" in trino
    trino = ddl_statements("/d", "trino", schema="hive.lab")
    assert "CALL \"hive\".system.sync_partition_metadata(schema_name => 'lab', table_name => 'counts'" in trino


def test_unknown_engines_and_control_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown engine 'hive'"):
        ddl_statements("/d", "hive")
    with pytest.raises(ValueError, match="control character"):
        ddl_statements("/d\n; DROP TABLE x", "spark")


def test_arrow_types_map_to_each_engine() -> None:
    ts, terms = pa.timestamp("us", tz="UTC"), pa.list_(S.OPERATOR_TERM)
    assert [spark_type(t) for t in (ts, pa.uint64(), terms)] == [
        "TIMESTAMP_LTZ", "DECIMAL(20,0)", "ARRAY<STRUCT<`pauli`: STRING, `coeff`: DOUBLE>>"]
    assert [trino_type(t) for t in (ts, pa.uint64(), terms)] == [
        "timestamp(6)", "bigint", 'array(row("pauli" varchar, "coeff" double))']
    assert [duckdb_type(t) for t in (ts, pa.uint64(), terms)] == [
        "TIMESTAMPTZ", "UBIGINT", 'STRUCT("pauli" VARCHAR, "coeff" DOUBLE)[]']
    for mapper in TYPE_MAPPERS.values():
        with pytest.raises(ValueError, match="ms or us"):
            mapper(pa.timestamp("ns", tz="UTC"))
        with pytest.raises(ValueError, match="no engine type"):
            mapper(pa.float16())


def test_trino_views_name_the_zone_and_divide_as_doubles() -> None:
    trino = ddl_statements("/d", "trino")
    assert "to_unixtime(with_timezone(\"ended_at\", 'UTC')) - to_unixtime(with_timezone(\"running_at\", 'UTC'))" \
        in trino
    assert 'CAST(c."count" AS double) / j."total_count" AS "probability"' in trino
    assert "DECIMAL '18446744073709551616'" in statement(trino, "CREATE OR REPLACE VIEW", '"count_probabilities"')


def test_trino_calibration_views_parse_the_mapping_and_unnest_it_as_trino_does() -> None:
    body = statement(ddl_statements("/d", "trino"), "CREATE OR REPLACE VIEW", '"job_calibration"')
    assert ("map_values(TRY(CAST(json_extract(j.\"virtual_physical_mapping\", '$.qubit_mapping') AS map(varchar, "
            "bigint))))") in body
    assert 'CROSS JOIN UNNEST(m."qubits") AS "u"("qubit")' in body
    assert 'FROM "oqtopus"."device_calibrations"' in body and "max(\"calibrated_at\") OVER (" in body
    calibrations = statement(ddl_statements("/d", "trino"), "CREATE OR REPLACE VIEW", '"device_calibrations"')
    assert 'approx_percentile(q."t1", 0.5) AS "median_t1"' in calibrations
    usage = statement(ddl_statements("/d", "trino"), "CREATE OR REPLACE VIEW", '"usage_monthly"')
    assert 'round(approx_percentile(t."queue_seconds", 0.9), 3) AS "p90_queue_seconds"' in usage
    assert "t.\"status\" IN ('failed', 'cancelled')" in usage and '"cost"' not in usage


def test_spark_calibration_views_explode_the_mapping_with_a_lateral_view() -> None:
    body = statement(ddl_statements("/d", "spark"), "CREATE OR REPLACE VIEW", "`job_calibration`")
    assert "from_json(j.`virtual_physical_mapping`, 'qubit_mapping MAP<STRING, BIGINT>').qubit_mapping" in body
    assert "LATERAL VIEW explode(m.`qubits`) `u` AS `qubit`" in body
