"""How one circuit's success probability moved across device calibrations, with polars.

    python examples/device_drift.py [EXPORT_DIR] [CIRCUIT_NAME]        # defaults: demo-out bell-pair

Success = the probability of the outcomes the circuit should give: all zeros or all ones for GHZ-like circuits
("00" + "11" for bell-pair), else the outcome most frequent over all runs. Set EXPECTED to choose them yourself.
Each run belongs to the calibration in force when it was submitted: the newest `calibrated_at` of its device in
the `devices` snapshots at or before its submission. Runs older than every known calibration are grouped by day.
"""

import sys

import polars as pl

import oqtopus_data

out = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
circuit = sys.argv[2] if len(sys.argv) > 2 else "bell-pair"
EXPECTED: set[str] | None = None  # e.g. {"00", "11"}

# The circuit's finished runs, and only their counts (a semi join: the counts of other jobs are never read).
runs = (
    oqtopus_data.scan(out, "jobs")
    .filter((pl.col("name") == circuit) & (pl.col("status") == "succeeded") & (pl.col("total_count") > 0))
    .select("job_id", "device_id", "submitted_at", "total_count")
    .collect()
)
if runs.is_empty():
    sys.exit(f"no succeeded runs of {circuit!r} in {out}")
counts = (
    oqtopus_data.scan(out, "counts")
    .join(runs.lazy().select("job_id"), on="job_id", how="semi")
    .select("job_id", "bitstring", "n_bits", "count")
    .collect()
)

expected = EXPECTED
if expected is None:
    width = counts["n_bits"].max()
    if circuit == "bell-pair" or circuit.startswith("ghz"):
        expected = {"0" * width, "1" * width}
    else:
        totals = counts.group_by("bitstring").agg(pl.col("count").sum()).sort("count", descending=True)
        expected = {totals["bitstring"][0]}

# Success probability of every run: expected counts / all counts (0 when no expected outcome was measured).
success = (
    runs.join(
        counts.filter(pl.col("bitstring").is_in(sorted(expected))).group_by("job_id").agg(pl.col("count").sum()),
        on="job_id", how="left",
    )
    .with_columns(success=pl.col("count").fill_null(0) / pl.col("total_count"))
    .sort("submitted_at")
)

# Known calibrations per device: every distinct calibrated_at seen in a device snapshot.
calibrations = (
    oqtopus_data.scan(out, "devices")
    .select("device_id", "calibrated_at")
    .drop_nulls()
    .unique()
    .sort("calibrated_at")
    .collect()
)
success = success.join_asof(calibrations, left_on="submitted_at", right_on="calibrated_at", by="device_id",
                            strategy="backward", check_sortedness=False)  # both sorted above
success = success.with_columns(
    period=pl.when(pl.col("calibrated_at").is_not_null())
    .then(pl.lit("calibration ") + pl.col("calibrated_at").dt.strftime("%Y-%m-%d %H:%M"))
    .otherwise(pl.lit("day ") + pl.col("submitted_at").dt.strftime("%Y-%m-%d"))
)

table = (
    success.group_by("device_id", "period")
    .agg(
        runs=pl.len(),
        first_run=pl.col("submitted_at").min().dt.strftime("%Y-%m-%d %H:%M"),
        mean_success=pl.col("success").mean().round(4),
        min_success=pl.col("success").min().round(4),
        max_success=pl.col("success").max().round(4),
    )
    .sort("device_id", "first_run")
)

print(f"{circuit}: success = P({' + '.join(sorted(expected))}), {runs.height} runs in {out}")
if calibrations.is_empty() or success["calibrated_at"].is_null().all():
    print("(no calibration recorded before these runs: grouped by UTC day)")
with pl.Config(tbl_rows=-1, tbl_width_chars=140):
    print(table)
