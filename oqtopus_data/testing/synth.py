"""Deterministic synthetic OQTOPUS job history: the fake cloud's data and the tests' ground truth.

Only a few bytes per job are held (submission time, type, status, device, name, width); the rest
of a job, from its shots to its counts and programs, is rebuilt on demand from (seed, job index),
so 200,000 jobs fit in a few MB and the same job always yields the same content.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import random
import re
import struct
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

JOB_TYPES = ("sampling", "estimation", "multi_manual", "sse")
STATUSES = ("registered", "submitted", "ready", "running", "cancelling",
            "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
JOB_FIELDS = ("job_id", "name", "description", "job_type", "status", "device_id", "shots",
              "job_info", "transpiler_info", "simulator_info", "mitigation_info",
              "execution_time", "submitted_at", "ready_at", "running_at", "ended_at")
ARCHIVE_KEYS = ("input", "combined_program", "result", "transpile_result", "sse_log")
ARCHIVE_ENTRIES = {"input": "input.json", "combined_program": "combined_program.json",
                   "result": "result.json", "transpile_result": "transpile_result.json",
                   "sse_log": "sse_log.log"}
LEGACY_QUIRKS = ("counts_as_string", "exp_value_complex", "program_at_top")

_S = 1_000_000  # microseconds per second
_REG, _SUB, _READY, _RUN, _CANCELLING, _OK, _FAIL, _CANCEL = range(8)
_STAGES = (_SUB, _READY, _RUN)
_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# device_id, device_type, n_qubits, weight, status, basis_gates, description
_DEVICES = (
    ("SVSim", "simulator", 128, 35, "available", ("x", "y", "z", "h", "s", "sdg", "t", "tdg",
     "rx", "ry", "rz", "cx", "ccx"), "State-vector simulator (MPS backend for wide registers)"),
    ("Kawasaki", "QPU", 64, 30, "available", ("sx", "x", "rz", "cx"),
     "64-qubit superconducting QPU"),
    ("Urchin", "QPU", 16, 15, "unavailable", ("sx", "x", "rz", "ecr"),
     "16-qubit superconducting QPU (maintenance)"),
    ("qulacs", "simulator", 30, 20, "available", ("x", "y", "z", "h", "rx", "ry", "rz", "cx"),
     "Qulacs state-vector simulator"),
)
_NOISE = {"SVSim": 0.0, "qulacs": 0.0, "Kawasaki": 0.03, "Urchin": 0.05}
# (name, width (0 = random 2..20), weight, family)
_NAMES = {
    "sampling": (("bell-pair", 2, 20, "ghz"), ("ghz-5", 5, 10, "ghz"), ("ghz-12", 12, 5, "ghz"),
                 ("ghz-20", 20, 3, "ghz"), ("qft-8", 8, 6, "random"), ("grover-4", 4, 6, "random"),
                 ("random-circuit", 0, 15, "random"), ("qaoa-maxcut-16", 16, 5, "random"),
                 ("rb-1q", 1, 2, "ghz"), ("benchmark-40", 40, 2, "ghz"),
                 ("benchmark-64", 64, 2, "ghz"), ("wide-register-70", 70, 1, "random"),
                 ("wide-register-100", 100, 0.6, "random")),
    "estimation": (("vqe-h2-step-", 2, 60, "vqe"), ("vqe-lih-step-", 4, 20, "vqe"),
                   ("heisenberg-6", 6, 10, "est"), ("ising-zz-8", 8, 10, "est")),
    "multi_manual": (("mm-bell-x2", 4, 40, "mm"), ("mm-ghz3-x3", 9, 30, "mm"),
                     ("mm-mixed", 0, 30, "mm")),
    "sse": (("sse-vqe-loop", 2, 40, "ghz"), ("sse-qaoa-sweep", 4, 40, "random"),
            ("sse-calibration-check", 3, 20, "ghz")),
}
_ENERGY = {"vqe-h2-step-": -1.137, "vqe-lih-step-": -7.882, "heisenberg-6": -9.974,
           "ising-zz-8": -7.0}
_DESCRIPTIONS = ("", "nightly drift check", "VQE for H2 at 0.735 Å", "tutorial: my first job",
                 "calibration sweep", "benchmark run for the paper", "retry after maintenance",
                 "QAOA on a 16-node 3-regular graph", "multiprogramming trial",
                 "SSE optimisation loop", "測定テスト (unicode description)")
_FAIL_MESSAGES = ("transpile failed: circuit needs more qubits than the device has",
                  "execution error: device went offline during the run",
                  "timeout: job exceeded the 3600 s limit",
                  "invalid OPENQASM 3: line 4: unknown gate 'foo'",
                  "estimation failed: operator refers to a qubit outside the circuit")
_SHOTS = ((1000, 30), (1024, 15), (2048, 8), (4096, 10), (8192, 5), (10000, 15), (100, 5),
          (100000, 4), (1, 0.5), (1000000, 0.5), (10000000, 0.1))
_EST_SHOTS = ((1000, 20), (4000, 30), (10000, 40), (100000, 10))
# First jobs of a history, so that even small ones show every type and the wide registers.
_COVER = (("sampling", "bell-pair"), ("estimation", "vqe-h2-step-"), ("multi_manual", "mm-mixed"),
          ("sse", "sse-vqe-loop"), ("sampling", "wide-register-70"),
          ("sampling", "wide-register-100"), ("sampling", "benchmark-64"),
          ("sampling", "random-circuit"))


def _mix(seed: int, idx: int, stream: int) -> int:
    """One integer seed per (history seed, job, stream), stable across processes."""
    digest = hashlib.blake2b(f"{seed}:{idx}:{stream}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


@functools.lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


@functools.cache
def _hms(second_of_day: int) -> str:
    hour, rest = divmod(second_of_day, 3600)
    return f"{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _uniforms(seed: int, idx: int) -> list[float]:
    """Sixteen uniform numbers in [0, 1) for one job's light fields, from one hash."""
    digest = hashlib.blake2b(f"{seed}:{idx}:light".encode(), digest_size=64).digest()
    return [x / 4294967296 for x in struct.unpack("<16I", digest)]


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


