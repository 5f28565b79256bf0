/* Queue and run time percentiles per device and month, from the job_timings view.

     oqtopus-data sql demo-out "$(cat examples/queue_times.sql)"
     oqtopus-data sql demo-out "$(cat examples/queue_times.sql)" --format csv --output queue_times.csv

   queue = submitted_at -> running_at and run = running_at -> ended_at, in seconds (see sql/views.sql).
   Jobs that never started have no queue time and are left out.
   (This file starts with a block comment, not "--", so that the shell line above does not read it as an option.) */
SELECT
    device_id,
    submitted_month AS month,
    count(*) AS jobs,
    round(quantile_cont(queue_seconds, 0.5), 1) AS queue_p50_s,
    round(quantile_cont(queue_seconds, 0.9), 1) AS queue_p90_s,
    round(quantile_cont(queue_seconds, 0.99), 1) AS queue_p99_s,
    round(max(queue_seconds), 1) AS queue_max_s,
    count(run_seconds) AS jobs_ended,
    round(quantile_cont(run_seconds, 0.5), 2) AS run_p50_s,
    round(quantile_cont(run_seconds, 0.9), 2) AS run_p90_s
FROM job_timings
WHERE queue_seconds IS NOT NULL
    -- narrow it down here, e.g.: AND device_id = 'Kawasaki' AND submitted_at >= TIMESTAMPTZ '2024-06-01'
GROUP BY device_id, month
ORDER BY device_id, month
