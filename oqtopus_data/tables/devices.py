"""`GET /devices` records to the `devices` table: one snapshot of every device per export run.

A record that is not a device object, or a value that does not fit its column (`n_qubits` of 2^70, a lone surrogate
in a description, ...), leaves that device out with a note; the other devices are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from oqtopus_data.tables import schema as S
from oqtopus_data.tables import storable as st
from oqtopus_data.times import parse_time

#: The stage of a device's `errors` row.
STAGE = "devices"


@dataclass
class DeviceSnapshot:
    """The devices table of one snapshot, and the records left out of it as (None, "devices", message) rows
    for the `errors` table (no job id: the message names the device)."""

    table: pa.Table
    errors: list[tuple[None, str, str]] = field(default_factory=list)


def devices_snapshot(devices: Any, snapshot_at: datetime) -> DeviceSnapshot:
    """The `devices` table from `GET /devices`' records; calibration data is kept as JSON text."""
    columns: dict[str, list[Any]] = {name: [] for name in S.DEVICES.column_names}
    errors: list[tuple[None, str, str]] = []
    if not isinstance(devices, list | tuple):
        errors.append((None, STAGE, f"GET /devices did not answer a list of devices but {type(devices).__name__}"))
        devices = []
    for i, device in enumerate(devices):
        try:
            row = _row(device, snapshot_at)
        except ValueError as exc:
            errors.append((None, STAGE, f"device {_name(device, i)} left out of the snapshot: {exc}"))
            continue
        for name, values in columns.items():
            values.append(row[name])
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in S.DEVICES.schema}, schema=S.DEVICES.schema)
    return DeviceSnapshot(table, errors)


def devices_table(devices: Iterable[Mapping[str, Any]], snapshot_at: datetime) -> pa.Table:
    """The `devices` table, refusing the whole snapshot (ValueError naming every bad record) if any record is bad;
    `devices_snapshot` keeps the good ones instead."""
    snapshot = devices_snapshot(list(devices), snapshot_at)
    if snapshot.errors:
        raise ValueError("; ".join(message for _, _, message in snapshot.errors))
    return snapshot.table


def _row(device: Any, snapshot_at: datetime) -> dict[str, Any]:
    if not isinstance(device, Mapping):
        raise st.Unstorable(f"a {type(device).__name__}, not a device object")
    device_id = device.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise st.Unstorable("no device_id")
    return {
        "snapshot_at": snapshot_at,
        "device_id": st.utf8(device_id, "device_id"),
        "device_type": st.text(device.get("device_type"), "device_type"),
        "status": st.text(device.get("status"), "status"),
        "available_at": parse_time(device.get("available_at")),
        "n_pending_jobs": st.int64(_int(device.get("n_pending_jobs")), "n_pending_jobs"),
        "n_qubits": st.int64(_int(device.get("n_qubits")), "n_qubits"),
        "basis_gates": _strings(device.get("basis_gates"), "basis_gates"),
        "supported_instructions": _strings(device.get("supported_instructions"), "supported_instructions"),
        "calibrated_at": parse_time(device.get("calibrated_at")),
        "description": st.text(device.get("description"), "description"),
        "device_info": st.text(device.get("device_info"), "device_info"),  # JSON text as sent, an object as JSON
    }


def _name(device: Any, index: int) -> str:
    device_id = device.get("device_id") if isinstance(device, Mapping) else None
    if isinstance(device_id, str):
        return repr(device_id[:80])  # repr: a lone surrogate in it stays writable
    return f"#{index} of the list"


def _int(value: Any) -> int | None:
    # Counts sent as something else than an integer (text, a float) are left empty, as before.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(value: Any, name: str) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return st.strings([v if isinstance(v, str) else str(v) for v in value], name)


def fetch_devices(api: Any) -> tuple[list[dict[str, Any]] | None, str | None]:
    """GET /devices (`api` is an ApiClient), or None and why it failed: a run notes that and goes on."""
    from oqtopus_data.errors import ApiError

    try:
        return api.get_devices(), None
    except ApiError as exc:
        return None, str(exc)


def check_device_names(names: Iterable[str], known: Iterable[Any]) -> None:
    """Refuse a device name nobody has heard of (ValueError naming it, with a suggestion and the known ones)."""
    known = sorted({k for k in known if isinstance(k, str)})
    for name in names:
        if name not in known:
            raise ValueError(f"--device {name}: no such device{_suggestion(name, known)} "
                             f"(devices: {', '.join(known) or 'none'})")


def _suggestion(name: str, known: list[str]) -> str:
    """ "; did you mean X?" for a name differing in case or by a few letters from a known one, else ""."""
    import difflib

    same = [k for k in known if k.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
