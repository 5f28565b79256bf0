"""Drift by program: circuits are the normalised programs (in Python and in DuckDB alike), fidelities are the
Hellinger fidelities a hand computation gives, and Wilson intervals are the published ones."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from demo_export import write_export

import oqtopus_data
from oqtopus_data.report.drift import MIN_SHOTS, CircuitDrift
from oqtopus_data.report.stats import wilson_interval
from oqtopus_data.results.circuits import circuit_key, circuit_key_sql, normalise_program

BELL = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n'
# The same circuit written differently: comments, blank lines, spacing and line breaks only.
BELL_AGAIN = ('// my Bell pair\nOPENQASM 3.0;  include "stdgates.inc";\n\n/* two qubits,\n two bits */\n'
              'qubit[2]  q ;\nbit[2] c;\n   h q[0];\ncx q[0],q[1];  // entangle\nc=measure q;')
GHZ3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[3] c;\nh q[0];\ncx q[0], q[1];\ncx q[1], q[2];\n' \
       "c = measure q;\n"
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_programs_that_differ_only_in_comments_and_whitespace_are_one_circuit() -> None:
    assert normalise_program(BELL) == normalise_program(BELL_AGAIN) == (
        'OPENQASM 3.0;include "stdgates.inc";qubit[2]q;bit[2]c;h q[0];cx q[0],q[1];c=measure q;')
    assert circuit_key([BELL]) == circuit_key([BELL_AGAIN]) != circuit_key([GHZ3])
    assert circuit_key([BELL, GHZ3]) != circuit_key([GHZ3, BELL])  # the order of sub-programs matters


def test_duckdb_computes_the_same_circuit_keys_as_python() -> None:
    programs = [[BELL], [BELL_AGAIN], [GHZ3], [BELL, GHZ3], ["rx(-0.5) q[0] ;\t// x\r\nmeasure q[0] -> c[0];"]]
    con = duckdb.connect()
    got = [con.execute(f"SELECT {circuit_key_sql('p')} FROM (SELECT $p::VARCHAR[] AS p)", {"p": p}).fetchone()[0]
           for p in programs]
    assert got == [circuit_key(p) for p in programs]


def job(n: int, device: str, counts: dict[str, int], program: str, *, name: str = "bell", hours: float = 0) -> dict:
    at = (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"job_id": f"00000000-0000-4000-8000-{n:012d}", "name": name, "job_type": "sampling",
            "status": "succeeded", "device_id": device, "shots": sum(counts.values()),
            "job_info": {"input": {"program": [program]}, "result": {"sampling": {"counts": counts}}},
            "submitted_at": at, "ready_at": at, "running_at": at, "ended_at": at, "execution_time": 1.0}


DEVICES = [{"device_id": "sim", "device_type": "simulator", "status": "available", "n_qubits": 30},
           {"device_id": "qpu", "device_type": "QPU", "status": "available", "n_qubits": 64}]


@pytest.fixture
def small(tmp_path):
    jobs = [
        job(1, "sim", {"00": 50, "11": 50}, BELL, name="bell", hours=0),
        job(2, "sim", {"00": 30, "11": 70}, BELL_AGAIN, name="calib 284", hours=1),
        job(3, "qpu", {"00": 45, "01": 5, "11": 50}, BELL, name="bell", hours=2),
        job(4, "qpu", {"00": 2, "10": 8}, BELL, name="量子実験 12", hours=3),  # 10 shots: low-shot
        job(5, "qpu", {"000": 40, "111": 50, "010": 10}, GHZ3, name="ghz", hours=4),
        job(6, "qpu", {"000": 60, "111": 40}, GHZ3, name="ghz", hours=5),
    ]
    return write_export(jobs, tmp_path / "out", [(T0 + timedelta(days=1), DEVICES)])


def test_fidelities_are_the_hand_computed_hellinger_fidelities(small) -> None:
    con = oqtopus_data.connect(small)
    with CircuitDrift(con) as drift:
        circuits = drift.circuits(min_runs=2)
        runs = {r.job_id[-1]: r for r in drift.runs(circuits)}
    bell, ghz = circuits
    assert (bell.key, bell.name, bell.names, bell.runs, bell.devices) == (circuit_key([BELL]), "bell", 3, 4, 2)
    # The Bell reference pools the two simulator runs: q = {00: 80/200, 11: 120/200}.
    assert (bell.reference, bell.reference_runs, bell.reference_shots) == ("simulator", 2, 200)
    # No simulator ran the GHZ circuit: its reference pools its runs on all devices, q = {000: .5, 111: .45, 010: .05}.
    assert (ghz.name, ghz.reference, ghz.reference_runs, ghz.reference_shots) == ("ghz", "all devices", 2, 200)

    def expected(p: dict[str, float], q: dict[str, float], n: int) -> tuple[float, float]:
        b = sum(math.sqrt(p[x] * q.get(x, 0)) for x in p)
        seen = sum(q.get(x, 0) for x in p)
        return b * b, b * math.sqrt((seen - b * b) / n)

    q_bell = {"00": 0.4, "11": 0.6}
    hand = {
        "1": expected({"00": 0.5, "11": 0.5}, q_bell, 100),
        "2": expected({"00": 0.3, "11": 0.7}, q_bell, 100),
        "3": expected({"00": 0.45, "01": 0.05, "11": 0.5}, q_bell, 100),
        "4": expected({"00": 0.2, "10": 0.8}, q_bell, 10),
        "5": expected({"000": 0.4, "111": 0.5, "010": 0.1}, {"000": 0.5, "111": 0.45, "010": 0.05}, 100),
        "6": expected({"000": 0.6, "111": 0.4}, {"000": 0.5, "111": 0.45, "010": 0.05}, 100),
    }
    # Run 3 by hand: B = sqrt(.45 * .4) + sqrt(.5 * .6) = 0.971987, F = B^2 = 0.944759, sigma = B sqrt((1 - F)/100).
    assert hand["3"][0] == pytest.approx(0.944759, abs=1e-6) and hand["3"][1] == pytest.approx(0.022845, abs=1e-6)
    assert {k: (r.fidelity, r.stderr) for k, r in runs.items()} == {
        k: (pytest.approx(f, abs=1e-12), pytest.approx(s, abs=1e-12)) for k, (f, s) in hand.items()}
    assert [k for k, r in runs.items() if r.low_shots] == ["4"] and MIN_SHOTS > 10
    assert [(r.device_id, r.shots) for r in runs.values()] == [
        ("qpu", 100), ("qpu", 10), ("sim", 100), ("sim", 100), ("qpu", 100), ("qpu", 100)]


def test_selection_narrows_the_runs_but_not_the_reference(small) -> None:
    con = oqtopus_data.connect(small)
    with CircuitDrift(con, "device_id = $device", {"device": "qpu"}) as drift:
        (bell,) = drift.circuits(min_runs=2, match="量子実験 12")  # a name one of its selected runs carries
        runs = drift.runs([bell])
        assert drift.circuits(min_runs=2, match=bell.key[:8]) == [bell]  # or the start of its key
        assert drift.circuits(min_runs=2, match="calib 284") == []  # that run is not in the selection
    assert (bell.runs, bell.reference, bell.reference_runs) == (2, "simulator", 2)
    assert [r.job_id[-1] for r in runs] == ["3", "4"]


# Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson score interval without
# continuity correction), 95 %: the intervals every implementation is checked against.
@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0000, 0.1611), (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000), (0, 10, 0.0000, 0.2775)])
def test_wilson_intervals_are_newcombes(k, n, low, high) -> None:
    got = wilson_interval(k, n)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


def test_wilson_interval_of_no_jobs_is_everything_and_bad_counts_are_refused() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(4, 3)
