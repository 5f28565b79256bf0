"""The SELECTs of the calibration and usage views, written as sqltext.View texts (standard SQL, "quoted" names,
`{relation}` and `{macro(...)}` placeholders); sqltext declares the views and renders them for every engine.

`usage_select` builds the usage figures for any grouping, so the views and `oqtopus_data.query.usage` share one rule.
"""

from __future__ import annotations

from oqtopus_data.enums import JobStatus

#: A qubit's readout error: the assignment error as sent, else the mean of its two misassignment probabilities.
_READOUT_ERROR = 'coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2)'

DEVICE_CALIBRATIONS = """
WITH q AS (
    SELECT
        q."device_id", q."calibrated_at", count(*) AS "n_qubits",
        {median(q."t1")} AS "median_t1", {median(q."t2")} AS "median_t2",
        {median(q."fidelity")} AS "median_fidelity_1q", {median(READOUT_ERROR)} AS "median_readout_error",
        min(q."first_seen_at") AS "first_seen_at"
    FROM {qubit_calibrations} AS q
    GROUP BY q."device_id", q."calibrated_at"
), c AS (
    SELECT
        "device_id", "calibrated_at", count(*) AS "n_couplings", {median("fidelity")} AS "median_fidelity_2q",
        min("first_seen_at") AS "first_seen_at"
    FROM {coupling_calibrations}
    GROUP BY "device_id", "calibrated_at"
)
SELECT
    coalesce(q."device_id", c."device_id") AS "device_id",
    coalesce(q."calibrated_at", c."calibrated_at") AS "calibrated_at",
    coalesce(q."n_qubits", 0) AS "n_qubits",
    q."median_t1", q."median_t2", q."median_fidelity_1q", c."median_fidelity_2q", q."median_readout_error",
    coalesce(c."n_couplings", 0) AS "n_couplings",
    coalesce(q."first_seen_at", c."first_seen_at") AS "first_seen_at"
FROM q
FULL OUTER JOIN c ON q."device_id" = c."device_id" AND q."calibrated_at" = c."calibrated_at"
""".replace("READOUT_ERROR", _READOUT_ERROR)

