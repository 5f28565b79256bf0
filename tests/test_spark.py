"""A real Spark (local mode, loopback only) runs the DDL that `ddl_statements(out, "spark")` prints and reads the
export with the same meaning DuckDB does: counts, sums, instants, lists, structs and unsigned 64-bit outcomes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession
from pyspark.sql.types import DecimalType

import oqtopus_data as od
from oqtopus_data.cli import export_command
from oqtopus_data.dataset.manifest import TABLE_DIRS
from oqtopus_data.query import sqltext
from oqtopus_data.query.ddl import ddl_statements
from oqtopus_data.query.sqltext import View, view_statements
from oqtopus_data.tables import schema as S

DB = "oq"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo export in a directory whose name has a quote and a space (the DDL must quote its LOCATIONs)."""
    out = tmp_path_factory.mktemp("spark-export") / "it's here" / "out"
    result = CliRunner().invoke(export_command, ["--demo", "--demo-jobs", "300", "--quiet", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local Spark for the module, bound to 127.0.0.1, with its warehouse and Derby home in a temp dir."""
    home = tmp_path_factory.mktemp("spark-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master("local[2]").appName("oqtopus-data-tests")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.warehouse.dir", str(home / "warehouse"))
            # A short-lived test JVM starts faster with the client compiler only.
            .config("spark.driver.extraJavaOptions",
                    f"-Dderby.system.home={home / 'derby'} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def run_script(spark: SparkSession, script: str) -> None:
    """Run a printed script statement by statement, as `spark-sql -f` does (statements end with `;` + newline)."""
    for chunk in script.split(";\n"):
        if any(line.strip() and not line.startswith("--") for line in chunk.splitlines()):
            spark.sql(chunk)


@pytest.fixture(scope="module")
def registered(spark: SparkSession, export_dir: Path) -> SparkSession:
    run_script(spark, ddl_statements(str(export_dir), "spark", schema=DB))
    return spark


@pytest.fixture(scope="module")
def duck(export_dir: Path) -> duckdb.DuckDBPyConnection:
    return od.connect(export_dir)


def spark_rows(spark: SparkSession, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(_plain(v) for v in row) for row in spark.sql(sql).collect())


def duck_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(_plain(v) for v in row) for row in con.execute(sql).fetchall())


def _plain(value: Any) -> Any:
    """Spark Rows, lists and integral Decimals as plain Python values, to compare with DuckDB's."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if hasattr(value, "asDict"):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_declared_types_are_the_ones_spark_infers_from_the_files(registered: SparkSession, export_dir: Path) -> None:
    checked = 0
    for name in S.TABLES:
        directory = export_dir / TABLE_DIRS[name]
        if not directory.exists():
            continue
        inferred = {f.name: f.dataType for f in registered.read.parquet(str(directory)).schema}
        declared = {f.name: f.dataType for f in registered.table(f"{DB}.{name}").schema}
        assert declared == inferred, name
        checked += 1
    assert checked >= 5
    assert isinstance(registered.table(f"{DB}.counts").schema["outcome"].dataType, DecimalType)


def test_per_device_job_counts_match_duckdb(registered: SparkSession, duck: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT coalesce(device_id, '-'), status, count(*) FROM {jobs} GROUP BY 1, 2"
    assert spark_rows(registered, sql.format(jobs=f"{DB}.jobs")) == duck_rows(duck, sql.format(jobs="jobs"))
    assert spark_rows(registered, f"SELECT count(*) FROM {DB}.jobs") == duck_rows(duck, "SELECT count(*) FROM jobs")


def test_per_job_count_sums_match_duckdb(registered: SparkSession, duck: duckdb.DuckDBPyConnection) -> None:
    for table in ("counts", "divided_counts"):
        sql = "SELECT job_id, submitted_month, count(*), sum(`count`), sum(n_bits) FROM {t} GROUP BY 1, 2"
        expected = duck_rows(duck, sql.format(t=table).replace("`", '"'))
        assert expected and spark_rows(registered, sql.format(t=f"{DB}.{table}")) == expected, table


def test_job_timings_are_the_same_instants_and_seconds(registered: SparkSession,
                                                       duck: duckdb.DuckDBPyConnection) -> None:
    spark_sql = (f"SELECT job_id, unix_micros(submitted_at), unix_micros(running_at), unix_micros(ended_at), "
                 f"queue_seconds, run_seconds, total_seconds, execution_time, submitted_month FROM {DB}.job_timings")
    duck_sql = ("SELECT job_id, epoch_us(submitted_at), epoch_us(running_at), epoch_us(ended_at), "
                "queue_seconds, run_seconds, total_seconds, execution_time, submitted_month FROM job_timings")
    expected = duck_rows(duck, duck_sql)
    assert sum(1 for row in expected if row[4] is not None) > 100
    assert spark_rows(registered, spark_sql) == expected  # exactly: the doubles agree to the bit


def test_every_count_keeps_its_unsigned_64_bit_outcome(registered: SparkSession,
                                                       duck: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT job_id, bitstring, outcome, n_bits, `count`, submitted_month FROM {t}"
    expected = duck_rows(duck, sql.format(t="counts").replace("`", '"'))
    assert max(row[2] for row in expected if row[2] is not None) == 2**64 - 1  # the top of the range is covered
    assert spark_rows(registered, sql.format(t=f"{DB}.counts")) == expected


def test_lists_and_structs_survive(registered: SparkSession, duck: duckdb.DuckDBPyConnection) -> None:
    for sql in ("SELECT job_id, program, normalised FROM {p}jobs",
                "SELECT job_id, exp_value, stds, operator FROM {p}estimations",
                "SELECT snapshot_at, device_id, basis_gates, supported_instructions, n_qubits FROM {p}devices"):
        expected = duck_rows(duck, sql.format(p="").replace("snapshot_at", "epoch_us(snapshot_at)"))
        got = spark_rows(registered, sql.format(p=f"{DB}.").replace("snapshot_at", "unix_micros(snapshot_at)"))
        assert expected and got == expected, sql


def test_views_made_in_another_session_time_zone_still_give_utc_days(registered: SparkSession, export_dir: Path,
                                                                     duck: duckdb.DuckDBPyConnection) -> None:
    daily = "SELECT day, device_id, status, jobs, shots, execution_seconds FROM {p}device_daily"
    probabilities = "SELECT job_id, bitstring, outcome, probability, submitted_month FROM {p}count_probabilities"
    # A view keeps the time zone of the session that made it: make them at UTC+14, where to_date shifts days.
    registered.conf.set("spark.sql.session.timeZone", "Pacific/Kiritimati")
    try:
        run_script(registered, ddl_statements(str(export_dir), "spark", schema="oq_kiritimati"))
        got_daily = spark_rows(registered, daily.format(p="oq_kiritimati."))
        got_probabilities = spark_rows(registered, probabilities.format(p="oq_kiritimati."))
    finally:
        registered.conf.set("spark.sql.session.timeZone", "UTC")
    expected_daily = duck_rows(duck, daily.format(p=""))
    assert [row[:5] for row in got_daily] == [row[:5] for row in expected_daily]
    # A sum of doubles: its last bits follow the order each engine adds in.
    assert all(math.isclose(a[5] or 0, b[5] or 0, rel_tol=1e-12) for a, b in zip(got_daily, expected_daily,
                                                                                 strict=True))
    assert got_probabilities == duck_rows(duck, probabilities.format(p=""))


def test_a_view_added_to_the_declaration_reads_in_spark_as_in_duckdb(registered: SparkSession, export_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    added = View("queued_per_day", "Jobs that queued, per device and UTC day of submission.", """
SELECT "device_id", {utc_date("submitted_at")} AS "day", count(*) AS "jobs", max("queue_seconds") AS "longest"
FROM {job_timings}
WHERE "queue_seconds" > 0 AND "status" <> 'cancelled'
GROUP BY 1, 2""")
    monkeypatch.setattr(sqltext, "VIEWS", (*sqltext.VIEWS, added))
    statement = view_statements("spark", DB)[-1]
    assert statement in ddl_statements(str(export_dir), "spark", schema=DB)
    run_script(registered, statement + "\n")
    expected = duck_rows(od.connect(export_dir), "SELECT * FROM queued_per_day")
    assert len(expected) > 3 and spark_rows(registered, f"SELECT * FROM {DB}.queued_per_day") == expected


def test_running_the_ddl_again_changes_nothing(registered: SparkSession, export_dir: Path,
                                               duck: duckdb.DuckDBPyConnection) -> None:
    run_script(registered, ddl_statements(str(export_dir), "spark", schema=DB))
    assert spark_rows(registered, f"SELECT count(*) FROM {DB}.counts") == duck_rows(duck, "SELECT count(*) FROM counts")
    assert spark_rows(registered, f"SELECT count(*) FROM {DB}.errors") == [(0,)]  # no directory yet: empty


def test_spark_reads_parquet_uint64_exactly_only_as_decimal_20_0(spark: SparkSession, tmp_path: Path) -> None:
    """Why the DDL says DECIMAL(20,0): BIGINT, the obvious choice, fails or silently wraps, by page encoding."""
    values = [0, 5, 2**63, 2**64 - 1, None]
    for dictionary in (True, False):
        path = str(tmp_path / f"dictionary-{dictionary}.parquet")
        pq.write_table(pa.table({"v": pa.array(values, pa.uint64())}), path, use_dictionary=dictionary)
        inferred = spark.read.parquet(path)
        assert inferred.schema["v"].dataType == DecimalType(20, 0)
        assert [_plain(r.v) for r in inferred.collect()] == values
        assert [_plain(r.v) for r in spark.read.schema("v DECIMAL(20,0)").parquet(path).collect()] == values
        try:
            as_bigint = [r.v for r in spark.read.schema("v BIGINT").parquet(path).collect()]
        except Exception as exc:  # Spark's own error type differs by version; that it fails is the point
            assert dictionary, exc
        else:
            assert not dictionary
            assert as_bigint == [0, 5, -(2**63), -1, None]  # the bits, read as signed: wrong values, no error


def _close_rows(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> bool:
    """Rows equal, doubles within 1e-9 (a mean or median: its last bits follow each engine's order of adding)."""
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b

    return len(got) == len(expected) and all(
        len(g) == len(e) and all(same(a, b) for a, b in zip(g, e, strict=True)) for g, e in zip(got, expected,
                                                                                                strict=True))


def test_calibration_tables_read_in_spark_as_in_duckdb(registered: SparkSession,
                                                       duck: duckdb.DuckDBPyConnection) -> None:
    for table in ("qubit_calibrations", "coupling_calibrations"):
        columns = S.TABLES[table].column_names
        stamped = ("calibrated_at", "first_seen_at")
        spark_cols = ", ".join(f"unix_micros({c})" if c in stamped else f"`{c}`" for c in columns)
        duck_cols = ", ".join(f"epoch_us({c})" if c in stamped else f'"{c}"' for c in columns)
        expected = duck_rows(duck, f"SELECT {duck_cols} FROM {table}")
        assert len(expected) > 1000, table  # the demo's calibration history: weekly snapshots of two QPUs
        assert spark_rows(registered, f"SELECT {spark_cols} FROM {DB}.{table}") == expected, table


@pytest.mark.parametrize("view", ["device_calibrations", "job_calibration", "job_qubits", "usage_monthly",
                                  "usage_by_device"])
def test_calibration_and_usage_views_answer_in_spark_as_in_duckdb(registered: SparkSession,
                                                                  duck: duckdb.DuckDBPyConnection, view: str) -> None:
    columns = [d[0] for d in duck.execute(f"SELECT * FROM {view} LIMIT 0").description]
    stamped = {"calibrated_at", "first_seen_at"}
    spark_cols = ", ".join(f"unix_micros({c})" if c in stamped else f"`{c}`" for c in columns)
    duck_cols = ", ".join(f"epoch_us({c})" if c in stamped else f'"{c}"' for c in columns)
    expected = duck_rows(duck, f"SELECT {duck_cols} FROM {view}")
    got = spark_rows(registered, f"SELECT {spark_cols} FROM {DB}.{view}")
    assert len(expected) > 3 and _close_rows(got, expected), view
    if view == "job_calibration":  # the join is exercised: jobs on calibrated qubits and couplings
        assert sum(1 for row in expected if row[columns.index("mean_fidelity_2q")] is not None) > 20
