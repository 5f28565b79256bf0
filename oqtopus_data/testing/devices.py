"""The fake cloud's devices as GET /devices returns them, with calibrations that change over the history's timeline.

Each QPU is recalibrated once per six-hour slot of the timeline (at a random point of the slot's first three hours,
so 3 to 9 hours apart), from the history's start on, without end: GET /devices answers the newest calibration at
or before the server's clock. Values drift (slow per-qubit waves over days, noise per calibration, now and then a
qubit whose T1 collapses), deterministically per seed: the same instant always gives the same calibration.
device_info has the documented shape (qubits with id, physical_id, position, fidelity, meas_error, qubit_lifetime,
gate_duration; couplings with control, target, fidelity, gate_duration), or for `legacy` servers the older
`calibration_data` keyed by qubit.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable
from typing import Any

from oqtopus_data.testing.catalog import DEVICES, S, mix, uniforms

SLOT = 6 * 3600 * S  # one calibration per slot of the timeline
JITTER = 3 * 3600 * S  # at a random point of the slot's first three hours
#: Where a QPU's qubits sit on its chip: physical_id = id + offset (Urchin is a section of a larger chip).
PHYSICAL_OFFSET = {"Urchin": 16}


def device_records(seed: int, now_us: int, pending: list[int], iso: Callable[[int], str], *,
                   legacy: bool = False) -> list[dict[str, Any]]:
    """GET /devices at `now_us` (us after the history start); `pending[k]`: open jobs of DEVICES[k]."""
    out = []
    for k, (dev_id, dev_type, n_qubits, _, status, gates, text) in enumerate(DEVICES):
        d: dict[str, Any] = {"device_id": dev_id, "device_type": dev_type, "status": status}
        if status == "unavailable":
            d["available_at"] = iso(now_us + 3 * 86400 * S)
        d.update(n_pending_jobs=pending[k], n_qubits=n_qubits, basis_gates=list(gates),
                 supported_instructions=["measure", "barrier", "reset"])
        if dev_type == "QPU":
            slot = calibration_slot(seed, k, now_us)
            calibrated = iso(calibrated_us(seed, k, slot))
            d["device_info"] = device_info(seed, k, slot, calibrated, legacy)
            d["calibrated_at"] = calibrated
        else:
            d["device_info"] = json.dumps({"n_nodes": 4 if dev_id == "SVSim" else 1, "max_qubits": n_qubits})
        d["description"] = text
        out.append(d)
    return out


def calibrated_us(seed: int, k: int, slot: int) -> int:
    """When QPU DEVICES[k] was calibrated in `slot` (us after the history start)."""
    return slot * SLOT + int(uniforms(seed, slot, f"calibration-{k}")[0] * JITTER) // S * S  # whole seconds


def calibration_slot(seed: int, k: int, t_us: int) -> int:
    """The slot of QPU DEVICES[k]'s newest calibration at or before `t_us`."""
    slot = t_us // SLOT
    return slot if calibrated_us(seed, k, slot) <= t_us else slot - 1


@functools.lru_cache(maxsize=256)
def device_info(seed: int, k: int, slot: int, calibrated_at: str, legacy: bool = False) -> str:
    """The device_info JSON text of QPU DEVICES[k] calibrated in `slot`."""
    qubits, couplings = _calibration(seed, k, slot)
    if legacy:
        gate = _two_qubit_gate(k)
        return json.dumps({"calibration_data": {
            "qubit_connectivity": [f"({c['control']},{c['target']})" for c in couplings],
            "t1": {str(q["id"]): q["qubit_lifetime"]["t1"] for q in qubits},
            "t2": {str(q["id"]): q["qubit_lifetime"]["t2"] for q in qubits},
            "ro_error": {str(q["id"]): q["meas_error"]["readout_assignment_error"] for q in qubits},
            "gate_error": {"sx": {str(q["id"]): round(1 - q["fidelity"], 6) for q in qubits},
                           gate: {f"({c['control']},{c['target']})": round(1 - c["fidelity"], 6)
                                  for c in couplings}}}})
    return json.dumps({"name": DEVICES[k][0], "device_id": DEVICES[k][0], "qubits": qubits, "couplings": couplings,
                       "calibrated_at": calibrated_at})


def _calibration(seed: int, k: int, slot: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    base = _baseline(seed, k)
    rng = random.Random(mix(seed, slot, -10 - k))
    days = slot * SLOT / (86400 * S)
    qubits = []
    for q, b in enumerate(base["qubits"]):
        wave = 1 + 0.15 * math.sin(2 * math.pi * days / b["period"] + b["phase"])
        t1 = b["t1"] * wave * math.exp(rng.gauss(0, 0.1))
        if rng.random() < 0.03:  # a two-level defect near the qubit's frequency: T1 collapses until it moves away
            t1 *= rng.uniform(0.1, 0.35)
        t2 = min(2 * t1, b["t2"] * wave * math.exp(rng.gauss(0, 0.12)))
        error = min(0.05, b["error"] * (2 - wave) * math.exp(rng.gauss(0, 0.2)))
        p10, p01 = (min(0.4, p * math.exp(rng.gauss(0, 0.15))) for p in (b["p10"], b["p01"]))
        qubits.append({"id": q, "physical_id": q + PHYSICAL_OFFSET.get(DEVICES[k][0], 0),
                       "position": {"x": float(b["x"]), "y": float(b["y"])},
                       "fidelity": round(1 - error, 6),
                       "meas_error": {"prob_meas1_prep0": round(p10, 5), "prob_meas0_prep1": round(p01, 5),
                                      "readout_assignment_error": round((p10 + p01) / 2, 5)},
                       "qubit_lifetime": {"t1": round(t1, 2), "t2": round(t2, 2)},
                       "gate_duration": {"rz": 0, "sx": 40, "x": 40}})
    gate = _two_qubit_gate(k)
    couplings = []
    for c in base["couplings"]:
        error = c["error"] * math.exp(rng.gauss(0, 0.25)) * (4 if rng.random() < 0.05 else 1)
        couplings.append({"control": c["control"], "target": c["target"], "fidelity": round(1 - min(error, 0.3), 5),
                          "gate_duration": {gate: c["duration"]}})
    return qubits, couplings


@functools.lru_cache(maxsize=16)
def _baseline(seed: int, k: int) -> dict[str, Any]:
    """What stays of a QPU between calibrations: its grid, each qubit's typical values and drift, its couplings."""
    n = DEVICES[k][2]
    width = math.isqrt(n)
    rng = random.Random(mix(seed, -3, k))
    qubits = []
    for q in range(n):
        t1 = rng.uniform(60, 160)
        qubits.append({"x": q % width, "y": q // width, "t1": t1, "t2": min(2 * t1, t1 * rng.uniform(0.5, 1.4)),
                       "error": rng.uniform(2e-4, 2e-3), "p10": rng.uniform(0.005, 0.03),
                       "p01": rng.uniform(0.01, 0.06), "period": rng.uniform(3, 20),
                       "phase": rng.uniform(0, 2 * math.pi)})
    pairs = [(q, q + 1) for q in range(n) if (q + 1) % width] + [(q, q + width) for q in range(n - width)]
    couplings = [{"control": a, "target": b, "error": rng.uniform(0.005, 0.03), "duration": rng.randrange(300, 520, 4)}
                 for a, b in sorted(pairs)]
    return {"qubits": qubits, "couplings": couplings}


def _two_qubit_gate(k: int) -> str:
    return next(g for g in ("cx", "ecr", "cz") if g in DEVICES[k][5])
