"""The fake cloud's devices as GET /devices returns them, calibration data included."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from typing import Any

from oqtopus_data.testing.catalog import DEVICES, S, mix


def device_records(seed: int, end_us: int, pending: list[int],
                   iso: Callable[[int], str]) -> list[dict[str, Any]]:
    """GET /devices for a history ending `end_us` after its start; `pending[k]`: open jobs of DEVICES[k]."""
    calibrated = end_us - 6 * 3600 * S
    out = []
    for k, (dev_id, dev_type, n_qubits, _, status, gates, text) in enumerate(DEVICES):
        d: dict[str, Any] = {"device_id": dev_id, "device_type": dev_type, "status": status}
        if status == "unavailable":
            d["available_at"] = iso(end_us + 3 * 86400 * S)
        d.update(n_pending_jobs=pending[k], n_qubits=n_qubits, basis_gates=list(gates),
                 supported_instructions=["measure", "barrier", "reset"],
                 device_info=device_info(seed, k, iso(calibrated)))
        if dev_type == "QPU":
            d["calibrated_at"] = iso(calibrated)
        d["description"] = text
        out.append(d)
    return out


@functools.lru_cache(maxsize=64)
def device_info(seed: int, k: int, calibrated_at: str) -> str:
    """The device_info JSON text of DEVICES[k]: per-qubit calibration for a QPU, sizes for a simulator."""
    dev_id, dev_type, n = DEVICES[k][0], DEVICES[k][1], DEVICES[k][2]
    if dev_type != "QPU":
        return json.dumps({"n_nodes": 4 if dev_id == "SVSim" else 1, "max_qubits": n})
    rng = random.Random(mix(seed, -3, k))
    qubits = [{"physical_id": q, "fidelity": round(rng.uniform(0.99, 0.9999), 5),
               "meas_error": {"prob_meas1_prep0": round(rng.uniform(0.005, 0.05), 5),
                              "prob_meas0_prep1": round(rng.uniform(0.01, 0.08), 5)},
               "qubit_lifetime": {"t1": round(rng.uniform(40, 150), 2),
                                  "t2": round(rng.uniform(20, 120), 2)},
               "gate_duration": {"rz": 0, "sx": 40, "x": 40}} for q in range(n)]
    couplings = [{"control": q, "target": q + 1, "fidelity": round(rng.uniform(0.95, 0.995), 5),
                  "gate_duration": {"cx": 400}} for q in range(n - 1)]
    return json.dumps({"n_nodes": 1, "qubits": qubits, "couplings": couplings,
                       "calibrated_at": calibrated_at})
