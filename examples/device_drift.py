"""How one circuit's fidelity moved across device calibrations: the report's drift, as a table, with polars.

    python examples/device_drift.py [EXPORT_DIR] [CIRCUIT]   # defaults: demo-out, the most repeated circuit

A circuit is what the jobs ran (their OpenQASM programs, comments and whitespace aside), whatever their names;
CIRCUIT picks one by a name its jobs carry or by the start of its key. Each run's Hellinger fidelity to the
circuit's reference distribution (its simulator runs pooled, else its runs on all devices) comes from
oqtopus_data.report.drift, the function the report draws with. Each run belongs to the calibration in force when
it was submitted: the newest `calibrated_at` of its device at or before its submission (from the calibration
views when the export has them, else its device snapshots); runs older than every known calibration, and
simulators, are grouped by UTC day. Means are weighted by shots and leave out low-shot runs, as the report does.
"""

import dataclasses
import sys

import polars as pl

import oqtopus_data
from oqtopus_data.report.drift import CircuitDrift, calibration_times

out = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
wanted = sys.argv[2] if len(sys.argv) > 2 else None

con = oqtopus_data.connect(out)
with CircuitDrift(con) as drift:
    found = drift.circuits(limit=1, match=wanted, min_runs=1 if wanted else 2)
    if not found:
        sys.exit(f"no circuit {wanted!r} with counts in {out}" if wanted else f"no circuit ran twice in {out}")
    circuit = found[0]
    runs = pl.DataFrame([dataclasses.asdict(run) for run in drift.runs([circuit])]).sort("submitted_at")

# Known calibrations per device, matched to each run (join_asof: the newest at or before its submission).
calibrations = pl.DataFrame(
    [(device, at) for device, times in calibration_times(con).items() for at in times],
    schema={"device_id": pl.String, "calibrated_at": runs["submitted_at"].dtype}, orient="row",
).sort("calibrated_at")
runs = runs.join_asof(calibrations, left_on="submitted_at", right_on="calibrated_at", by="device_id",
                      strategy="backward", check_sortedness=False)  # both sorted above
runs = runs.with_columns(
    period=pl.when(pl.col("calibrated_at").is_not_null())
    .then(pl.lit("calibration ") + pl.col("calibrated_at").dt.strftime("%Y-%m-%d %H:%M"))
    .otherwise(pl.lit("day ") + pl.col("submitted_at").dt.strftime("%Y-%m-%d"))
)

counted = ~pl.col("low_shots")
table = (
    runs.group_by("device_id", "period")
    .agg(
        runs=pl.len(),
        low_shot=pl.col("low_shots").sum(),
        first_run=pl.col("submitted_at").min().dt.strftime("%Y-%m-%d %H:%M"),
        fidelity=((pl.col("fidelity") * pl.col("shots")).filter(counted).sum()
                  / pl.col("shots").filter(counted).sum()).fill_nan(None).round(4),
        min=pl.col("fidelity").filter(counted).min().round(4),
        max=pl.col("fidelity").filter(counted).max().round(4),
    )
    .sort("device_id", "first_run")
)

print(f"{circuit.name} (circuit {circuit.key[:12]}): Hellinger fidelity to the pooled {circuit.reference} runs, "
      f"{runs.height} runs in {out}")
with pl.Config(tbl_rows=-1, tbl_width_chars=140):
    print(table)
