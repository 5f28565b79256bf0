"""The heavy parts of a synthetic job, rebuilt on demand: programs, operators, counts, transpile results, logs.

Each job draws from its own random streams (seed, job index, stream), so content never depends on
which other jobs were built first.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from typing import Any

from oqtopus_data.testing.catalog import DEVICES, ENERGY, NAME_LIST, NOISE, S, family, mix

#: How an estimation archive writes exp_value: a number (older payloads), `[x]` or `[re, im]` (the
#: server's schema: a list of 1 or 2 numbers).
EXP_VALUE_FORMS = ("number", "single", "pair")
#: The forms a history mixes by default: every form the server's schema allows.
DEFAULT_EXP_VALUE_FORMS = EXP_VALUE_FORMS


class JobPayloads:
    """Builds one job's heavy parts from its light fields and its own random streams."""

    def __init__(self, *, seed: int, idx: int, job_type: int, width: int, name: int, device: int,
                 submitted_us: int, shots: int, failed: bool, iso: Callable[[int], str],
                 exp_value_forms: tuple[str, ...] = DEFAULT_EXP_VALUE_FORMS) -> None:
        self.seed, self.idx, self.jt, self.width = seed, idx, job_type, width
        self.exp_value_forms = exp_value_forms
        self.name = NAME_LIST[name]
        self.dev = DEVICES[device]
        self.family = family(self.name)
        self.submitted_us, self.shots, self.failed, self.iso = submitted_us, shots, failed, iso

    def rng(self, stream: int) -> random.Random:
        return random.Random(mix(self.seed, self.idx, stream))

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

    def exp_value(self, value: float, stds: float) -> float | list[float]:
        """`value` in one of the history's forms, drawn per job: a number, `[x]` or `[re, im]` (a small
        imaginary part, as a complex estimate has)."""
        rng = self.rng(15)
        form = self.exp_value_forms[rng.randrange(len(self.exp_value_forms))]
        if form == "single":
            return [value]
        if form == "pair":
            return [value, rng.gauss(0, stds / 10)]
        return value

    def noise(self) -> float:
        base = NOISE[self.dev[0]]
        if not base:
            return 0.0
        day = self.submitted_us / (86400 * S)
        return base + 0.02 * (1 + math.sin(2 * math.pi * day / 30))  # drifts with a 30-day cycle

    def result(self) -> dict[str, Any]:
        rng, e = self.rng(14), self.noise()
        shots = self.shots
        if self.jt == 1:
            step = int(self.name[-3:]) if self.family == "vqe" else 40
            e0 = ENERGY[self.name[:-3] if self.family == "vqe" else self.name]
            stds = (0.3 + 3 * e) / math.sqrt(shots)
            value = e0 + 0.9 * math.exp(-step / 10) + 0.5 * e * abs(e0) + rng.gauss(0, stds)
            return {"estimation": {"exp_value": self.exp_value(value, stds), "stds": stds}}
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
        t = self.submitted_us
        lines = [f"{self.iso(t)} INFO start {self.name}"]
        for k in range(3 + self.idx % 5):
            t += int(rng.uniform(1, 30) * S)
            lines.append(f"{self.iso(t)} INFO iteration {k}: cost={rng.uniform(-1.2, 0.5):.6f}")
        if self.failed:
            lines.append(f"{self.iso(t + S)} ERROR RuntimeError: backend raised during sampling")
        else:
            lines.append(f"{self.iso(t + S)} INFO finished")
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