# The calibration in force for each job: its device's newest calibration at or before the job ran (else was
# submitted), found by ordering calibrations and jobs by time per device (a calibration first at equal times) and
# carrying the newest calibration seen forward; then its qubits (the values of qubit_mapping) and the calibrated
# couplings between two of them.
JOB_CALIBRATION = """
WITH events AS (
    SELECT "job_id", "device_id", coalesce("running_at", "submitted_at") AS "at", 1 AS "kind", NULL AS "calibrated_at"
    FROM {jobs}
    WHERE "device_id" IS NOT NULL AND coalesce("running_at", "submitted_at") IS NOT NULL
    UNION ALL
    SELECT NULL, "device_id", "calibrated_at", 0, "calibrated_at"
    FROM {device_calibrations}
), in_force AS (
    SELECT "job_id", max("calibrated_at") OVER (PARTITION BY "device_id" ORDER BY "at", "kind"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "calibrated_at"
    FROM events
), job_in_force AS (
    SELECT "job_id", "calibrated_at" FROM in_force WHERE "job_id" IS NOT NULL
), used AS (
    SELECT DISTINCT m."job_id", m."device_id", m."calibrated_at", u."qubit"
    FROM (
        SELECT j."job_id", j."device_id", f."calibrated_at", {mapped_qubits(j."virtual_physical_mapping")} AS "qubits"
        FROM {jobs} AS j
        LEFT JOIN job_in_force AS f ON f."job_id" = j."job_id"
        WHERE j."virtual_physical_mapping" IS NOT NULL
    ) AS m
    {unnest_qubit(m."qubits")}
    WHERE u."qubit" IS NOT NULL
), qubit_stats AS (
    SELECT
        u."job_id", count(*) AS "qubits_used", count(q."qubit_id") AS "qubits_calibrated",
        avg(READOUT_ERROR) AS "mean_readout_error", min(READOUT_ERROR) AS "min_readout_error",
        max(READOUT_ERROR) AS "max_readout_error",
        min(q."t1") AS "min_t1", min(q."t2") AS "min_t2", avg(q."t1") AS "mean_t1", avg(q."t2") AS "mean_t2",
        avg(q."fidelity") AS "mean_fidelity_1q", min(q."fidelity") AS "min_fidelity_1q"
    FROM used AS u
    LEFT JOIN {qubit_calibrations} AS q
        ON q."device_id" = u."device_id" AND q."calibrated_at" = u."calibrated_at" AND q."qubit_id" = u."qubit"
    GROUP BY u."job_id"
), coupling_stats AS (
    SELECT
        a."job_id", count(*) AS "couplings_calibrated",
        avg(c."fidelity") AS "mean_fidelity_2q", min(c."fidelity") AS "min_fidelity_2q"
    FROM used AS a
    JOIN {coupling_calibrations} AS c
        ON c."device_id" = a."device_id" AND c."calibrated_at" = a."calibrated_at" AND c."control" = a."qubit"
    JOIN used AS b ON b."job_id" = a."job_id" AND b."qubit" = c."target"
    GROUP BY a."job_id"
)
SELECT
    j."job_id", j."device_id", f."calibrated_at",
    s."mean_readout_error", s."min_readout_error", s."max_readout_error",
    s."min_t1", s."min_t2", s."mean_t1", s."mean_t2",
    s."mean_fidelity_1q", s."min_fidelity_1q", c."mean_fidelity_2q", c."min_fidelity_2q",
    s."qubits_used", s."qubits_calibrated",
    CASE WHEN s."qubits_used" IS NOT NULL THEN coalesce(c."couplings_calibrated", 0) END AS "couplings_calibrated",
    {epoch_seconds(coalesce(j."running_at", j."submitted_at"))} - {epoch_seconds(f."calibrated_at")}
        AS "calibration_age_seconds",
    j."submitted_month"
FROM {jobs} AS j
LEFT JOIN job_in_force AS f ON f."job_id" = j."job_id"
LEFT JOIN qubit_stats AS s ON s."job_id" = j."job_id"
LEFT JOIN coupling_stats AS c ON c."job_id" = j."job_id"
""".replace("READOUT_ERROR", _READOUT_ERROR)

# One row per virtual qubit a job used (the entries of qubit_mapping), with the calibration of its physical qubit
# in force when the job ran: job_calibration's rule, read from that view. The unnest is in its own step: Spark's
# LATERAL VIEW comes after a FROM clause's joins, so it cannot feed a join's condition.
JOB_QUBITS = """
WITH mapped AS (
    SELECT m."job_id", m."device_id", m."submitted_month", u."virtual_qubit", u."physical_qubit"
    FROM (
        SELECT j."job_id", j."device_id", j."submitted_month", {qubit_map(j."virtual_physical_mapping")} AS "mapping"
        FROM {jobs} AS j
        WHERE j."virtual_physical_mapping" IS NOT NULL
    ) AS m
    {unnest_mapping(m."mapping")}
)
SELECT
    m."job_id", m."device_id", {bigint(m."virtual_qubit")} AS "virtual_qubit", m."physical_qubit",
    f."calibrated_at", q."t1", q."t2", READOUT_ERROR AS "readout_assignment_error", q."fidelity",
    m."submitted_month"
FROM mapped AS m
LEFT JOIN {job_calibration} AS f ON f."job_id" = m."job_id"
LEFT JOIN {qubit_calibrations} AS q
    ON q."device_id" = m."device_id" AND q."calibrated_at" = f."calibrated_at" AND q."qubit_id" = m."physical_qubit"
""".replace("READOUT_ERROR", _READOUT_ERROR)

#: What a usage figure is grouped by: its name -> the job_timings column.
USAGE_KEYS = {"month": "submitted_month", "device_id": "device_id", "job_type": "job_type"}
#: Jobs whose machine time is wasted: they ended without a result.
WASTED_STATUSES = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


