"""A dataset written with the previous schema (version 1, before jobs.extra and estimations.operator_coeff_imag)
stays readable, alone and mixed with files of the current version: a column a file lacks reads as nulls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_payload

from oqtopus_data import connect, flatten, read, write_dataset
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import MANIFEST_DIR
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.tables import schema as S

AT = datetime(2025, 6, 1, tzinfo=UTC)
ADDED = {"jobs": ["extra"], "estimations": ["operator_coeff_imag"]}  # the columns of schema version 2


def tables_of(*names: str, extra: dict | None = None) -> dict[str, pa.Table]:
    payloads = [load_payload(name) for name in names]
    if extra is not None:
        for payload in payloads:
            payload.update(extra)
    return flatten([result_from_raw(p) for p in payloads], exported_at=AT)


def write_version_1(out: Path, tables: dict[str, pa.Table]) -> None:
    """A commit as oqtopus-data with schema version 1 wrote it: files without the added columns, manifest v1."""
    write_dataset(tables, out)
    (manifest_path,) = (out / MANIFEST_DIR).iterdir()
    manifest = json.loads(manifest_path.read_text())
    for table, columns in ADDED.items():
        for entry in manifest["tables"].get(table, []):
            path = out / entry["path"]
            old = pq.read_table(path).drop_columns(columns)
            old = old.replace_schema_metadata({b"oqtopus_data.schema_version": b"1"})
            pq.write_table(old, path, compression="zstd")
            entry["bytes"] = path.stat().st_size
    manifest["schema_version"] = 1
    manifest_path.write_text(json.dumps(manifest))


@pytest.fixture
def old_dataset(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    write_version_1(out, tables_of("sampling_current", "estimation_current", "tolerant_exp_value_complex"))
    assert "extra" not in pq.read_schema(next((out / "jobs").rglob("*.parquet"))).names
    return out


def test_a_version_1_dataset_reads_with_the_added_columns_as_nulls(old_dataset: Path) -> None:
    dataset = Dataset(old_dataset)
    assert dataset.latest().schema_version == 1
    jobs, estimations = dataset.read_table("jobs"), dataset.read_table("estimations")
    assert jobs.schema.equals(S.SCHEMAS["jobs"], check_metadata=False)
    assert jobs.num_rows == 3 and jobs["extra"].to_pylist() == [None] * 3
    assert estimations["operator_coeff_imag"].to_pylist() == [None, None]
    con = connect(old_dataset)
    assert con.execute("SELECT count(*), count(extra) FROM jobs").fetchone() == (3, 0)
    assert con.execute("SELECT count(*), count(operator_coeff_imag) FROM estimations").fetchone() == (2, 0)
    assert [d[0] for d in con.execute("SELECT * FROM jobs").description] == S.JOBS.column_names
    assert read(old_dataset, "jobs")["extra"].to_list() == [None] * 3


def test_files_of_both_versions_read_side_by_side(old_dataset: Path) -> None:
    write_dataset(tables_of("multi_manual_current", extra={"priority": 5}), old_dataset)
    assert Dataset(old_dataset).latest().schema_version == S.SCHEMA_VERSION
    new_id = load_payload("multi_manual_current")["job_id"]
    expected = {new_id: '{"job": {"priority": 5}}'} | dict.fromkeys(
        load_payload(n)["job_id"] for n in ("sampling_current", "estimation_current", "tolerant_exp_value_complex"))
    assert dict(zip(*Dataset(old_dataset).read_table("jobs").select(["job_id", "extra"]).to_pydict().values(),
                    strict=True)) == expected
    assert dict(connect(old_dataset).execute("SELECT job_id, extra FROM jobs").fetchall()) == expected
    assert dict(read(old_dataset, "jobs").select("job_id", "extra").iter_rows()) == expected
    write_dataset({"estimations": tables_of("tolerant_exp_value_complex")["estimations"]}, old_dataset)
    imag = connect(old_dataset).execute("SELECT operator_coeff_imag FROM estimations ORDER BY job_id").fetchall()
    assert sorted(imag, key=str) == sorted([(None,), (None,), ([0.0],)], key=str)
