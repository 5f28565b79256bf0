"""What synthetic jobs are made of: types, statuses, fields, names, shots, devices, seeded randomness.

Shared by the history (synth.py), its timeline, payloads and devices; nothing here holds state.
"""

from __future__ import annotations

import hashlib
import random
import struct
from bisect import bisect_right

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

S = 1_000_000  # microseconds per second
REG, SUB, READY, RUN, CANCELLING, OK, FAIL, CANCEL = range(8)  # indices into STATUSES
OPEN = frozenset({SUB, READY, RUN, CANCELLING})  # submitted and not finished

# device_id, device_type, n_qubits, weight, status, basis_gates, description
DEVICES = (
    ("SVSim", "simulator", 128, 35, "available", ("x", "y", "z", "h", "s", "sdg", "t", "tdg",
     "rx", "ry", "rz", "cx", "ccx"), "State-vector simulator (MPS backend for wide registers)"),
    ("Kawasaki", "QPU", 64, 30, "available", ("sx", "x", "rz", "cx"),
     "64-qubit superconducting QPU"),
    ("Urchin", "QPU", 16, 15, "unavailable", ("sx", "x", "rz", "ecr"),
     "16-qubit superconducting QPU (maintenance)"),
    ("qulacs", "simulator", 30, 20, "available", ("x", "y", "z", "h", "rx", "ry", "rz", "cx"),
     "Qulacs state-vector simulator"),
)
NOISE = {"SVSim": 0.0, "qulacs": 0.0, "Kawasaki": 0.03, "Urchin": 0.05}
# (name, width (0 = random 2..20), weight, family)
NAMES = {
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
ENERGY = {"vqe-h2-step-": -1.137, "vqe-lih-step-": -7.882, "heisenberg-6": -9.974,
          "ising-zz-8": -7.0}
DESCRIPTIONS = ("", "nightly drift check", "VQE for H2 at 0.735 Å", "tutorial: my first job",
                "calibration sweep", "benchmark run for the paper", "retry after maintenance",
                "QAOA on a 16-node 3-regular graph", "multiprogramming trial",
                "SSE optimisation loop", "測定テスト (unicode description)")
FAIL_MESSAGES = ("transpile failed: circuit needs more qubits than the device has",
                 "execution error: device went offline during the run",
                 "timeout: job exceeded the 3600 s limit",
                 "invalid OPENQASM 3: line 4: unknown gate 'foo'",
                 "estimation failed: operator refers to a qubit outside the circuit")
SHOTS = ((1000, 30), (1024, 15), (2048, 8), (4096, 10), (8192, 5), (10000, 15), (100, 5),
         (100000, 4), (1, 0.5), (1000000, 0.5), (10000000, 0.1))
EST_SHOTS = ((1000, 20), (4000, 30), (10000, 40), (100000, 10))
# First jobs of a history, so that even small ones show every type and the wide registers.
COVER = (("sampling", "bell-pair"), ("estimation", "vqe-h2-step-"), ("multi_manual", "mm-mixed"),
         ("sse", "sse-vqe-loop"), ("sampling", "wide-register-70"),
         ("sampling", "wide-register-100"), ("sampling", "benchmark-64"),
         ("sampling", "random-circuit"))


def mix(seed: int, idx: int, stream: int) -> int:
    """One integer seed per (history seed, job, stream), stable across processes."""
    digest = hashlib.blake2b(f"{seed}:{idx}:{stream}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def uniforms(seed: int, idx: int, stream: str = "light") -> list[float]:
    """Sixteen uniform numbers in [0, 1) for one job, from one hash (cheaper than a Random)."""
    digest = hashlib.blake2b(f"{seed}:{idx}:{stream}".encode(), digest_size=64).digest()
    return [x / 4294967296 for x in struct.unpack("<16I", digest)]


def cumulative(weights: list[float]) -> list[float]:
    """Running sums of `weights`, for `pick`."""
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def pick(rng: random.Random, cum: list[float]) -> int:
    """A weighted random index into the weights behind `cum`."""
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


NAME_LIST: list[str] = [n for pool in NAMES.values() for n, *_ in pool if not n.endswith("-")]
NAME_LIST += [f"{p}{s:03d}" for p in ("vqe-h2-step-", "vqe-lih-step-") for s in range(80)]
NAME_INDEX = {n: i for i, n in enumerate(NAME_LIST)}
TYPE_CUM = cumulative([55, 20, 15, 10])
POOL_CUM = {t: cumulative([w for _, _, w, _ in pool]) for t, pool in NAMES.items()}
SHOTS_CUM, EST_CUM = cumulative([w for _, w in SHOTS]), cumulative([w for _, w in EST_SHOTS])
_FAMILY = {n: f for pool in NAMES.values() for n, _, _, f in pool}
_DEV_TABLES = [(ids, cumulative([DEVICES[i][3] for i in ids]))
               for ids in ([0, 1, 2, 3], [0, 1, 3], [0, 1], [0])]


def devices_for(width: int) -> tuple[list[int], list[float]]:
    """The devices wide enough for `width` qubits and their cumulative weights."""
    return _DEV_TABLES[0 if width <= 16 else 1 if width <= 30 else 2 if width <= 64 else 3]


def family(name: str) -> str:
    """The circuit family of a job name ("ghz", "random", "vqe", "est", "mm")."""
    return _FAMILY.get(name) or _FAMILY[name[:-3]]
