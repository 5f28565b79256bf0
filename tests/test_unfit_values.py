"""A value no column can hold (an integer of 2^63, a number beyond float range, a lone surrogate, ...) makes its job
one `errors` row and nothing else; the rest of the batch is written, and every table writes to Parquet."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_payload

from oqtopus_data import flatten
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.tables.devices import devices_snapshot, devices_table

AT = datetime(2025, 6, 1, tzinfo=UTC)
BIG = 2**63
LONE = "\udc00"  # valid in JSON ("\udc00"), not valid UTF-8: Arrow refuses it


def writes_to_parquet(tables: dict[str, pa.Table]) -> None:
    for table in tables.values():
        pq.write_table(table, io.BytesIO())


def edit(name: str, change: Callable[[dict[str, Any]], Any], job_id: str = "bad-job") -> dict[str, Any]:
    payload = copy.deepcopy(load_payload(name))
    payload["job_id"] = job_id
    change(payload)
    return payload


def info(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["job_info"]


def counts(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["job_info"]["result"]["sampling"]["counts"]


def estimation(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["job_info"]["result"]["estimation"]


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# name -> (corpus payload, change, the message of its errors row)
CASES: dict[str, tuple[str, Callable[[dict[str, Any]], Any], str]] = {
    "shots 2^63": ("sampling_current", lambda p: p.update(shots=BIG),
                   "shots 9223372036854775808 does not fit a 64-bit integer"),
    "a count of 2^63": ("sampling_current", lambda p: counts(p).update({"11": BIG}),
                        "a count in counts 9223372036854775808 does not fit a 64-bit integer"),
    "counts summing past 2^63": ("sampling_current", lambda p: counts(p).update({"00": 2**62, "11": 2**62}),
                                 "the sum of counts does not fit a 64-bit integer (total_count)"),
    "a divided count of 2^64": ("multi_manual_current",
                                lambda p: info(p)["result"]["sampling"]["divided_counts"]["1"].update({"1": 2**64}),
                                "a count in divided_counts[1] 18446744073709551616 does not fit a 64-bit integer"),
    "execution_time 1e400": ("sampling_current", lambda p: p.update(json.loads('{"execution_time": 1e400}')),
                             "execution_time is infinite (a number beyond float range)"),
    "execution_time 10^400": ("sampling_current", lambda p: p.update(execution_time=10**400),
                              "execution_time is an integer beyond float range (10000000000000000000...<401 digits>)"),
    "exp_value 1e400": ("estimation_current", lambda p: estimation(p).update(exp_value=float("inf")),
                        "exp_value is infinite (a number beyond float range)"),
    "stds 2^1024": ("estimation_current", lambda p: estimation(p).update(stds=2**1024),
                    "stds is an integer beyond float range (17976931348623159077...<309 digits>)"),
    "exp_value [re, 10^400]": ("estimation_current", lambda p: estimation(p).update(exp_value=[1.0, 10**400]),
                               "exp_value imaginary part is an integer beyond float range "
                               "(10000000000000000000...<401 digits>)"),
    "operator coeff 1e400": ("estimation_current",
                             lambda p: info(p)["input"]["operator"][1].update(coeff=float("-inf")),
                             "operator[1].coeff is infinite (a number beyond float range)"),
    "sub-result key 2^31": ("multi_manual_current",
                            lambda p: info(p)["result"]["sampling"]["divided_counts"].update({"2147483648": {"0": 1}}),
                            "divided_counts[2147483648]: sub-result 2147483648 does not fit a 32-bit integer"),
    "surrogate in name": ("sampling_current", lambda p: p.update(name="bell" + LONE),
                          "name is not valid UTF-8: a lone surrogate '\\udc00' at character 4"),
    "surrogate in description": ("sampling_current", lambda p: p.update(description=LONE),
                                 "description is not valid UTF-8: a lone surrogate '\\udc00' at character 0"),
    "surrogate in device_id": ("sampling_current", lambda p: p.update(device_id="Kawa" + LONE),
                               "device_id is not valid UTF-8: a lone surrogate '\\udc00' at character 4"),
    "surrogate in message": ("sampling_failed_no_result", lambda p: info(p).update(message="oops " + LONE),
                             "message is not valid UTF-8: a lone surrogate '\\udc00' at character 5"),
    "surrogate in a bitstring": ("sampling_current", lambda p: counts(p).update({"1" + LONE: 1}),
                                 "a bitstring in counts is not valid UTF-8: a lone surrogate '\\udc00' at character 1"),
    "surrogate in a divided bitstring": (
        "multi_manual_current", lambda p: info(p)["result"]["sampling"]["divided_counts"]["0"].update({LONE: 1}),
        "a bitstring in divided_counts[0] is not valid UTF-8: a lone surrogate '\\udc00' at character 0"),
    "surrogate in a program": ("sampling_current", lambda p: info(p)["input"].update(program=["OPENQASM 3;" + LONE]),
                               "program[0] is not valid UTF-8: a lone surrogate '\\udc00' at character 11"),
    "surrogate in transpiler_info": ("sampling_current", lambda p: p.update(transpiler_info={"note": LONE}),
                                     "transpiler_info is not valid UTF-8: a lone surrogate '\\udc00' at character 10"),
    "surrogate in a transpile stats key": (
        "sampling_current", lambda p: info(p)["transpile_result"]["stats"].update({LONE: 1}),
        "transpile_stats is not valid UTF-8: a lone surrogate '\\udc00' at character 175"),
    "surrogate in an operator pauli": (
        "estimation_current", lambda p: info(p)["input"]["operator"][0].update(pauli="X 0" + LONE),
        "operator[0].pauli is not valid UTF-8: a lone surrogate '\\udc00' at character 3"),
    "surrogate in an undeclared key": ("sampling_current", lambda p: p.update({"tag" + LONE: 1}),
                                       "extra is not valid UTF-8: a lone surrogate '\\udc00' at character 13"),
    "JSON nested 5000 deep": ("sampling_current", lambda p: p.update(simulator_info=nested(5000)),
                              "simulator_info is nested too deeply to be written as JSON"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_value_no_column_holds_makes_its_job_one_error_row_and_the_batch_is_written(case: str) -> None:
    name, change, message = CASES[case]
    good = result_from_raw(load_payload(name))
    bad = result_from_raw(edit(name, change))
    tables = flatten([good, bad], exported_at=AT)
    assert tables["errors"].to_pylist() == [
        {"job_id": "bad-job", "stage": "flatten", "message": message, "recorded_at": AT}]
    assert tables["jobs"]["job_id"].to_pylist() == [good.job_id]
    for table in ("counts", "divided_counts", "estimations"):
        assert set(tables[table]["job_id"].to_pylist()) <= {good.job_id}, table
    assert tables == flatten([good], exported_at=AT) | {"errors": tables["errors"]}
    writes_to_parquet(tables)


def test_a_job_id_with_a_lone_surrogate_is_an_error_row_stored_escaped() -> None:
    bad = result_from_raw(edit("sampling_current", lambda p: None, job_id="job-" + LONE))
    tables = flatten([bad], exported_at=AT)
    assert tables["errors"].to_pylist() == [{
        "job_id": "job-\\udc00", "stage": "flatten",
        "message": "job_id is not valid UTF-8: a lone surrogate '\\udc00' at character 4 "
                   "(job_id is not valid UTF-8: stored with \\u escapes)",
        "recorded_at": AT}]
    assert tables["jobs"].num_rows == 0
    writes_to_parquet(tables)


def test_error_rows_of_any_stage_are_writable() -> None:
    from oqtopus_data.tables.flatten import error_rows

    table = error_rows([("a" + LONE, "fetch", "GET /jobs/a" + LONE + ": 404"), (None, "list", "fine")], AT)
    assert table.to_pylist() == [
        {"job_id": "a\\udc00", "stage": "fetch", "recorded_at": AT,
         "message": "GET /jobs/a\\udc00: 404 (job_id is not valid UTF-8: stored with \\u escapes) "
                    "(message text not valid UTF-8 stored with \\u escapes)"},
        {"job_id": None, "stage": "list", "message": "fine", "recorded_at": AT}]
    writes_to_parquet({"errors": table})


def test_a_duck_typed_result_whose_properties_fail_is_its_own_error() -> None:
    class Broken:
        job_id = "broken"

        @property
        def job_info(self) -> Any:
            raise TypeError("not today")

    tables = flatten([Broken(), result_from_raw(load_payload("sampling_current"))], exported_at=AT)
    assert tables["errors"].to_pylist() == [
        {"job_id": "broken", "stage": "flatten", "message": "TypeError: not today", "recorded_at": AT}]
    assert tables["jobs"].num_rows == 1


# ------------------------------------------------------------------------------------------------- devices

DEVICES = [
    {"device_id": "Kawasaki", "device_type": "QPU", "status": "available", "n_qubits": 64, "n_pending_jobs": 3,
     "basis_gates": ["sx", "rz", "cx"], "device_info": '{"calibrated": true}', "calibrated_at": "2025-01-01T00:00:00Z"},
    {"device_id": "Huge", "n_qubits": 2**70},
    {"device_id": "Odd" + LONE, "description": "x"},
    {"device_type": "simulator"},
    "SVSim",
    {"device_id": "SVSim", "device_type": "simulator", "description": "state vector " + LONE},
    {"device_id": "Sim2", "device_type": "simulator", "n_qubits": 39, "device_info": {"noise": None}},
]


def test_a_bad_device_record_is_noted_and_the_other_devices_are_kept() -> None:
    snapshot = devices_snapshot(DEVICES, AT)
    assert snapshot.table["device_id"].to_pylist() == ["Kawasaki", "Sim2"]
    assert snapshot.table.to_pylist()[1]["device_info"] == '{"noise": null}'
    assert snapshot.errors == [
        (None, "devices", "device 'Huge' left out of the snapshot: n_qubits 1180591620717411303424 does not fit a "
                          "64-bit integer"),
        (None, "devices", "device 'Odd\\udc00' left out of the snapshot: device_id is not valid UTF-8: a lone "
                          "surrogate '\\udc00' at character 3"),
        (None, "devices", "device #3 of the list left out of the snapshot: no device_id"),
        (None, "devices", "device #4 of the list left out of the snapshot: a str, not a device object"),
        (None, "devices", "device 'SVSim' left out of the snapshot: description is not valid UTF-8: a lone "
                          "surrogate '\\udc00' at character 13"),
    ]
    writes_to_parquet({"devices": snapshot.table})


def test_devices_table_refuses_a_snapshot_with_a_bad_record_with_a_value_error() -> None:
    assert devices_table(DEVICES[:1], AT).num_rows == 1
    with pytest.raises(ValueError, match="n_qubits 1180591620717411303424 does not fit"):
        devices_table(DEVICES[:2], AT)
