-- oqtopus-data: DuckDB views over an export directory.
--
-- GENERATED from oqtopus_data/query/sqltext.py, where the views are declared once for DuckDB, Spark and Trino: edit
-- VIEWS there, then run `python -m oqtopus_data.query.sqltext > sql/views.sql`.
--
-- The base views `jobs`, `counts`, `divided_counts`, `estimations`, `errors`, `devices`, `sse_logs`,
-- `qubit_calibrations`, `coupling_calibrations` read exactly the Parquet files named by the export's newest commit
-- manifest. Each `{{table}}` below is replaced by oqtopus_data.connect with a `read_parquet([...])` of those files
-- (or an empty relation of the declared columns), so a reader never sees a half-written export. Columns are
-- documented in docs/schema.md (oqtopus_data.tables.schema). Timestamps are TIMESTAMPTZ in UTC; connect() sets the
-- session time zone to UTC.

CREATE OR REPLACE VIEW "jobs" AS SELECT * FROM {{jobs}};
CREATE OR REPLACE VIEW "counts" AS SELECT * FROM {{counts}};
CREATE OR REPLACE VIEW "divided_counts" AS SELECT * FROM {{divided_counts}};
CREATE OR REPLACE VIEW "estimations" AS SELECT * FROM {{estimations}};
CREATE OR REPLACE VIEW "errors" AS SELECT * FROM {{errors}};
CREATE OR REPLACE VIEW "devices" AS SELECT * FROM {{devices}};
CREATE OR REPLACE VIEW "sse_logs" AS SELECT * FROM {{sse_logs}};
CREATE OR REPLACE VIEW "qubit_calibrations" AS SELECT * FROM {{qubit_calibrations}};
CREATE OR REPLACE VIEW "coupling_calibrations" AS SELECT * FROM {{coupling_calibrations}};

-- Queue, run and total time per job, in seconds. Queue = submitted -> running; run = running -> ended.
CREATE OR REPLACE VIEW "job_timings" AS
SELECT
    "job_id", "name", "job_type", "status", "device_id", "shots",
    "submitted_at", "running_at", "ended_at", "execution_time",
    epoch("running_at") - epoch("submitted_at") AS "queue_seconds",
    epoch("ended_at") - epoch("running_at") AS "run_seconds",
    epoch("ended_at") - epoch("submitted_at") AS "total_seconds",
    "submitted_month"
FROM "jobs";

-- Jobs per device, per UTC day of submission, per status.
CREATE OR REPLACE VIEW "device_daily" AS
SELECT
    CAST("submitted_at" AT TIME ZONE 'UTC' AS DATE) AS "day",
    "device_id",
    "status",
    count(*) AS "jobs",
    sum("shots") AS "shots",
    sum("execution_time") AS "execution_seconds"
FROM "jobs"
WHERE "submitted_at" IS NOT NULL
GROUP BY 1, 2, 3;

-- Each count as a probability: count / the job's total count (the shots that produced a result).
CREATE OR REPLACE VIEW "count_probabilities" AS
SELECT
    c."job_id", j."name", j."device_id", j."submitted_at",
    c."bitstring", c."outcome" AS "outcome", c."n_bits", c."count", j."shots",
    CAST(c."count" AS DOUBLE) / j."total_count" AS "probability",
    c."submitted_month"
FROM "counts" AS c
JOIN "jobs" AS j ON c."job_id" = j."job_id"
WHERE j."total_count" > 0;

