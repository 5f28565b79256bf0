"""exp_value with error bars across one estimation series (a VQE trace), with polars, saved as a PNG.

    pip install '.[examples]'          # matplotlib
    python examples/vqe_trace.py [EXPORT_DIR] [OUTPUT_PNG] [SERIES]
    python examples/vqe_trace.py demo-out vqe_trace.png vqe-h2-step-

A series is the estimation jobs whose names differ only in a trailing step number (vqe-h2-step-000,
vqe-h2-step-001, ... form the series "vqe-h2-step-"); the default is the series with the most jobs.
When the step number goes back, the optimiser was restarted: each restart is drawn as its own run.
"""

import sys

try:
    import matplotlib
except ImportError:
    sys.exit("vqe_trace.py draws with matplotlib: pip install '.[examples]' (or pip install matplotlib)")

matplotlib.use("Agg")  # write files only, never open a window
import matplotlib.pyplot as plt
import polars as pl

import oqtopus_data

out = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
png = sys.argv[2] if len(sys.argv) > 2 else "vqe_trace.png"
wanted = sys.argv[3] if len(sys.argv) > 3 else None
LAST_RUNS = 5  # draw only the newest runs

points = (
    oqtopus_data.scan(out, "estimations")
    .select("job_id", "exp_value", "stds")
    .join(oqtopus_data.scan(out, "jobs").select("job_id", "name", "device_id", "submitted_at"), on="job_id")
    .filter(pl.col("exp_value").is_not_null())
    .with_columns(
        series=pl.col("name").str.replace(r"\d+$", ""),
        step=pl.col("name").str.extract(r"(\d+)$").cast(pl.Int64),
    )
    .filter(pl.col("step").is_not_null())
    .collect()
)
if points.is_empty():
    sys.exit(f"no estimation job with a numbered name in {out}")
if wanted is None:
    sizes = points.group_by("series").agg(jobs=pl.len()).sort(["jobs", "series"], descending=[True, False])
    wanted = sizes["series"][0]

# Runs: a new one starts whenever the step is not larger than the previous job's step.
trace = (
    points.filter(pl.col("series") == wanted)
    .sort("submitted_at", "name")
    .with_columns(run=(pl.col("step").diff() <= 0).fill_null(False).cum_sum())
)
if trace.is_empty():
    sys.exit(f"no series {wanted!r} in {out}; series: {', '.join(sorted(points['series'].unique()))}")
newest = trace["run"].unique().sort().tail(LAST_RUNS)

fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for (run,), part in trace.filter(pl.col("run").is_in(newest.implode())).group_by("run", maintain_order=True):
    started = part["submitted_at"][0]
    ax.errorbar(part["step"], part["exp_value"], yerr=part["stds"].fill_null(0), fmt="o-", markersize=3,
                capsize=2, linewidth=1, label=f"run {run + 1}, from {started:%Y-%m-%d} ({part.height} steps)")
ax.set_title(f"{wanted}*  ({trace.height} jobs, {trace['run'].n_unique()} runs)")
ax.set_xlabel("step")
ax.set_ylabel("exp_value ± stds")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.savefig(png, dpi=120)

last = trace.tail(1).row(0, named=True)
print(f"{wanted}: {trace.height} jobs in {trace['run'].n_unique()} runs; newest {last['name']} on {last['device_id']}: "
      f"{last['exp_value']:.6f} ± {last['stds'] or 0:.6f}")
print(f"wrote {png}")
