"""The light part of a submitted job: fields, lifecycle timestamps, message, which archives it has."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, NamedTuple

from oqtopus_data.testing.catalog import (
    ARCHIVE_KEYS,
    CANCEL,
    CANCELLING,
    DESCRIPTIONS,
    DEVICES,
    EST_CUM,
    EST_SHOTS,
    FAIL,
    FAIL_MESSAGES,
    JOB_TYPES,
    NAME_LIST,
    OK,
    READY,
    RUN,
    SHOTS,
    SHOTS_CUM,
    STATUSES,
    SUB,
    S,
    uniforms,
)


class Meta(NamedTuple):
    """A job without job_info, its job_info archive keys, message and undeclared job_info values."""

    job: dict[str, Any]
    keys: tuple[str, ...]
    message: str | None
    info_extras: dict[str, Any]


def submitted_job(*, seed: int, idx: int, job_id: str, job_type: int, name: int,
                  description: int, device: int, width: int, status: int, stage: int | None,
                  submitted_us: int, iso: Callable[[int], str]) -> tuple[
                      dict[str, Any], tuple[str, ...], str | None]:
    """The job object without job_info, its job_info archive keys and its message.

    `stage`: the stage a job finished through `finish()` had reached (None: drawn per job).
    """
    st, jt, dev = status, job_type, DEVICES[device]
    u = uniforms(seed, idx)  # cheaper than a seeded Random on this hot path
    qpu = dev[1] == "QPU"
    cum, table = (EST_CUM, EST_SHOTS) if jt == 1 else (SHOTS_CUM, SHOTS)
    shots = table[min(bisect_right(cum, u[0] * cum[-1]), len(cum) - 1)][0]
    sub = submitted_us
    ready = sub + (0.2 + 19.8 * u[1]) * S
    running = ready + (min(-300 * math.log(1 - u[2]), 6 * 3600) if qpu
                       else 0.05 + 4.95 * u[2]) * S
    exec_s = ((2 + 58 * u[3]) * (1 + math.log10(shots + 1) / 3) if qpu
              else (0.01 + 0.19 * u[3]) * (1 + width / 8))
    times = [sub, ready, running, running + (exec_s + 0.01 + 1.99 * u[4]) * S]
    for k in range(1, 4):
        t = int(times[k])
        times[k] = max(-(-t // S) * S, times[k - 1] + S) if sub % S == 0 else max(
            t, times[k - 1] + 1)
    default_stage = (RUN if u[5] < 0.7 else READY) if st == FAIL else (
        (SUB, SUB, READY, RUN, RUN)[int(u[5] * 5)])
    stage = stage or (
        RUN if st in (OK, CANCELLING) else default_stage if st in (FAIL, CANCEL) else st)
    message = (FAIL_MESSAGES[int(u[6] * len(FAIL_MESSAGES))] if st == FAIL else
               ("cancelled by user" if u[6] < 0.5 else None) if st == CANCEL else None)
    job: dict[str, Any] = {"job_id": job_id, "name": NAME_LIST[name]}
    if description:
        job["description"] = DESCRIPTIONS[description]
    job.update(job_type=JOB_TYPES[jt], status=STATUSES[st], device_id=dev[0], shots=shots)
    job.update(_infos(u, dev, width))
    terminal = st in (OK, FAIL, CANCEL)
    if terminal and stage == RUN and st != CANCEL:
        job["execution_time"] = round(exec_s, 6)
    job["submitted_at"] = iso(times[0])
    for level, key, t in ((READY, "ready_at", times[1]), (RUN, "running_at", times[2])):
        if stage >= level:
            job[key] = iso(t)
    if terminal:
        job["ended_at"] = iso(times[3])
    return job, archive_keys(jt, st, stage), message


def archive_keys(jt: int, st: int, stage: int) -> tuple[str, ...]:
    """The job_info archives of a job of type `jt` in status `st` that reached `stage`."""
    keys = ["input"]
    if jt == 2:
        keys.append("combined_program")
    ran = st == OK or (st == FAIL and stage == RUN)
    if st == OK:
        keys.append("result")
    if ran and jt != 3:
        keys.append("transpile_result")
    if ran and jt == 3:
        keys.append("sse_log")
    return tuple(k for k in ARCHIVE_KEYS if k in keys)


def _infos(u: list[float], dev: tuple, width: int) -> dict[str, Any]:
    """transpiler_info, simulator_info and mitigation_info, each sometimes absent or empty."""
    out: dict[str, Any] = {}
    if u[7] >= 0.3:
        first = int(u[8] * (dev[2] - min(width, 4) + 1))  # neighbouring physical qubits
        out["transpiler_info"] = {} if u[7] < 0.45 else {
            "qubit_allocation": {str(q): first + q for q in range(min(width, 4))},
            "skip_transpilation": False, "seed_transpilation": int(u[9] * 1000)}
    if dev[1] == "simulator":
        out["simulator_info"] = {"n_qubits": width, "n_nodes": 1, "n_per_node": 1,
                                 "seed_simulation": int(u[10] * 10000)}
    if u[11] < 0.6:
        out["mitigation_info"] = {} if u[11] < 0.2 else {"ro_error_mitigation": "pseudo_inverse"}
    return out


def with_job_info(job: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A copy of `job` with `job_info` placed where the API puts it (after shots)."""
    out: dict[str, Any] = {}
    for key, value in job.items():
        out[key] = value
        if key == "shots":
            out["job_info"] = info
    return out
