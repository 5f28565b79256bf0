"""device_info to qubit_calibrations and coupling_calibrations: both shapes, whole rows, undeclared keys kept, a
malformed calibration noted while its device's snapshot is kept, and a calibration stored once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from oqtopus_data.tables import schema as S
from oqtopus_data.tables.calibrations import calibration_rows, read_calibration
from oqtopus_data.tables.devices import devices_snapshot

SEEN = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
CALIBRATED = datetime(2025, 6, 2, 6, 30, tzinfo=UTC)
KEY = {"device_id": "Kawasaki", "calibrated_at": CALIBRATED}

DOCUMENTED = {
    "name": "Kawasaki", "device_id": "Kawasaki", "calibrated_at": "2025-06-02T06:30:00Z",
    "qubits": [
        {"id": 0, "physical_id": 16, "position": {"x": 0.0, "y": 1.5}, "fidelity": 0.9991,
         "meas_error": {"prob_meas1_prep0": 0.01, "prob_meas0_prep1": 0.03, "readout_assignment_error": 0.02},
         "qubit_lifetime": {"t1": 101.5, "t2": 80.25}, "gate_duration": {"rz": 0, "sx": 40, "x": 40}},
        {"id": 1, "physical_id": 17, "fidelity": 0.998, "frequency_ghz": 7.9,
         "meas_error": {"prob_meas1_prep0": 0.02, "prob_meas0_prep1": 0.04, "threshold": 0.5},
         "qubit_lifetime": {"t1": 55, "t2": None}, "gate_duration": {"sx": 36, "id": 36}},
    ],
    "couplings": [
        {"control": 0, "target": 1, "fidelity": 0.985, "gate_duration": {"rzx90": 420}},
        {"control": 1, "target": 0, "fidelity": None, "gate_duration": {"cx": 400, "cz": 120}, "note": "flux"},
    ],
}
QUBIT_NULLS = dict.fromkeys(S.QUBIT_CALIBRATIONS.column_names)


def device(info: object, **fields: object) -> dict:
    return {"device_id": "Kawasaki", "device_type": "QPU", "n_qubits": 2, **fields,
            "device_info": info if isinstance(info, str) or info is None else json.dumps(info)}


def qubit(**values: object) -> dict:
    return {**QUBIT_NULLS, **KEY, "first_seen_at": SEEN, **values}


def coupling(**values: object) -> dict:
    return {**dict.fromkeys(S.COUPLING_CALIBRATIONS.column_names), **KEY, "first_seen_at": SEEN, **values}


def test_the_documented_shape_gives_one_row_per_qubit_and_coupling_with_undeclared_keys_kept() -> None:
    rows = calibration_rows([device(DOCUMENTED)], SEEN, set())
    assert rows.errors == [] and rows.new == [("Kawasaki", CALIBRATED)]
    assert rows.qubits.schema.equals(S.SCHEMAS["qubit_calibrations"])
    assert rows.qubits.to_pylist() == [
        qubit(qubit_id=0, physical_id=16, t1=101.5, t2=80.25, fidelity=0.9991, prob_meas1_prep0=0.01,
              prob_meas0_prep1=0.03, readout_assignment_error=0.02, gate_duration_x=40.0, gate_duration_sx=40.0,
              gate_duration_rz=0.0, position_x=0.0, position_y=1.5),
        qubit(qubit_id=1, physical_id=17, t1=55.0, fidelity=0.998, prob_meas1_prep0=0.02, prob_meas0_prep1=0.04,
              gate_duration_sx=36.0,
              extra='{"frequency_ghz": 7.9, "gate_duration": {"id": 36}, "meas_error": {"threshold": 0.5}}'),
    ]
    assert rows.couplings.to_pylist() == [
        coupling(control=0, target=1, fidelity=0.985, gate="rzx90", gate_duration=420.0),
        coupling(control=1, target=0, gate="cx", gate_duration=400.0,
                 extra='{"gate_duration": {"cz": 120}, "note": "flux"}'),
    ]


def test_older_servers_calibration_data_keyed_by_qubit_reads_into_the_same_columns() -> None:
    legacy = {"calibration_data": {
        "qubit_connectivity": ["(0,1)", [1, 2]],
        "t1": {"0": 50.5, "1": 60.0, "2": 70.0}, "t2": {"0": 40.0, "1": 45.0},
        "ro_error": {"0": 0.0625, "2": 0.125},
        "gate_error": {"x": {"0": 0.0005}, "sx": {"0": 0.00025, "1": 0.0009765625}, "cx": {"(0,1)": 0.015625},
                       "ecr": {"(0,1)": 0.03125}},
        "frequency": {"0": 7.5, "1": 7.25},
        "n_qubits": 3,
    }}
    rows = calibration_rows([device(legacy, calibrated_at="2025-06-02T06:30:00+00:00")], SEEN, set())
    assert rows.errors == []
    assert rows.qubits.to_pylist() == [
        qubit(qubit_id=0, t1=50.5, t2=40.0, fidelity=1 - 0.00025, readout_assignment_error=0.0625,
              extra='{"frequency": 7.5, "gate_error": {"x": 0.0005}}'),
        qubit(qubit_id=1, t1=60.0, t2=45.0, fidelity=1 - 0.0009765625, extra='{"frequency": 7.25}'),
        qubit(qubit_id=2, t1=70.0, readout_assignment_error=0.125),
    ]
    assert rows.couplings.to_pylist() == [
        coupling(control=0, target=1, fidelity=1 - 0.015625, gate="cx", extra='{"gate_error": {"ecr": 0.03125}}'),
        coupling(control=1, target=2),
    ]


def test_camel_case_calibration_data_is_read_too() -> None:
    info = {"calibrationData": {"qubitConnectivity": ["(0,1)"], "t1": {"0": 9.0}, "roError": {"1": 0.5},
                                "gateError": {"sx": {"1": 0.25}}}}
    rows = calibration_rows([device(info, calibrated_at="2025-06-02T06:30:00Z")], SEEN, set())
    assert [(r["qubit_id"], r["t1"], r["readout_assignment_error"], r["fidelity"]) for r in rows.qubits.to_pylist()] \
        == [(0, 9.0, None, None), (1, None, 0.5, 0.75)]
    assert [(r["control"], r["target"]) for r in rows.couplings.to_pylist()] == [(0, 1)]


def test_calibrated_at_is_the_devices_else_the_one_in_device_info() -> None:
    inside = {**DOCUMENTED, "calibrated_at": "2025-06-01T00:00:00Z"}
    assert read_calibration(device(inside, calibrated_at="2025-06-02T06:30:00Z")).calibrated_at == CALIBRATED
    assert read_calibration(device(inside)).calibrated_at == datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("info", [None, "", {"n_nodes": 4, "max_qubits": 128}, {"qubits": [], "couplings": []}])
def test_a_device_without_a_calibration_gives_no_rows_and_no_note(info: object) -> None:
    rows = calibration_rows([device(info, device_type="simulator")], SEEN, set())
    assert (rows.qubits.num_rows, rows.couplings.num_rows, rows.new, rows.errors) == (0, 0, [], [])


@pytest.mark.parametrize(("info", "fields", "problem"), [
    ("{not json", {}, "device_info is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                      "(char 1)"),
    ({**DOCUMENTED, "calibrated_at": None}, {}, "it names no calibrated_at, so it cannot be told from the next "
                                                "calibration"),
    (DOCUMENTED, {"calibrated_at": "yesterday"}, "calibrated_at is not an ISO-8601 date-time: 'yesterday'"),
    ({**DOCUMENTED, "qubits": [{"id": 0, "qubit_lifetime": {"t1": "n/a"}}]}, {},
     "qubits[0].qubit_lifetime.t1 is not a number: 'n/a'"),
    ({**DOCUMENTED, "qubits": [{"id": "0"}]}, {}, "qubits[0].id is not an integer: '0'"),
    ({**DOCUMENTED, "qubits": [{"id": 3}, {"id": 3}]}, {}, "qubit id 3 appears twice"),
    ({**DOCUMENTED, "qubits": {"0": {}}}, {}, "qubits is a dict ({'0': {}}), not a list"),
    ({**DOCUMENTED, "couplings": [{"control": 0}]}, {}, "couplings[0].target is not an integer: None"),
    ({**DOCUMENTED, "qubits": [{"id": 0, "meas_error": 0.02}]}, {}, "qubits[0].meas_error is a float (0.02), not an "
                                                                   "object"),
    ({"calibration_data": {"t1": {"q0": 50.0}}}, {"calibrated_at": "2025-06-02T06:30:00Z"},
     "calibration_data.t1 is keyed by 'q0', not by a qubit number"),
    ({"calibration_data": {"qubit_connectivity": ["0-1-2"]}}, {"calibrated_at": "2025-06-02T06:30:00Z"},
     "calibration_data.qubit_connectivity[0] is not a pair of qubits: '0-1-2'"),
])
def test_a_malformed_calibration_is_noted_and_the_devices_snapshot_is_kept(info: object, fields: dict,
                                                                           problem: str) -> None:
    records = [device(info, **fields), {**device(DOCUMENTED), "device_id": "Urchin"}]
    rows = calibration_rows(records, SEEN, set())
    assert rows.errors == [(None, "calibration", f"device 'Kawasaki': its calibration is left out ({problem}); the "
                                                 "device snapshot keeps device_info as sent")]
    assert rows.new == [("Urchin", CALIBRATED)] and set(rows.qubits["device_id"].to_pylist()) == {"Urchin"}
    snapshot = devices_snapshot(records, SEEN)
    assert snapshot.errors == [] and snapshot.table["device_id"].to_pylist() == ["Kawasaki", "Urchin"]
    assert snapshot.table["device_info"][0].as_py() == records[0]["device_info"]


def test_a_calibration_already_stored_is_not_stored_again_and_a_new_one_is() -> None:
    known = {("Kawasaki", CALIBRATED)}
    assert calibration_rows([device(DOCUMENTED)], SEEN, known).new == []
    later = device(DOCUMENTED, calibrated_at="2025-06-02T12:30:00Z")
    rows = calibration_rows([later, later], SEEN, known)  # the same calibration twice in one answer: once
    assert rows.new == [("Kawasaki", datetime(2025, 6, 2, 12, 30, tzinfo=UTC))] and rows.qubits.num_rows == 2
    assert known == {("Kawasaki", CALIBRATED), ("Kawasaki", datetime(2025, 6, 2, 12, 30, tzinfo=UTC))}


def test_records_that_are_not_devices_are_left_to_the_devices_table() -> None:
    rows = calibration_rows([None, "Kawasaki", {"device_info": json.dumps(DOCUMENTED)}], SEEN, set())
    assert (rows.qubits.num_rows, rows.errors) == (0, [])
    assert calibration_rows({"not": "a list"}, SEEN, set()).errors == []