-- One row per device and calibration: qubits and couplings calibrated, medians of T1, T2, 1q and 2q fidelity and readout error.
CREATE OR REPLACE VIEW "device_calibrations" AS
WITH q AS (
    SELECT
        q."device_id", q."calibrated_at", count(*) AS "n_qubits",
        median(q."t1") AS "median_t1", median(q."t2") AS "median_t2",
        median(q."fidelity") AS "median_fidelity_1q", median(coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2)) AS "median_readout_error",
        min(q."first_seen_at") AS "first_seen_at"
    FROM "qubit_calibrations" AS q
    GROUP BY q."device_id", q."calibrated_at"
), c AS (
    SELECT
        "device_id", "calibrated_at", count(*) AS "n_couplings", median("fidelity") AS "median_fidelity_2q",
        min("first_seen_at") AS "first_seen_at"
    FROM "coupling_calibrations"
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
FULL OUTER JOIN c ON q."device_id" = c."device_id" AND q."calibrated_at" = c."calibrated_at";

-- Each job with the calibration of its device in force when it ran (else when it was submitted) and the calibration of the qubits it used (virtual_physical_mapping) and of the couplings between them; nulls where none is known.
CREATE OR REPLACE VIEW "job_calibration" AS
WITH events AS (
    SELECT "job_id", "device_id", coalesce("running_at", "submitted_at") AS "at", 1 AS "kind", NULL AS "calibrated_at"
    FROM "jobs"
    WHERE "device_id" IS NOT NULL AND coalesce("running_at", "submitted_at") IS NOT NULL
    UNION ALL
    SELECT NULL, "device_id", "calibrated_at", 0, "calibrated_at"
    FROM "device_calibrations"
), in_force AS (
    SELECT "job_id", max("calibrated_at") OVER (PARTITION BY "device_id" ORDER BY "at", "kind"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "calibrated_at"
    FROM events
), job_in_force AS (
    SELECT "job_id", "calibrated_at" FROM in_force WHERE "job_id" IS NOT NULL
), used AS (
    SELECT DISTINCT m."job_id", m."device_id", m."calibrated_at", u."qubit"
    FROM (
        SELECT j."job_id", j."device_id", f."calibrated_at", CASE WHEN json_valid(j."virtual_physical_mapping") THEN map_values(TRY_CAST(json_extract(j."virtual_physical_mapping", '$.qubit_mapping') AS MAP(VARCHAR, BIGINT))) END AS "qubits"
        FROM "jobs" AS j
        LEFT JOIN job_in_force AS f ON f."job_id" = j."job_id"
        WHERE j."virtual_physical_mapping" IS NOT NULL
    ) AS m
    CROSS JOIN unnest(m."qubits") AS "u"("qubit")
    WHERE u."qubit" IS NOT NULL
), qubit_stats AS (
    SELECT
        u."job_id", count(*) AS "qubits_used", count(q."qubit_id") AS "qubits_calibrated",
        avg(coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2)) AS "mean_readout_error", min(coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2)) AS "min_readout_error",
        max(coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2)) AS "max_readout_error",
        min(q."t1") AS "min_t1", min(q."t2") AS "min_t2", avg(q."t1") AS "mean_t1", avg(q."t2") AS "mean_t2",
        avg(q."fidelity") AS "mean_fidelity_1q", min(q."fidelity") AS "min_fidelity_1q"
    FROM used AS u
    LEFT JOIN "qubit_calibrations" AS q
        ON q."device_id" = u."device_id" AND q."calibrated_at" = u."calibrated_at" AND q."qubit_id" = u."qubit"
    GROUP BY u."job_id"
), coupling_stats AS (
    SELECT
        a."job_id", count(*) AS "couplings_calibrated",
        avg(c."fidelity") AS "mean_fidelity_2q", min(c."fidelity") AS "min_fidelity_2q"
    FROM used AS a
    JOIN "coupling_calibrations" AS c
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
    epoch(coalesce(j."running_at", j."submitted_at")) - epoch(f."calibrated_at")
        AS "calibration_age_seconds",
    j."submitted_month"
FROM "jobs" AS j
LEFT JOIN job_in_force AS f ON f."job_id" = j."job_id"
LEFT JOIN qubit_stats AS s ON s."job_id" = j."job_id"
LEFT JOIN coupling_stats AS c ON c."job_id" = j."job_id";

-- One row per virtual qubit a job used (virtual_physical_mapping) with its physical qubit and that qubit's T1, T2, readout error and 1q fidelity in the calibration in force when the job ran (the rule of job_calibration); nulls where none is known.
CREATE OR REPLACE VIEW "job_qubits" AS
WITH mapped AS (
    SELECT m."job_id", m."device_id", m."submitted_month", u."virtual_qubit", u."physical_qubit"
    FROM (
        SELECT j."job_id", j."device_id", j."submitted_month", CASE WHEN json_valid(j."virtual_physical_mapping") THEN TRY_CAST(json_extract(j."virtual_physical_mapping", '$.qubit_mapping') AS MAP(VARCHAR, BIGINT)) END AS "mapping"
        FROM "jobs" AS j
        WHERE j."virtual_physical_mapping" IS NOT NULL
    ) AS m
    CROSS JOIN LATERAL (SELECT unnest(map_keys(m."mapping")) AS "virtual_qubit", unnest(map_values(m."mapping")) AS "physical_qubit") AS "u"
)
SELECT
    m."job_id", m."device_id", TRY_CAST(m."virtual_qubit" AS BIGINT) AS "virtual_qubit", m."physical_qubit",
    f."calibrated_at", q."t1", q."t2", coalesce(q."readout_assignment_error", (q."prob_meas1_prep0" + q."prob_meas0_prep1") / 2) AS "readout_assignment_error", q."fidelity",
    m."submitted_month"
FROM mapped AS m
LEFT JOIN "job_calibration" AS f ON f."job_id" = m."job_id"
LEFT JOIN "qubit_calibrations" AS q
    ON q."device_id" = m."device_id" AND q."calibrated_at" = f."calibrated_at" AND q."qubit_id" = m."physical_qubit";

-- Usage per submission month, device and job type: jobs, shots, execution seconds, failed and cancelled (wasted) jobs and seconds, median and p90 queue seconds.
CREATE OR REPLACE VIEW "usage_monthly" AS
SELECT
    t."submitted_month" AS "month",
    t."device_id" AS "device_id",
    t."job_type" AS "job_type",
    count(*) AS "jobs",
    CAST(sum(t."shots") AS BIGINT) AS "shots",
    round(coalesce(sum(t."execution_time"), 0), 3) AS "execution_seconds",
    count(CASE WHEN t."status" IN ('failed', 'cancelled') THEN 1 END) AS "wasted_jobs",
    round(coalesce(sum(CASE WHEN t."status" IN ('failed', 'cancelled') THEN t."execution_time" END), 0), 3) AS "wasted_seconds",
    round(median(t."queue_seconds"), 3) AS "median_queue_seconds",
    round(quantile_cont(t."queue_seconds", 0.9), 3) AS "p90_queue_seconds"
FROM "job_timings" AS t
GROUP BY t."submitted_month", t."device_id", t."job_type";

-- Usage per device over the whole export: the measures of usage_monthly.
CREATE OR REPLACE VIEW "usage_by_device" AS
SELECT
    t."device_id" AS "device_id",
    count(*) AS "jobs",
    CAST(sum(t."shots") AS BIGINT) AS "shots",
    round(coalesce(sum(t."execution_time"), 0), 3) AS "execution_seconds",
    count(CASE WHEN t."status" IN ('failed', 'cancelled') THEN 1 END) AS "wasted_jobs",
    round(coalesce(sum(CASE WHEN t."status" IN ('failed', 'cancelled') THEN t."execution_time" END), 0), 3) AS "wasted_seconds",
    round(median(t."queue_seconds"), 3) AS "median_queue_seconds",
    round(quantile_cont(t."queue_seconds", 0.9), 3) AS "p90_queue_seconds"
FROM "job_timings" AS t
GROUP BY t."device_id";