def _cum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


_NAME_LIST: list[str] = [n for pool in _NAMES.values() for n, *_ in pool if not n.endswith("-")]
_NAME_LIST += [f"{p}{s:03d}" for p in ("vqe-h2-step-", "vqe-lih-step-") for s in range(80)]
_NAME_INDEX = {n: i for i, n in enumerate(_NAME_LIST)}
_TYPE_CUM = _cum([55, 20, 15, 10])
_POOL_CUM = {t: _cum([w for _, _, w, _ in pool]) for t, pool in _NAMES.items()}
_FAMILY = {n: f for pool in _NAMES.values() for n, _, _, f in pool}
_SHOTS_CUM, _EST_CUM = _cum([w for _, w in _SHOTS]), _cum([w for _, w in _EST_SHOTS])
_DEV_TABLES = [(ids, _cum([_DEVICES[i][3] for i in ids]))
               for ids in ([0, 1, 2, 3], [0, 1, 3], [0, 1], [0])]


def _devices_for(width: int) -> tuple[list[int], list[float]]:
    return _DEV_TABLES[0 if width <= 16 else 1 if width <= 30 else 2 if width <= 64 else 3]


def _family(name: str) -> str:
    return _FAMILY.get(name) or _FAMILY[name[:-3]]


def generate_history(n_jobs: int, *, seed: int = 0, start: datetime = _DEFAULT_START,
                     days: int = 300) -> History:
    """Build a deterministic history of `n_jobs` jobs submitted over `days` days from `start`."""
    return History(n_jobs, seed=seed, start=start, days=days)