#: The periods `oqtopus_data.query.usage` groups by besides the month, as text keys (2025-04-07, 2025-W15, 2025-Q2,
#: 2025) of the UTC submission time; DuckDB SQL, as `usage` runs there.
_UTC = 't."submitted_at" AT TIME ZONE \'UTC\''
USAGE_PERIODS = {
    "day": f"strftime({_UTC}, '%Y-%m-%d')",
    "week": f"strftime({_UTC}, '%G-W%V')",
    "quarter": f"strftime({_UTC}, '%Y') || '-Q' || CAST(quarter({_UTC}) AS VARCHAR)",
    "year": f"strftime({_UTC}, '%Y')",
}


def usage_source(account: bool) -> str:
    """job_timings with the USAGE_PERIODS and the job's `account_id` (null when `account` is False: the jobs of
    one export have no such column), as the `source` of usage_select (DuckDB)."""
    periods = "".join(f', {expr} AS "{name}"' for name, expr in USAGE_PERIODS.items())
    if not account:
        return f'(SELECT t.*{periods}, CAST(NULL AS VARCHAR) AS "account_id" FROM {{job_timings}} AS t)'
    return (f'(SELECT t.*{periods}, a."account_id" FROM {{job_timings}} AS t\n'
            'LEFT JOIN (SELECT "job_id", "account_id" FROM {jobs}) AS a ON a."job_id" = t."job_id")')


def usage_select(keys: tuple[str, ...], *, priced: bool = False, where: str = "",
                 source: str = "{job_timings}", columns: dict[str, str] | None = None) -> str:
    """The usage figures grouped by `keys` (of USAGE_KEYS, or of `columns`: name -> column of `source`) as the
    SELECT of a View: jobs, shots, execution seconds, the failed and cancelled jobs and their seconds ("wasted"),
    median and p90 queue time; with `priced`, the estimated cost from {job_costs}, its currency and the jobs no
    price covers. `source` (job_timings, or a relation with its columns and more) is t; `where` filters it."""
    columns = {**USAGE_KEYS, **(columns or {})}
    wasted = "t.\"status\" IN (" + ", ".join(f"'{s}'" for s in WASTED_STATUSES) + ")"
    names = [f't."{columns[k]}" AS "{k}"' for k in keys]
    lines = [
        *names,
        'count(*) AS "jobs"',
        'CAST(sum(t."shots") AS BIGINT) AS "shots"',
        'round(coalesce(sum(t."execution_time"), 0), 3) AS "execution_seconds"',
        f'count(CASE WHEN {wasted} THEN 1 END) AS "wasted_jobs"',
        f'round(coalesce(sum(CASE WHEN {wasted} THEN t."execution_time" END), 0), 3) AS "wasted_seconds"',
        'round({median(t."queue_seconds")}, 3) AS "median_queue_seconds"',
        'round({p90(t."queue_seconds")}, 3) AS "p90_queue_seconds"',
    ]
    source = f"FROM {source} AS t"
    if priced:
        lines += ['round(sum(p."cost"), 4) AS "cost"', '(SELECT max("currency") FROM {prices}) AS "currency"',
                  'count(*) - count(p."cost") AS "unpriced_jobs"']
        source += '\nLEFT JOIN {job_costs} AS p ON p."job_id" = t."job_id"'
    group = ", ".join(f't."{columns[k]}"' for k in keys)
    return ("\nSELECT\n    " + ",\n    ".join(lines) + f"\n{source}" + (f"\nWHERE {where}" if where else "")
            + (f"\nGROUP BY {group}" if group else ""))


#: The estimated cost of each job under a price table (`connect(..., prices=...)`): its shots at the per-shot price
#: if it ran, plus its execution seconds at the per-second price, the price being its device's newest valid at
#: submission (`valid_until`: the next price's valid_from, filled in by oqtopus_data.query.prices). Jobs no price covers
#: have no row.
JOB_COSTS = """
SELECT
    j."job_id",
    CASE WHEN j."running_at" IS NOT NULL OR j."execution_time" IS NOT NULL
        THEN coalesce(j."shots", 0) * p."per_shot" ELSE 0 END
        + coalesce(j."execution_time", 0) * p."per_second" AS "cost",
    p."currency"
FROM {jobs} AS j
JOIN {prices} AS p
    ON p."device_id" = j."device_id" AND (p."valid_from" IS NULL OR p."valid_from" <= j."submitted_at")
    AND (p."valid_until" IS NULL OR j."submitted_at" < p."valid_until")"""
