"""Calibrations in `GET /devices`' device_info, as rows of the qubit_calibrations and coupling_calibrations tables.

Two shapes are read. The documented one (oqtopus-team's device topology, which the web console draws): `qubits`, each
with id, physical_id, position{x, y}, fidelity, meas_error{prob_meas1_prep0, prob_meas0_prep1,
readout_assignment_error}, qubit_lifetime{t1, t2}, gate_duration{x, sx, rz}, and `couplings`, each with control,
target, fidelity, gate_duration{<gate>: ns}. The older one: `calibration_data`, whose metrics (t1, t2, ro_error,
gate_error{gate: {qubit or "(a,b)": error}}, ...) are each keyed by qubit, with `qubit_connectivity` listing the pairs.
What a qubit or coupling carries that no column declares is kept in its `extra` (JSON text); what belongs to the device
as a whole stays in devices.device_info, which keeps the text as sent.

A calibration is keyed by (device_id, calibrated_at) and stored once: the caller passes the keys already stored.
A calibration that cannot be read whole is left out with a note naming the device and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from oqtopus_data.results.payload import short_repr
from oqtopus_data.tables import schema as S
from oqtopus_data.tables import storable as st
from oqtopus_data.times import TimeError, parse_datetime

#: The stage of a calibration's `errors` row.
STAGE = "calibration"

Key = tuple[str, datetime]

#: Column <- path inside a qubit object of the documented shape.
QUBIT_PATHS: dict[str, tuple[str, ...]] = {
    "physical_id": ("physical_id",),
    "t1": ("qubit_lifetime", "t1"),
    "t2": ("qubit_lifetime", "t2"),
    "fidelity": ("fidelity",),
    "prob_meas1_prep0": ("meas_error", "prob_meas1_prep0"),
    "prob_meas0_prep1": ("meas_error", "prob_meas0_prep1"),
    "readout_assignment_error": ("meas_error", "readout_assignment_error"),
    "gate_duration_x": ("gate_duration", "x"),
    "gate_duration_sx": ("gate_duration", "sx"),
    "gate_duration_rz": ("gate_duration", "rz"),
    "position_x": ("position", "x"),
    "position_y": ("position", "y"),
}
#: Older servers' qubit metrics: column <- key in calibration_data.
LEGACY_QUBIT_METRICS = {"t1": "t1", "t2": "t2", "readout_assignment_error": "ro_error"}
#: The single-qubit gates whose error gives `fidelity` (1 - error) for older servers, in order of preference.
PREFERRED_1Q_GATES = ("sx", "x")
_CAMEL = {"calibrationData": "calibration_data", "qubitConnectivity": "qubit_connectivity", "roError": "ro_error",
          "gateError": "gate_error"}
_PAIR = re.compile(r"^\s*[(\[]?\s*(\d+)\s*[,_\- ]\s*(\d+)\s*[)\]]?\s*$")
_QUBIT = re.compile(r"^\s*(\d+)\s*$")


class CalibrationError(ValueError):
    """A calibration that cannot be read whole; the message says where and why."""


@dataclass
class Calibration:
    """One device's calibration: its key and its rows (every declared column but first_seen_at)."""

    device_id: str
    calibrated_at: datetime
    qubits: list[dict[str, Any]]
    couplings: list[dict[str, Any]]

    @property
    def key(self) -> Key:
        return (self.device_id, self.calibrated_at)


@dataclass
class CalibrationRows:
    """The rows of the calibrations not stored yet, the keys they add, and the devices whose calibration was left
    out as (None, "calibration", message) rows for the `errors` table."""

    qubits: pa.Table
    couplings: pa.Table
    new: list[Key] = field(default_factory=list)
    errors: list[tuple[None, str, str]] = field(default_factory=list)


def calibration_rows(devices: Any, seen_at: datetime, known: set[Key]) -> CalibrationRows:
    """The calibrations of `GET /devices`' records whose key is not in `known` (which gains them), first seen at
    `seen_at`; a record that is not a device object is skipped (the devices table notes it)."""
    qubits: list[dict[str, Any]] = []
    couplings: list[dict[str, Any]] = []
    out = CalibrationRows(S.empty_table("qubit_calibrations"), S.empty_table("coupling_calibrations"))
    for device in devices if isinstance(devices, list | tuple) else []:
        if not isinstance(device, Mapping) or not isinstance(device.get("device_id"), str):
            continue
        try:
            calibration = read_calibration(device)
        except ValueError as exc:
            out.errors.append((None, STAGE, f"device {device['device_id'][:80]!r}: its calibration is left out "
                                            f"({exc}); the device snapshot keeps device_info as sent"))
            continue
        if calibration is None or calibration.key in known:
            continue
        known.add(calibration.key)
        out.new.append(calibration.key)
        stamp = {"device_id": calibration.device_id, "calibrated_at": calibration.calibrated_at,
                 "first_seen_at": seen_at}
        qubits += [{**row, **stamp} for row in calibration.qubits]
        couplings += [{**row, **stamp} for row in calibration.couplings]
    out.qubits, out.couplings = _table("qubit_calibrations", qubits), _table("coupling_calibrations", couplings)
    return out


