-- oqtopus-data: DuckDB views over an export directory.
--
-- GENERATED from oqtopus_data/sqltext.py, where the views are declared once for DuckDB, Spark and Trino: edit VIEWS
-- there, then run `python -m oqtopus_data.sqltext > sql/views.sql`.
--
-- The base views `jobs`, `counts`, `divided_counts`, `estimations`, `errors`, `devices`, `sse_logs` read exactly the
-- Parquet files named by the export's newest commit manifest. Each `{{table}}` below is replaced by
-- oqtopus_data.connect with a `read_parquet([...])` of those files (or an empty relation of the declared columns),
-- so a reader never sees a half-written export. Columns are documented in docs/schema.md (oqtopus_data.schema).
-- Timestamps are TIMESTAMPTZ in UTC; connect() sets the session time zone to UTC.

CREATE OR REPLACE VIEW "jobs" AS SELECT * FROM {{jobs}};
CREATE OR REPLACE VIEW "counts" AS SELECT * FROM {{counts}};
CREATE OR REPLACE VIEW "divided_counts" AS SELECT * FROM {{divided_counts}};
CREATE OR REPLACE VIEW "estimations" AS SELECT * FROM {{estimations}};
CREATE OR REPLACE VIEW "errors" AS SELECT * FROM {{errors}};
CREATE OR REPLACE VIEW "devices" AS SELECT * FROM {{devices}};
CREATE OR REPLACE VIEW "sse_logs" AS SELECT * FROM {{sse_logs}};

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
