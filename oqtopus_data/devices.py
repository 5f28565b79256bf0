"""`GET /devices` records to the `devices` table: one snapshot of every device per export run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from . import schema as S
from .times import parse_time


def devices_table(devices: Iterable[Mapping[str, Any]], snapshot_at: datetime) -> pa.Table:
    """A `devices` table from device records; calibration data is kept as JSON text."""
    columns: dict[str, list[Any]] = {name: [] for name in S.DEVICES.column_names}
    for device in devices:
        if not isinstance(device, Mapping) or not isinstance(device.get("device_id"), str):
            raise ValueError(f"a device record has no device_id: {str(device)[:80]}")
        info = device.get("device_info")
        row = {
            "snapshot_at": snapshot_at,
            "device_id": device["device_id"],
            "device_type": _text(device.get("device_type")),
            "status": _text(device.get("status")),
            "available_at": parse_time(device.get("available_at")),
            "n_pending_jobs": _int(device.get("n_pending_jobs")),
            "n_qubits": _int(device.get("n_qubits")),
            "basis_gates": _strings(device.get("basis_gates")),
            "supported_instructions": _strings(device.get("supported_instructions")),
            "calibrated_at": parse_time(device.get("calibrated_at")),
            "description": _text(device.get("description")),
            "device_info": info if info is None or isinstance(info, str) else json.dumps(info, sort_keys=True),
        }
        for name, values in columns.items():
            values.append(row[name])
    return pa.table({f.name: pa.array(columns[f.name], f.type) for f in S.DEVICES.schema}, schema=S.DEVICES.schema)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None