def read_calibration(device: Mapping[str, Any]) -> Calibration | None:
    """The calibration in one device record, None when it has none (a simulator), CalibrationError when it cannot be
    read whole."""
    info = _device_info(device.get("device_info"))
    if info is None:
        return None
    if "qubits" in info or "couplings" in info:
        qubits = [_qubit(q, f"qubits[{i}]") for i, q in enumerate(_list(info.get("qubits"), "qubits"))]
        couplings = [_coupling(c, f"couplings[{i}]") for i, c in enumerate(_list(info.get("couplings"), "couplings"))]
    else:
        legacy = next((info[k] for k in ("calibration_data", "calibrationData") if info.get(k) is not None), None)
        if legacy is None:
            return None
        qubits, couplings = _legacy(_object(legacy, "calibration_data"))
    if not qubits and not couplings:
        return None
    device_id = device.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise CalibrationError("the device has no device_id")
    _unique([q["qubit_id"] for q in qubits], "qubit id")
    _unique([(c["control"], c["target"]) for c in couplings], "coupling")
    return Calibration(st.utf8(device_id, "device_id"), _calibrated_at(device, info), qubits, couplings)


# -- the pieces of a record -----------------------------------------------------------------------------------------

def _device_info(value: Any) -> Mapping[str, Any] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise CalibrationError(f"device_info is not JSON: {str(exc)[:80]}") from None
    return _object(value, "device_info")


def _calibrated_at(device: Mapping[str, Any], info: Mapping[str, Any]) -> datetime:
    """The device's calibrated_at (the API's field), else device_info's: without one a calibration cannot be told
    from the next."""
    for where, value in (("calibrated_at", device.get("calibrated_at")),
                         ("device_info.calibrated_at", info.get("calibrated_at"))):
        if value is not None:
            try:
                when = parse_datetime(value, where)
            except TimeError as exc:
                raise CalibrationError(str(exc)) from None
            assert when is not None
            return when
    raise CalibrationError("it names no calibrated_at, so it cannot be told from the next calibration")


def _qubit(value: Any, where: str) -> dict[str, Any]:
    qubit = _object(value, where)
    row = {"qubit_id": _id(qubit.get("id"), f"{where}.id")}
    rest = {k: v for k, v in qubit.items() if k != "id"}
    for column, path in QUBIT_PATHS.items():
        found = _pop(rest, path, where)
        row[column] = _id(found, f"{where}.physical_id", required=False) if column == "physical_id" \
            else st.float64(found, f"{where}.{'.'.join(path)}")
    row["extra"] = _extra(rest, where)
    return row


def _coupling(value: Any, where: str) -> dict[str, Any]:
    coupling = _object(value, where)
    rest = {k: v for k, v in coupling.items() if k not in ("control", "target", "fidelity", "gate_duration")}
    row = {"control": _id(coupling.get("control"), f"{where}.control"),
           "target": _id(coupling.get("target"), f"{where}.target"),
           "fidelity": st.float64(coupling.get("fidelity"), f"{where}.fidelity"), "gate": None, "gate_duration": None}
    durations = coupling.get("gate_duration")
    if durations is not None:
        durations = dict(_object(durations, f"{where}.gate_duration"))
        if durations:  # the first gate named is the coupling's; others are kept in extra
            gate = next(iter(durations))
            row["gate"] = st.utf8(gate, f"{where}.gate_duration")
            row["gate_duration"] = st.float64(durations.pop(gate), f"{where}.gate_duration.{gate}")
        if durations:
            rest["gate_duration"] = durations
    row["extra"] = _extra(rest, where)
    return row