class History:
    """A compact, mutable synthetic job history; `job()` is the ground truth the API must serve."""

    def __init__(self, n_jobs: int, *, seed: int = 0, start: datetime = _DEFAULT_START,
                 days: int = 300) -> None:
        if n_jobs < 0 or days <= 0:
            raise ValueError("n_jobs must be >= 0 and days > 0")
        self.seed, self.days = seed, days
        self.start = start if start.tzinfo else start.replace(tzinfo=UTC)
        self._lock = threading.RLock()
        self._sub = array("q")  # submitted_at, microseconds after start, strictly increasing
        self._type, self._status, self._dev = bytearray(), bytearray(), bytearray()
        self._width, self._desc = bytearray(), bytearray()
        self._name = array("I")
        self._stage: dict[int, int] = {}  # stage reached by jobs finished through finish()
        self._deleted: set[int] = set()
        self._vqe: dict[str, list[int]] = {}  # series prefix -> [next step, run length]
        self._mask = _mix(seed, -1, 0) & 0xFFFFFFFFFFFF
        self._ids: list[str] | None = None
        self._epoch_us = int(self.start.timestamp()) * _S + self.start.microsecond
        self._meta_cached = functools.lru_cache(maxsize=8192)(self._meta)
        self._build(n_jobs)

    # ---- generation -------------------------------------------------------------------------
    def _build(self, n: int) -> None:
        rng = random.Random(_mix(self.seed, -1, 1))
        gaps = [rng.expovariate(1.0) for _ in range(n)]
        scale = self.days * 86400 * _S * 0.995 / (sum(gaps) or 1.0)
        t = prev = -1
        for i in range(n):
            t += gaps[i] * scale
            us = max(int(t), prev + 1)
            if rng.random() < 0.2 and us // _S * _S > prev:
                us = us // _S * _S  # some servers send whole seconds
            prev = us
            forced = _COVER[i] if n >= 40 and i < len(_COVER) else None
            self._append(rng, us, forced, tail=i >= n - max(3, n // 200))
        if n >= 12:
            for back, st in ((3, _RUN), (2, _READY), (1, _SUB)):
                self._status[n - back] = st
        if n >= 20:
            for i in rng.sample(range(int(n * 0.7), n - 3), 2):
                self._status[i] = _REG
        self._reindex()

    def _append(self, rng: random.Random, us: int, forced: tuple[str, str] | None,
                tail: bool) -> None:
        jt = JOB_TYPES.index(forced[0]) if forced else _pick(rng, _TYPE_CUM)
        pool = _NAMES[JOB_TYPES[jt]]
        k = (next(j for j, p in enumerate(pool) if p[0] == forced[1]) if forced
             else _pick(rng, _POOL_CUM[JOB_TYPES[jt]]))
        name, width = pool[k][0], pool[k][1]
        if width == 0:
            width = rng.randint(2, 20) if jt == 0 else max(4, 2 * rng.randint(1, 2) + 3 * rng.randint(0, 2))
        if name.endswith("-"):
            name = self._vqe_step(rng, name)
        ids, cum = _devices_for(width)
        self._sub.append(us)
        self._type.append(jt)
        self._name.append(_NAME_INDEX[name])
        self._width.append(width)
        self._dev.append(ids[_pick(rng, cum)])
        self._desc.append(0 if rng.random() < 0.35 else rng.randrange(1, len(_DESCRIPTIONS)))
        r = rng.random()
        if tail and r < 0.6:
            st = (_SUB, _SUB, _SUB, _SUB, _READY, _READY, _RUN, _RUN, _RUN, _CANCELLING)[int(r * 16)]
        else:
            r = rng.random()
            st = _OK if r < 0.86 else _FAIL if r < 0.95 else _CANCEL
        self._status.append(st)

    def _vqe_step(self, rng: random.Random, prefix: str) -> str:
        state = self._vqe.setdefault(prefix, [0, rng.randint(20, 80)])
        step = state[0]
        state[0] += 1
        if state[0] >= state[1]:
            state[0], state[1] = 0, rng.randint(20, 80)
        return f"{prefix}{step:03d}"

    def _reindex(self) -> None:
        live = [i for i in range(len(self._sub)) if i not in self._deleted]
        self._order = live
        self._by_status = {s: [i for i in live if self._status[i] == s] for s in range(8)}

    # ---- identity ---------------------------------------------------------------------------
    def job_id(self, idx: int) -> str:
        """The UUID-like id of job number `idx`; its last 12 hex digits encode the index."""
        h = hashlib.blake2b(f"{self.seed}:{idx}".encode(), digest_size=10).hexdigest()
        variant = "89ab"[int(h[15], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{variant}{h[16:19]}-{idx ^ self._mask:012x}"

    def index(self, job_id: str) -> int | None:
        """The index of a live job, or None for an unknown or deleted id."""
        if not isinstance(job_id, str) or len(job_id) != 36:
            return None
        try:
            idx = int(job_id[24:], 16) ^ self._mask
        except ValueError:
            return None
        if idx >= len(self._sub) or idx in self._deleted or self.job_id(idx) != job_id:
            return None
        return idx

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, job_id: object) -> bool:
        return isinstance(job_id, str) and self.index(job_id) is not None

    def __iter__(self) -> Iterator[str]:
        """Iterate over live job ids in submission order (a snapshot; cheap)."""
        return (self.job_id(i) for i in list(self._order))

    def job_ids(self) -> list[str]:
        """Live job ids in submission order."""
        return list(self)

    def jobs(self) -> Iterator[dict[str, Any]]:
        """Iterate lazily over full ground-truth jobs in submission order."""
        return (self.job(j) for j in self)

    def _idx(self, job_id: str) -> int:
        idx = self.index(job_id)
        if idx is None:
            raise KeyError(job_id)
        return idx

    def status(self, job_id: str) -> str:
        """The current status of a job."""
        return STATUSES[self._status[self._idx(job_id)]]

    # ---- metadata ---------------------------------------------------------------------------
    def iso(self, us: int) -> str:
        """An offset from the history start as ISO-8601 with `Z` (microseconds only if needed)."""
        secs, frac = divmod(self._epoch_us + us, _S)
        day, rest = divmod(secs, 86400)
        return f"{_day(day)}T{_hms(rest)}.{frac:06d}Z" if frac else f"{_day(day)}T{_hms(rest)}Z"

    def submitted_us(self, idx: int) -> int:
        """Submission time of job `idx` as microseconds after `start` (the listing sort key)."""
        return self._sub[idx]

    def meta(self, idx: int) -> tuple[dict[str, Any], tuple[str, ...], str | None]:
        """The job without job_info, the job_info archive keys it has, and its message.

        Cached: treat the returned objects as read-only.
        """
        return self._meta_cached(idx, self._status[idx], self._stage.get(idx))

    def _meta(self, idx: int, st: int, _stage: int | None) -> tuple[
            dict[str, Any], tuple[str, ...], str | None]:
        if st == _REG:
            return {"job_id": self.job_id(idx), "status": "registered"}, (), None
        u = _uniforms(self.seed, idx)  # cheaper than a seeded Random on this hot path
        jt, dev, width = self._type[idx], _DEVICES[self._dev[idx]], self._width[idx]
        qpu = dev[1] == "QPU"
        cum, table = (_EST_CUM, _EST_SHOTS) if jt == 1 else (_SHOTS_CUM, _SHOTS)
        shots = table[min(bisect_right(cum, u[0] * cum[-1]), len(cum) - 1)][0]
        sub = self._sub[idx]
        ready = sub + (0.2 + 19.8 * u[1]) * _S
        running = ready + (min(-300 * math.log(1 - u[2]), 6 * 3600) if qpu
                           else 0.05 + 4.95 * u[2]) * _S
        exec_s = ((2 + 58 * u[3]) * (1 + math.log10(shots + 1) / 3) if qpu
                  else (0.01 + 0.19 * u[3]) * (1 + width / 8))
        times = [sub, ready, running, running + (exec_s + 0.01 + 1.99 * u[4]) * _S]
        for k in range(1, 4):
            t = int(times[k])
            times[k] = max(-(-t // _S) * _S, times[k - 1] + _S) if sub % _S == 0 else max(
                t, times[k - 1] + 1)
        default_stage = (_RUN if u[5] < 0.7 else _READY) if st == _FAIL else (
            (_SUB, _SUB, _READY, _RUN, _RUN)[int(u[5] * 5)])
        stage = self._stage.get(idx) or (
            _RUN if st in (_OK, _CANCELLING) else default_stage if st in (_FAIL, _CANCEL) else st)
        message = (_FAIL_MESSAGES[int(u[6] * len(_FAIL_MESSAGES))] if st == _FAIL else
                   ("cancelled by user" if u[6] < 0.5 else None) if st == _CANCEL else None)
        job: dict[str, Any] = {"job_id": self.job_id(idx), "name": _NAME_LIST[self._name[idx]]}
        if self._desc[idx]:
            job["description"] = _DESCRIPTIONS[self._desc[idx]]
        job.update(job_type=JOB_TYPES[jt], status=STATUSES[st], device_id=dev[0], shots=shots)
        job.update(_infos(u, dev, width))
        terminal = st in (_OK, _FAIL, _CANCEL)
        if terminal and stage == _RUN and st != _CANCEL:
            job["execution_time"] = round(exec_s, 6)
        job["submitted_at"] = self.iso(times[0])
        for level, key, t in ((_READY, "ready_at", times[1]), (_RUN, "running_at", times[2])):
            if stage >= level:
                job[key] = self.iso(t)
        if terminal:
            job["ended_at"] = self.iso(times[3])
        return job, self._keys(jt, st, stage), message

    @staticmethod
    def _keys(jt: int, st: int, stage: int) -> tuple[str, ...]:
        keys = ["input"]
        if jt == 2:
            keys.append("combined_program")
        ran = st == _OK or (st == _FAIL and stage == _RUN)
        if st == _OK:
            keys.append("result")
        if ran and jt != 3:
            keys.append("transpile_result")
        if ran and jt == 3:
            keys.append("sse_log")
        return tuple(keys)

    # ---- ground truth -------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        """The full job as the API returns it, with job_info resolved inline (decoded objects)."""
        idx = self._idx(job_id)
        job, keys, message = self.meta(idx)
        job = copy.deepcopy(job)
        if job["status"] == "registered":
            return job
        info: dict[str, Any] = {k: self.payload(idx, k) for k in keys}
        if message is not None:
            info["message"] = message
        return with_job_info(job, info)

    def payload(self, idx: int, key: str) -> Any:
        """The decoded content of one job_info archive (for sse_log, the log text)."""
        return _Payloads(self, idx).build(key)

    def sselog_files(self, job_id: str) -> dict[str, str]:
        """The text files GET /jobs/{id}/sselog zips, for an SSE job that has run (else KeyError)."""
        idx = self._idx(job_id)
        if "sse_log" not in self.meta(idx)[1]:
            raise KeyError(job_id)
        return _Payloads(self, idx).sselog_files()

    def legacy_quirks(self, job_id: str) -> frozenset[str]:
        """Which old-server quirks (LEGACY_QUIRKS) the legacy form of this job shows."""
        return self._quirks(self._idx(job_id))

    def _quirks(self, idx: int) -> frozenset[str]:
        rng = random.Random(_mix(self.seed, idx, 20))
        jt, keys = self._type[idx], self.meta(idx)[1]
        out = set()
        if rng.random() < 0.35 and "result" in keys and jt != 1:
            out.add("counts_as_string")
        if rng.random() < 0.5 and "result" in keys and jt == 1:
            out.add("exp_value_complex")
        if rng.random() < 0.3 and jt != 3 and keys:
            out.add("program_at_top")
        return frozenset(out)

    def legacy_job(self, job_id: str) -> dict[str, Any]:
        """The job in the legacy inline form, with this job's quirks applied."""
        job = self.job(job_id)
        info = job.get("job_info")
        if info is None:
            return job
        quirks = self._quirks(self._idx(job_id))
        sampling = (info.get("result") or {}).get("sampling")
        if "counts_as_string" in quirks and sampling and "counts" in sampling:
            sampling["counts"] = json.dumps(sampling["counts"])
        estimation = (info.get("result") or {}).get("estimation")
        if "exp_value_complex" in quirks and estimation:
            estimation["exp_value"] = [estimation["exp_value"], 0.0]
        if "program_at_top" in quirks:
            old = info.pop("input")
            info = {"program": old["program"], **({"operator": old["operator"]}
                                                  if "operator" in old else {}), **info}
            job["job_info"] = info
        return job

    # ---- listing ------------------------------------------------------------------------------
    def list_page(self, *, start_us: int | None = None, end_us: int | None = None,
                  status: str | None = None, q: str | None = None, desc: bool = False,
                  page: int = 1, size: int = 10) -> tuple[list[int], int]:
        """One page of job indices and the number of matches; a page past the end is the last."""
        with self._lock:
            base = self._by_status[STATUSES.index(status)] if status else self._order
            timed = start_us is not None or end_us is not None
            if timed and status == "registered":
                return [], 0  # registered jobs have no submitted_at to compare
            key = self._sub.__getitem__
            a = 0 if start_us is None else bisect_left(base, start_us, key=key)
            b = len(base) if end_us is None else bisect_right(base, end_us, key=key)
            skip = [] if not timed or status else sorted(
                p for p in (bisect_left(base, r) for r in self._by_status[_REG]) if a <= p < b)
            if q:
                base, skip = self._search(base[a:b], {base[p] for p in skip}, q), []
                a, b = 0, len(base)
            total = b - a - len(skip)
            if total <= 0:
                return [], 0
            page = min(page, -(-total // size))
            return _window(base, a, b, skip, (page - 1) * size, size, desc), total

    def _search(self, items: list[int], drop: set[int], q: str) -> list[int]:
        q = q.lower()
        names = {i for i, n in enumerate(_NAME_LIST) if q in n.lower()}
        descs = {i for i, d in enumerate(_DESCRIPTIONS) if d and q in d.lower()}
        if self._ids is None or len(self._ids) < len(self._sub):
            self._ids = [self.job_id(i) for i in range(len(self._sub))]
        ids, name, desc, status = self._ids, self._name, self._desc, self._status
        return [i for i in items if i not in drop and (q in ids[i] or (
            status[i] != _REG and (name[i] in names or desc[i] in descs)))]

    # ---- mutations ----------------------------------------------------------------------------
    def add_jobs(self, n: int) -> list[str]:
        """Submit `n` new jobs after every existing one (some not finished); return their ids."""
        with self._lock:
            rng = random.Random(_mix(self.seed, -2, len(self._sub)))
            out = []
            for _ in range(n):
                idx = len(self._sub)
                us = (self._sub[-1] if idx else 0) + int(rng.uniform(1, 600) * _S)
                self._append(rng, us, None, tail=rng.random() < 0.5)
                self._order.append(idx)
                self._by_status[self._status[idx]].append(idx)
                out.append(self.job_id(idx))
            return out

    def finish(self, job_id: str, status: str = "succeeded") -> None:
        """Make a submitted/ready/running/cancelling job terminal; it gains timestamps and results."""
        if status not in TERMINAL:
            raise ValueError(f"not a terminal status: {status!r}")
        with self._lock:
            idx = self._idx(job_id)
            old = self._status[idx]
            if old not in (_SUB, _READY, _RUN, _CANCELLING):
                raise ValueError(f"job {job_id} is {STATUSES[old]}, not waiting or running")
            new = STATUSES.index(status)
            reached = _RUN if old == _CANCELLING else old
            self._stage[idx] = (_RUN if new == _OK else reached if new == _CANCEL
                                else max(reached, _READY))
            self._by_status[old].remove(idx)
            lst = self._by_status[new]
            lst.insert(bisect_left(lst, idx), idx)
            self._status[idx] = new

    def delete(self, job_id: str) -> None:
        """Delete a job: it leaves listings, GET answers 404 and its archives disappear."""
        with self._lock:
            idx = self._idx(job_id)
            self._deleted.add(idx)
            for lst in (self._order, self._by_status[self._status[idx]]):
                del lst[bisect_left(lst, idx)]

    # ---- devices ------------------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        """The device list as GET /devices returns it; n_pending_jobs follows the history."""
        with self._lock:
            pending = [0] * len(_DEVICES)
            for st in (_SUB, _READY, _RUN, _CANCELLING):
                for i in self._by_status[st]:
                    pending[self._dev[i]] += 1
        end = self.days * 86400 * _S
        out = []
        for k, (dev_id, dev_type, n_qubits, _, status, gates, text) in enumerate(_DEVICES):
            d: dict[str, Any] = {"device_id": dev_id, "device_type": dev_type, "status": status}
            if status == "unavailable":
                d["available_at"] = self.iso(end + 3 * 86400 * _S)
            d.update(n_pending_jobs=pending[k], n_qubits=n_qubits, basis_gates=list(gates),
                     supported_instructions=["measure", "barrier", "reset"],
                     device_info=self._device_info(k, end - 6 * 3600 * _S))
            if dev_type == "QPU":
                d["calibrated_at"] = self.iso(end - 6 * 3600 * _S)
            d["description"] = text
            out.append(d)
        return out

    @functools.cache  # noqa: B019  (a handful of devices per history)
    def _device_info(self, k: int, calibrated_us: int) -> str:
        dev_id, dev_type, n = _DEVICES[k][0], _DEVICES[k][1], _DEVICES[k][2]
        if dev_type != "QPU":
            return json.dumps({"n_nodes": 4 if dev_id == "SVSim" else 1, "max_qubits": n})
        rng = random.Random(_mix(self.seed, -3, k))
        qubits = [{"physical_id": q, "fidelity": round(rng.uniform(0.99, 0.9999), 5),
                   "meas_error": {"prob_meas1_prep0": round(rng.uniform(0.005, 0.05), 5),
                                  "prob_meas0_prep1": round(rng.uniform(0.01, 0.08), 5)},
                   "qubit_lifetime": {"t1": round(rng.uniform(40, 150), 2),
                                      "t2": round(rng.uniform(20, 120), 2)},
                   "gate_duration": {"rz": 0, "sx": 40, "x": 40}} for q in range(n)]
        couplings = [{"control": q, "target": q + 1, "fidelity": round(rng.uniform(0.95, 0.995), 5),
                      "gate_duration": {"cx": 400}} for q in range(n - 1)]
        return json.dumps({"n_nodes": 1, "qubits": qubits, "couplings": couplings,
                           "calibrated_at": self.iso(calibrated_us)})


def with_job_info(job: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A copy of `job` with `job_info` placed where the API puts it (after shots)."""
    out: dict[str, Any] = {}
    for key, value in job.items():
        out[key] = value
        if key == "shots":
            out["job_info"] = info
    return out


def _window(base: list[int], a: int, b: int, skip: list[int], offset: int, size: int,
            desc: bool) -> list[int]:
    """Items `offset`.. of base[a:b] (reversed if desc) leaving out the sorted positions `skip`."""
    skipped, out = set(skip), []
    if not desc:
        p = a + offset
        for s in skip:
            if s > p:
                break
            p += 1
        while p < b and len(out) < size:
            if p not in skipped:
                out.append(base[p])
            p += 1
    else:
        p = b - 1 - offset
        for s in reversed(skip):
            if s < p:
                break
            p -= 1
        while p >= a and len(out) < size:
            if p not in skipped:
                out.append(base[p])
            p -= 1
    return out


class _Payloads:
    """Builds one job's heavy parts (programs, counts, logs) from its own random streams."""

    def __init__(self, history: History, idx: int) -> None:
        self.h, self.idx = history, idx
        self.jt, self.width = history._type[idx], history._width[idx]
        self.name = _NAME_LIST[history._name[idx]]
        self.dev = _DEVICES[history._dev[idx]]
        self.family = _family(self.name)

    def rng(self, stream: int) -> random.Random:
        return random.Random(_mix(self.h.seed, self.idx, stream))

    def build(self, key: str) -> Any:
        if key == "input":
            if self.jt == 3:
                return {"sse_program": self.sse_program()}
            out: dict[str, Any] = {"program": self.programs()}
            if self.jt == 1:
                out["operator"] = self.operator()
            return out
        if key == "combined_program":
            text = _qasm_combined(self.sub_widths())
            if self.rng(12).random() < 0.7:
                return text
            return {"combined_program": text, "n_programs": len(self.sub_widths())}
        if key == "result":
            return self.result()
        if key == "transpile_result":
            return _transpile(self.programs()[0] if self.jt != 2 else
                              _qasm_combined(self.sub_widths()), self.width, self.dev, self.rng(13))
        if key == "sse_log":
            return self.sselog_files()["sse_log.log"]
        raise KeyError(key)

    def sub_widths(self) -> list[int]:
        if self.name == "mm-bell-x2":
            return [2, 2]
        if self.name == "mm-ghz3-x3":
            return [3, 3, 3]
        threes = self.width % 2
        parts = [3] * threes + [2] * ((self.width - 3 * threes) // 2)
        self.rng(11).shuffle(parts)
        return parts

    def programs(self) -> list[str]:
        rng = self.rng(10)
        if self.jt == 2:
            return [_qasm("ghz", w, rng) for w in self.sub_widths()]
        theta = None
        if self.family in ("vqe", "est"):
            step = int(self.name[-3:]) if self.family == "vqe" else 40
            theta = [0.2 + 1.1 * (1 - math.exp(-step / 10)) + 0.05 * q for q in range(self.width)]
        return [_qasm(self.family, self.width, rng, theta)]

    def operator(self) -> list[dict[str, Any]]:
        w = self.width
        if self.name.startswith("vqe-h2"):
            return [{"pauli": p, "coeff": c} for p, c in (
                ("Z 0", 0.1712), ("Z 1", 0.1712), ("Z 0 Z 1", 0.1686), ("X 0 X 1", 0.0453),
                ("Y 0 Y 1", 0.0453))]
        if self.name.startswith("vqe-lih"):
            terms = [(f"Z {q}", -0.12 + 0.03 * q) for q in range(w)]
            return [{"pauli": p, "coeff": c} for p, c in (*terms, ("X 0 X 1 X 2 X 3", 0.011))]
        if self.name.startswith("heisenberg"):
            return [{"pauli": f"{p} {q} {p} {q + 1}", "coeff": 1.0}
                    for q in range(w - 1) for p in "XYZ"]
        return [{"pauli": f"Z {q} Z {q + 1}", "coeff": -1} for q in range(w - 1)] + [
            {"pauli": f"X {q}", "coeff": 0.5} for q in range(w)]

    def noise(self) -> float:
        base = _NOISE[self.dev[0]]
        if not base:
            return 0.0
        day = self.h._sub[self.idx] / (86400 * _S)
        return base + 0.02 * (1 + math.sin(2 * math.pi * day / 30))  # drifts with a 30-day cycle

    def result(self) -> dict[str, Any]:
        rng, e = self.rng(14), self.noise()
        shots = self.h.meta(self.idx)[0]["shots"]
        if self.jt == 1:
            step = int(self.name[-3:]) if self.family == "vqe" else 40
            e0 = _ENERGY[self.name[:-3] if self.family == "vqe" else self.name]
            stds = (0.3 + 3 * e) / math.sqrt(shots)
            value = e0 + 0.9 * math.exp(-step / 10) + 0.5 * e * abs(e0) + rng.gauss(0, stds)
            return {"estimation": {"exp_value": value, "stds": stds}}
        if self.jt != 2:
            return {"sampling": {"counts": _counts(_dist(self.family, self.width, e, rng),
                                                   shots, rng)}}
        widths = self.sub_widths()
        joint: dict[str, float] = {"": 1.0}
        for w in widths:  # sub-program 0 holds the rightmost bits
            part = _dist("ghz", w, e, rng, max_errors=4)
            joint = {b + a: pa * pb for a, pa in joint.items() for b, pb in part.items()}
        counts = _counts(joint, shots, rng)
        divided: dict[str, dict[str, int]] = {str(i): {} for i in range(len(widths))}
        for bits, n in counts.items():
            end = len(bits)
            for i, w in enumerate(widths):
                sub = divided[str(i)]
                sub[bits[end - w:end]] = sub.get(bits[end - w:end], 0) + n
                end -= w
        return {"sampling": {"counts": counts, "divided_counts": divided}}

    def sse_program(self) -> str:
        iters = 3 + self.idx % 5
        return (f"# SSE user program: {self.name}\nimport numpy as np\n\n"
                f"def main(backend):\n    params = np.zeros({self.width})\n"
                f"    for it in range({iters}):\n        counts = backend.sample(params)\n"
                f"        params += 0.1\n    return counts\n")

    def sselog_files(self) -> dict[str, str]:
        rng = self.rng(15)
        t = self.h._sub[self.idx]
        lines = [f"{self.h.iso(t)} INFO start {self.name}"]
        for k in range(3 + self.idx % 5):
            t += int(rng.uniform(1, 30) * _S)
            lines.append(f"{self.h.iso(t)} INFO iteration {k}: cost={rng.uniform(-1.2, 0.5):.6f}")
        if self.h._status[self.idx] == _FAIL:
            lines.append(f"{self.h.iso(t + _S)} ERROR RuntimeError: backend raised during sampling")
        else:
            lines.append(f"{self.h.iso(t + _S)} INFO finished")
        files = {"sse_log.log": "\n".join(lines) + "\n"}
        if rng.random() < 0.5:
            files["user_program.log"] = f"stdout of {self.name}\nparams converged\n"
        return files


def _qasm(family: str, w: int, rng: random.Random, theta: list[float] | None = None) -> str:
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{w}] q;", f"bit[{w}] c;"]
    if theta is not None:
        lines += [f"ry({t:.6f}) q[{q}];" for q, t in enumerate(theta)]
        lines += [f"cx q[{q}], q[{q + 1}];" for q in range(w - 1)]
    elif family == "ghz":
        lines.append("h q[0];")
        lines += [f"cx q[{q}], q[{q + 1}];" for q in range(w - 1)]
    else:
        for layer in range(2 if w > 20 else 4):
            lines += [f"{rng.choice(('rx', 'ry', 'rz'))}({rng.uniform(0, 6.283):.4f}) q[{q}];"
                      for q in range(w)]
            lines += [f"cx q[{q}], q[{q + 1}];" for q in range(layer % 2, w - 1, 2)]
    if theta is None:
        lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def _qasm_combined(widths: list[int]) -> str:
    total = sum(widths)
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{total}] q;", f"bit[{total}] c;"]
    offset = 0
    for w in widths:
        lines.append(f"h q[{offset}];")
        lines += [f"cx q[{q}], q[{q + 1}];" for q in range(offset, offset + w - 1)]
        offset += w
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


_QREF = re.compile(r"q\[(\d+)\]")


def _transpile(program: str, width: int, dev: tuple, rng: random.Random) -> dict[str, Any]:
    qpu = dev[1] == "QPU"
    phys = rng.sample(range(dev[2]), width) if qpu else list(range(width))
    body = []
    for line in program.splitlines():
        if line.startswith(("qubit[", "bit[")):
            continue
        if line == "c = measure q;":
            body += [f"c[{q}] = measure ${p};" for q, p in enumerate(phys)]
            continue
        line = _QREF.sub(lambda m: f"${phys[int(m.group(1))]}", line)
        if qpu and line.startswith("h "):
            p = line[2:-1]
            body += [f"rz(pi/2) {p};", f"sx {p};", f"rz(pi/2) {p};"]
        else:
            body.append(line)
    text = "\n".join(body) + "\n"
    return {"transpiled_program": text,
            "stats": {"before": _stats(program), "after": _stats(text)},
            "virtual_physical_mapping": {"qubit_mapping": {str(q): p for q, p in enumerate(phys)},
                                         "bit_mapping": {str(q): q for q in range(width)}}}


_REF = re.compile(r"(?:q\[|\$)(\d+)")


def _stats(program: str) -> dict[str, int]:
    level: dict[str, int] = {}
    n1 = n2 = 0
    for line in program.splitlines():
        if "measure" in line or not line.endswith(";") or line.startswith(
                ("OPENQASM", "include", "qubit", "bit")):
            continue
        qubits = _REF.findall(line)
        n1, n2 = (n1 + 1, n2) if len(qubits) == 1 else (n1, n2 + 1)
        depth = max((level.get(q, 0) for q in qubits), default=0) + 1
        level.update(dict.fromkeys(qubits, depth))
    return {"n_qubits": len(level), "n_gates": n1 + n2, "n_gates_1q": n1, "n_gates_2q": n2,
            "depth": max(level.values(), default=0)}


def _dist(family: str, w: int, e: float, rng: random.Random,
          max_errors: int = 200) -> dict[str, float]:
    """An outcome distribution: GHZ-like (two peaks plus bit-flip errors) or scrambled."""
    if family != "random":
        if w == 1:
            return {"0": 1 - e - 0.01, "1": e + 0.01}
        zeros, ones = "0" * w, "1" * w
        err = min(0.5, e * math.sqrt(w))
        probs = {zeros: (1 - err) / 2, ones: (1 - err) / 2}
        if err:
            n_err = rng.randint(1, min(max_errors, 2 * w))
            for _ in range(n_err):
                bits = list(rng.choice((zeros, ones)))
                for pos in rng.sample(range(w), min(w, rng.randint(1, 2))):
                    bits[pos] = "1" if bits[pos] == "0" else "0"
                key = "".join(bits)
                probs[key] = probs.get(key, 0.0) + err / n_err
        return probs
    if w <= 8:
        keys = [format(x, f"0{w}b") for x in range(2**w)]
    else:
        keys = list(dict.fromkeys(format(rng.getrandbits(w), f"0{w}b")  # ordered, unlike a set
                                  for _ in range(rng.randint(20, 300))))
    return {k: rng.expovariate(1.0) for k in keys}


def _counts(probs: dict[str, float], shots: int, rng: random.Random) -> dict[str, int]:
    """Integer counts summing to `shots` that follow `probs` up to shot noise; zeros dropped."""
    total = sum(probs.values())
    counts = {}
    for key, p in probs.items():
        mean = shots * p / total
        counts[key] = max(0, round(mean + rng.gauss(0, math.sqrt(mean * max(0.0, 1 - p / total)))))
    top = max(counts, key=lambda k: (counts[k], probs[k]))
    diff = shots - sum(counts.values())
    while diff:
        for key in sorted(counts, key=counts.__getitem__, reverse=True) if diff < 0 else [top]:
            step = max(diff, -counts[key]) if diff < 0 else diff
            counts[key] += step
            diff -= step
            if not diff:
                break
    return {k: n for k, n in counts.items() if n}
