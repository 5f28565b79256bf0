"""Drift of repeated circuits, defined by the program: the report's drift section and examples/device_drift.py
both use this module, so they agree.

A *circuit* is what a job ran: its list of OpenQASM programs, normalised and hashed (oqtopus_data.results.circuits,
stored as `jobs.circuit_id`). Jobs named `vqe-step-17`, `calib 284` or `量子実験 12` that ran the same program are the
same circuit; the name most of its runs carry labels it.

Each *run* (a sampling or multi_manual job with counts) gets its Hellinger fidelity to the circuit's *reference
distribution* q: the pooled counts of the circuit's runs on simulators when there are any, else of its runs on
every device (over the whole export, whatever the selection). With p the run's counts over its n shots and
B = Σ_x sqrt(p_x q_x) (the Bhattacharyya coefficient), F = B², which is Qiskit's `hellinger_fidelity`.
Its shot-based standard error treats the run's counts as one multinomial sample and q as exact (delta method):
σ_B² = (Σ_{x: p_x > 0} q_x − B²) / (4n), so σ_F = 2·B·σ_B. A run of fewer than MIN_SHOTS shots is *low-shot*:
shot noise alone pulls its F down by about (K−1)/(8n) for K outcomes, so it is drawn faint and left out of trends.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from oqtopus_data.enums import JobType
from oqtopus_data.results.circuits import circuit_key_sql

MIN_RUNS = 5  # runs a circuit needs (in the selection) to count as repeated
MIN_SHOTS = 100  # runs with fewer counted shots are low-shot

@dataclass(frozen=True)
class Circuit:
    """A repeated circuit: its key, the name most of its runs carry (and how many names), its runs in the
    selection, and what its reference distribution pools ("simulator" or "all devices" runs, how many, shots)."""

    key: str
    name: str
    names: int
    runs: int
    devices: int
    reference: str
    reference_runs: int
    reference_shots: int
    other_names: tuple[str, ...] = ()  # the other names its runs carry, most runs first


@dataclass(frozen=True)
class Run:
    """One run's Hellinger fidelity to its circuit's reference, ± its shot-based standard error."""

    circuit: str
    job_id: str
    name: str
    device_id: str
    submitted_at: datetime
    shots: int  # counted shots: the sum of the run's counts
    fidelity: float
    stderr: float
    low_shots: bool


_counter = itertools.count()


class CircuitDrift:
    """The repeated circuits of an export and their runs' fidelities.

    `where` (with `params`) selects the runs that count and are drawn, e.g. a time range or devices; references
    always pool the whole export. Keys are computed once, into a temporary table dropped by `close()`.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, where: str = "TRUE",
                 params: Mapping[str, Any] | None = None) -> None:
        self.con = con
        self.table = f"drift_runs_{next(_counter)}"
        simulators = ("SELECT device_id FROM devices WHERE lower(device_type) = 'simulator' "
                      "QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY snapshot_at DESC) = 1")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {self.table} AS
            WITH runs AS (
                SELECT job_id, submitted_month, name, device_id, submitted_at, total_count AS shots, program,
                       circuit_id,
                       coalesce(({where}), FALSE) AS in_scope
                FROM jobs
                WHERE job_type IN ('{JobType.SAMPLING}', '{JobType.MULTI_MANUAL}') AND total_count > 0
                    AND len(program) > 0
                    AND submitted_at IS NOT NULL),
            -- files written before jobs.circuit_id: each distinct program list normalised once, in SQL
            distinct_programs AS (SELECT DISTINCT program FROM runs WHERE circuit_id IS NULL),
            keyed AS (SELECT program, {circuit_key_sql()} AS key FROM distinct_programs)
            SELECT r.* EXCLUDE (program, circuit_id), coalesce(r.circuit_id, k.key) AS key,
                   s.device_id IS NOT NULL AS simulator
            FROM runs AS r LEFT JOIN keyed AS k ON r.circuit_id IS NULL AND k.program = r.program
            LEFT JOIN ({simulators}) AS s USING (device_id)
            """, dict(params or {}))

    def close(self) -> None:
        """Drop the temporary table."""
        self.con.execute(f"DROP TABLE IF EXISTS {self.table}")

    def __enter__(self) -> CircuitDrift:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def circuits(self, *, min_runs: int = MIN_RUNS, limit: int | None = None,
                 match: str | None = None) -> list[Circuit]:
        """Circuits with at least `min_runs` runs in the selection, most runs first (at most `limit`); `match`
        keeps those one of whose runs has that name, or whose key starts with it."""
        rows = self.con.execute(f"""
            WITH named AS (
                SELECT key, name, count(*) AS n FROM {self.table} WHERE in_scope GROUP BY ALL),
            labelled AS (
                SELECT key, first(name ORDER BY n DESC, name NULLS LAST) AS name, count(*) AS names, sum(n) AS runs,
                       list(name ORDER BY n DESC, name NULLS LAST) AS all_names,
                       bool_or(name = $match OR starts_with(key, lower($match))) AS matched
                FROM named GROUP BY key),
            spread AS (SELECT key, count(DISTINCT device_id) AS devices FROM {self.table} WHERE in_scope GROUP BY key),
            reference AS (
                SELECT key, bool_or(simulator) AS sim, count(*) FILTER (simulator) AS sim_runs,
                       coalesce(sum(shots) FILTER (simulator), 0) AS sim_shots, count(*) AS all_runs,
                       sum(shots) AS all_shots
                FROM {self.table} GROUP BY key)
            SELECT l.key, l.name, l.names, l.runs, s.devices,
                   CASE WHEN r.sim THEN 'simulator' ELSE 'all devices' END,
                   CASE WHEN r.sim THEN r.sim_runs ELSE r.all_runs END,
                   CASE WHEN r.sim THEN r.sim_shots ELSE r.all_shots END, l.all_names
            FROM labelled AS l JOIN spread AS s USING (key) JOIN reference AS r USING (key)
            WHERE l.runs >= $min_runs AND ($match IS NULL OR l.matched)
            ORDER BY l.runs DESC, l.name, l.key LIMIT $limit""",
                                {"min_runs": min_runs, "match": match, "limit": limit}).fetchall()
        return [Circuit(key, name or "", names, runs, devices, ref, ref_runs, int(ref_shots),
                        tuple(n or "" for n in all_names[1:]))
                for key, name, names, runs, devices, ref, ref_runs, ref_shots, all_names in rows]

    def runs(self, circuits: Sequence[Circuit], *, newest: int | None = None) -> list[Run]:
        """The runs of `circuits` in the selection (the `newest` per circuit and device, when given) with their
        fidelities, ordered by circuit (as given), device and time."""
        if not circuits:
            return []
        keys = [c.key for c in circuits]
        rows = self.con.execute(f"""
            WITH picked AS (SELECT * FROM {self.table} WHERE list_contains($keys, key)),
            has_sim AS (SELECT key, bool_or(simulator) AS sim FROM picked GROUP BY key),
            pooled AS (  -- the reference: simulator runs when the circuit has any, else every run
                SELECT p.key, c.bitstring, sum(c.count) AS n
                FROM picked AS p JOIN has_sim AS h USING (key)
                JOIN counts AS c ON c.job_id = p.job_id AND c.submitted_month = p.submitted_month
                WHERE p.simulator OR NOT h.sim GROUP BY ALL),
            reference AS (SELECT key, bitstring, n / sum(n) OVER (PARTITION BY key) AS q FROM pooled),
            shown AS (
                SELECT * FROM picked WHERE in_scope
                QUALIFY $newest IS NULL OR row_number() OVER (
                    PARTITION BY key, device_id ORDER BY submitted_at DESC, job_id) <= $newest),
            per_run AS (
                SELECT s.job_id, sum(c.count) AS n, sum(sqrt(c.count * coalesce(r.q, 0))) AS root_sum,
                       sum(coalesce(r.q, 0)) AS q_seen
                FROM shown AS s JOIN counts AS c ON c.job_id = s.job_id AND c.submitted_month = s.submitted_month
                LEFT JOIN reference AS r ON r.key = s.key AND r.bitstring = c.bitstring
                GROUP BY s.job_id),
            scored AS (SELECT job_id, n, root_sum / sqrt(n) AS b, q_seen FROM per_run)
            SELECT s.key, s.job_id, s.name, s.device_id, s.submitted_at, f.n, f.b * f.b,
                   f.b * sqrt(greatest(f.q_seen - f.b * f.b, 0) / f.n)
            FROM shown AS s JOIN scored AS f USING (job_id)
            ORDER BY list_position($keys, s.key), s.device_id, s.submitted_at, s.job_id""",
                                {"keys": keys, "newest": newest}).fetchall()
        return [Run(key, job_id, name or "", device, at, int(n), fidelity, stderr, n < MIN_SHOTS)
                for key, job_id, name, device, at, n, fidelity, stderr in rows]


def calibration_times(con: duckdb.DuckDBPyConnection) -> dict[str, list[datetime]]:
    """Each device's known calibration times, oldest first: from the `device_calibrations` view when the export
    has calibration data, else the distinct `calibrated_at` of its device snapshots."""
    rows: list[tuple[str, datetime]] = []
    for source in ("device_calibrations", "devices"):
        rows = rows or con.execute(f"SELECT DISTINCT device_id, calibrated_at FROM {source} "
                                   "WHERE calibrated_at IS NOT NULL ORDER BY device_id, calibrated_at").fetchall()
    out: dict[str, list[datetime]] = {}
    for device, at in rows:
        out.setdefault(device, []).append(at)
    return out