def _legacy(data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the older calibration_data: metrics keyed by qubit, gate errors keyed by qubit or pair."""
    data = {_CAMEL.get(k, k): v for k, v in data.items()}
    qubits: dict[int, dict[str, Any]] = {}
    couplings: dict[tuple[int, int], dict[str, Any]] = {}

    def qubit(key: Any, where: str) -> dict[str, Any]:
        number = _qubit_key(key, where)
        return qubits.setdefault(number, {"qubit_id": number, "extra": {}})

    def coupling(pair: tuple[int, int]) -> dict[str, Any]:
        return couplings.setdefault(pair, {"control": pair[0], "target": pair[1], "fidelity": None, "gate": None,
                                           "extra": {}})

    for column, key in LEGACY_QUBIT_METRICS.items():
        for q, value in _object(data.get(key) or {}, f"calibration_data.{key}").items():
            qubit(q, f"calibration_data.{key}")[column] = st.float64(value, f"calibration_data.{key}.{q}")
    for i, item in enumerate(_list(data.get("qubit_connectivity"), "calibration_data.qubit_connectivity")):
        coupling(_pair(item, f"calibration_data.qubit_connectivity[{i}]"))
    for gate, errors in _object(data.get("gate_error") or {}, "calibration_data.gate_error").items():
        where = f"calibration_data.gate_error.{gate}"
        for key, value in _object(errors, where).items():
            error = st.float64(value, f"{where}.{key}")
            pair = _PAIR.match(str(key))
            row = coupling((int(pair[1]), int(pair[2]))) if pair else qubit(key, where)
            row["extra"].setdefault("gate_error", {})[gate] = error
    for key, value in data.items():  # other metrics keyed by qubit: kept per qubit
        if key not in (*LEGACY_QUBIT_METRICS.values(), "gate_error", "qubit_connectivity") \
                and isinstance(value, Mapping) and value and all(_QUBIT.match(str(k)) for k in value):
            for q, metric in value.items():
                qubit(q, f"calibration_data.{key}")["extra"][key] = metric
    return ([_legacy_row(qubits[q], PREFERRED_1Q_GATES) for q in sorted(qubits)],
            [_legacy_row(couplings[p], ()) for p in sorted(couplings)])


def _legacy_row(row: dict[str, Any], preferred: tuple[str, ...]) -> dict[str, Any]:
    """Fidelity = 1 - the error of the preferred gate (else the first listed); the other gates' errors stay in
    extra. A coupling's `gate` names the gate its fidelity is of."""
    errors = row["extra"].get("gate_error", {})
    gate = next((g for g in preferred if g in errors), next(iter(errors), None))
    if gate is not None:
        row["fidelity"] = 1.0 - errors.pop(gate)
        if "gate" in row:
            row["gate"] = st.utf8(str(gate), "calibration_data.gate_error")
        if not errors:
            del row["extra"]["gate_error"]
    columns = S.TABLES["coupling_calibrations" if "control" in row else "qubit_calibrations"].column_names
    out = {name: row.get(name) for name in columns if name not in ("device_id", "calibrated_at", "first_seen_at")}
    out["extra"] = _extra(row["extra"], "calibration_data")
    return out


# -- values ---------------------------------------------------------------------------------------------------------

def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CalibrationError(f"{where} is {_kind(value)}, not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise CalibrationError(f"{where} is {_kind(value)}, not a list")
    return list(value)


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__} ({short_repr(value, 40)})"


def _id(value: Any, where: str, *, required: bool = True) -> int | None:
    if value is None and not required:
        return None
    if type(value) is not int:
        raise CalibrationError(f"{where} is not an integer: {short_repr(value, 40)}")
    return st.int64(value, where)


def _qubit_key(key: Any, where: str) -> int:
    match = _QUBIT.match(str(key))
    if match is None:
        raise CalibrationError(f"{where} is keyed by {short_repr(key, 40)}, not by a qubit number")
    return st.int64(int(match[1]), where)


def _pair(item: Any, where: str) -> tuple[int, int]:
    if isinstance(item, list | tuple) and len(item) == 2 and all(type(v) is int for v in item):
        return (st.int64(item[0], where), st.int64(item[1], where))
    match = _PAIR.match(item) if isinstance(item, str) else None
    if match is None:
        raise CalibrationError(f"{where} is not a pair of qubits: {short_repr(item, 40)}")
    return (st.int64(int(match[1]), where), st.int64(int(match[2]), where))


def _pop(obj: dict[str, Any], path: tuple[str, ...], where: str) -> Any:
    """Take the value at `path` out of `obj` (None when absent), leaving only what no column declares."""
    head, *tail = path
    if not tail:
        return obj.pop(head, None)
    inner = obj.get(head)
    if inner is None:
        obj.pop(head, None)
        return None
    inner = dict(_object(inner, f"{where}.{head}"))
    value = _pop(inner, tuple(tail), f"{where}.{head}")
    if inner:
        obj[head] = inner
    else:
        del obj[head]
    return value


def _extra(rest: Mapping[str, Any], where: str) -> str | None:
    return st.json_text(dict(rest), f"{where} (undeclared keys)") if rest else None


def _unique(keys: Iterable[Any], what: str) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            raise CalibrationError(f"{what} {key} appears twice")
        seen.add(key)


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = S.TABLES[name].schema
    return pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}, schema=schema)
