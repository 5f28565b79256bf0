"""jobs.circuit_id: the report's circuit (oqtopus_data.results.circuits) stored per job, so a circuit compares across
devices in one GROUP BY; files written before the column read it as nulls, and the drift computes it for them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from demo_export import write_export
from test_report_drift import BELL, BELL_AGAIN, DEVICES, GHZ3, T0, job

import oqtopus_data as od
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import MANIFEST_DIR
from oqtopus_data.report.drift import CircuitDrift
from oqtopus_data.results.circuits import circuit_id, circuit_key


def jobs() -> list[dict]:
    sse = {**job(7, "sim", {"0": 1}, BELL), "job_type": "sse"}
    sse["job_info"] = {"input": {"sse_program": "print(1)"}, "result": {"sampling": {"counts": {"0": 1}}}}
    multi = {**job(8, "qpu", {"0000": 5}, BELL), "job_type": "multi_manual"}
    multi["job_info"]["input"]["program"] = [BELL, GHZ3]
    return [job(1, "sim", {"00": 50, "11": 50}, BELL), job(2, "qpu", {"00": 30, "11": 70}, BELL_AGAIN),
            job(3, "qpu", {"000": 40, "111": 60}, GHZ3), sse, multi]


def test_each_job_gets_the_hash_of_its_normalised_programs(tmp_path: Path) -> None:
    out = write_export(jobs(), tmp_path / "out", [(T0, DEVICES)])
    got = dict(od.read(out, "jobs").select("job_id", "circuit_id").iter_rows())
    assert [got[j["job_id"]] for j in jobs()] == [
        circuit_key([BELL]), circuit_key([BELL]), circuit_key([GHZ3]), None, circuit_key([BELL, GHZ3])]
    assert circuit_id([]) is None and circuit_id(None) is None


def test_group_by_circuit_and_device_compares_a_circuit_across_devices(tmp_path: Path) -> None:
    out = write_export(jobs(), tmp_path / "out", [(T0, DEVICES)])
    rows = od.connect(out).execute("""
        SELECT circuit_id, device_id, count(*) FROM jobs WHERE circuit_id IS NOT NULL
        GROUP BY ALL ORDER BY ALL""").fetchall()
    bell, ghz, both = circuit_key([BELL]), circuit_key([GHZ3]), circuit_key([BELL, GHZ3])
    assert rows == sorted([(bell, "qpu", 1), (bell, "sim", 1), (ghz, "qpu", 1), (both, "qpu", 1)])


def drop_circuit_id(out: Path) -> None:
    """Make the export's jobs files look written by schema version 3: no circuit_id column."""
    (manifest_path,) = (out / MANIFEST_DIR).iterdir()
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["tables"]["jobs"]:
        path = out / entry["path"]
        pq.write_table(pq.read_table(path).drop_columns(["circuit_id"]), path, compression="zstd")
        entry["bytes"] = path.stat().st_size
    manifest["schema_version"] = 3
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("old", [False, True], ids=["current", "schema-3-files"])
def test_the_drift_groups_by_circuit_id_and_computes_it_for_older_files(tmp_path: Path, old: bool) -> None:
    out = write_export(jobs(), tmp_path / "out", [(T0, DEVICES)])
    if old:
        drop_circuit_id(out)
        assert "circuit_id" not in pq.read_schema(next((out / "jobs").rglob("*.parquet"))).names
        assert od.read(out, "jobs")["circuit_id"].null_count() == 5
        assert Dataset(out).read_table("jobs")["circuit_id"].null_count == 5
    with CircuitDrift(od.connect(out)) as drift:
        circuits = {c.key: c.runs for c in drift.circuits(min_runs=1)}
    assert circuits == {circuit_key([BELL]): 2, circuit_key([GHZ3]): 1, circuit_key([BELL, GHZ3]): 1}


def reference(text: str) -> str:
    """The normalisation as the plain _STEPS substitutions (what DuckDB runs)."""
    import re

    from oqtopus_data.results.circuits import _STEPS

    for pattern, replacement in _STEPS:
        text = re.sub(pattern, replacement, text)
    return text.strip(" ")


PIECES = ["h", "q[0]", " ", "  ", "\t", "\n", "\r\n", "\v", "\f", "\xa0", "\x1c", ";", ",", "(", ")", "{", "}", "[",
          "]", "=", "+", "*", "/", "<", ">", ":", "-", "//", "/*", "*/", "x", "0", "OPENQASM 3.0", "é", "\u2003"]


def test_the_fast_normalisation_is_the_substitutions() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from oqtopus_data.results.circuits import normalise_program

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join) | st.text(max_size=60))
    def same(text: str) -> None:
        assert normalise_program(text) == reference(text)

    same()
    assert normalise_program(BELL_AGAIN) == reference(BELL_AGAIN) == normalise_program(BELL)
