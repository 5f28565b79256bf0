"""`oqtopus-data sql` (issue 12, item 14): every column type in every format, duplicate names from a join, output
files that cannot be written, and a connection that reads the export and writes nothing unless told to."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from cli_support import one_sentence, run_data
from conftest import result

from oqtopus_data import flatten, write_dataset

AT = datetime(2025, 6, 1, tzinfo=UTC)
JOB = "01JNGT0K1L2M3N4P5Q6R7S8T9U"  # estimation_current
OPERATOR = [{"pauli": "X 0 X 1", "coeff": 1.0}, {"pauli": "Z 0 Z 1", "coeff": 0.5}]
JOIN = "SELECT j.job_id, e.job_id, e.operator FROM jobs j JOIN estimations e USING (job_id)"


@pytest.fixture
def out(tmp_path):
    write_dataset(flatten([result("sampling_current"), result("estimation_current")], exported_at=AT), tmp_path / "ds")
    return tmp_path / "ds"


def sql(out, query, *flags):
    done = run_data("sql", out, query, *flags)
    assert done.exit_code == 0, done.output
    return done.stdout


def test_csv_writes_lists_and_structs_as_json_text(out):
    query = "SELECT [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, NULL::INTEGER[] AS n, 'plain' AS p"
    assert sql(out, query, "--format", "csv") == '"l","s","n","p"\n"[1, 2]","{""a"": 1, ""b"": ""x""}",,"plain"\n'


def test_a_join_with_two_columns_of_one_name_works_in_every_format(out, tmp_path):
    text = json.dumps(OPERATOR)
    assert sql(out, JOIN).splitlines() == [
        "job_id                      job_id_1                    operator",
        f"{'-' * 26}  {'-' * 26}  {'-' * len(text)}",
        f"{JOB}  {JOB}  {text}",
        "(1 row)"]
    csv = '"job_id","job_id_1","operator"\n' + f'"{JOB}","{JOB}","{text.replace(chr(34), chr(34) * 2)}"\n'
    assert sql(out, JOIN, "--format", "csv") == csv
    rows = [json.loads(line) for line in sql(out, JOIN, "--format", "json").splitlines()]
    assert rows == [{"job_id": JOB, "job_id_1": JOB, "operator": OPERATOR}]
    assert sql(out, JOIN, "--format", "parquet", "--output", tmp_path / "j.parquet") == ""
    assert pq.read_table(tmp_path / "j.parquet").to_pylist() == rows


def test_an_output_file_that_cannot_be_written_is_one_sentence_and_the_query_not_run(out, tmp_path):
    missing = run_data("sql", out, "SELECT 1", "--output", tmp_path / "no" / "x.csv")
    assert missing.exit_code == 2
    assert one_sentence(missing, "oqtopus-data") == (f"cannot write {tmp_path / 'no' / 'x.csv'}: the directory "
                                                     f"{tmp_path / 'no'} does not exist")
    directory = run_data("sql", out, "SELECT 1", "--output", tmp_path)
    assert directory.exit_code == 2 and "Traceback" not in directory.output


def test_by_default_a_query_reads_the_export_and_nothing_else(out, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n")
    assert sql(out, "SELECT count(*) AS n FROM jobs").splitlines()[2] == "2"
    for query in (f"COPY (SELECT 1) TO '{tmp_path / 'copy.csv'}'",
                  f"SELECT * FROM read_csv('{outside}')",
                  f"ATTACH '{tmp_path / 'other.db'}'",
                  f"EXPORT DATABASE '{tmp_path / 'dump'}'",
                  "SET enable_external_access = true"):
        refused = run_data("sql", out, query)
        assert refused.exit_code == 1, query
        assert "Traceback" not in refused.output and "secret" not in refused.output, query
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "outside.csv"]


def test_writable_gives_the_query_full_access(out, tmp_path):
    sql(out, f"COPY (SELECT count(*) AS n FROM jobs) TO '{tmp_path / 'n.csv'}'", "--writable")
    assert (tmp_path / "n.csv").read_text() == "n\n2\n"


def test_a_query_error_is_one_sentence_with_exit_1(out):
    bad = run_data("sql", out, "SELECT nope FROM jobs")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("oqtopus-data: Binder Error: ") and "Traceback" not in bad.output
