"""The counts of one job as a numpy probability vector indexed by outcome, for mitigation or fitting code.

    python examples/counts_to_numpy.py [EXPORT_DIR] [JOB_ID]

Without JOB_ID it takes the most recent sampling job measuring at most 20 bits. probs[k] is the probability of
the outcome whose bitstring, read as a binary number, is k: the leftmost character is the most significant bit
("011" -> 3), so classical bit 0 is the rightmost character, as in OpenQASM and Qiskit.
"""

import sys

import numpy as np
import polars as pl

import oqtopus_data
from oqtopus_data.results.payload import clean_bitstring

out = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
job_id = sys.argv[2] if len(sys.argv) > 2 else None
MAX_BITS = 20  # a dense vector of 2**20 doubles is 8 MiB; wider registers need a sparse form

jobs = oqtopus_data.scan(out, "jobs").select("job_id", "name", "job_type", "device_id", "shots", "submitted_at")
count_rows = oqtopus_data.scan(out, "counts").select("job_id", "outcome", "n_bits", "count")

if job_id is None:
    widths = count_rows.group_by("job_id").agg(n_bits=pl.col("n_bits").max())
    newest = (
        jobs.filter(pl.col("job_type") == "sampling")
        .join(widths.filter(pl.col("n_bits") <= MAX_BITS), on="job_id")
        .sort("submitted_at", descending=True)
        .head(1)
        .collect()
    )
    if newest.is_empty():
        sys.exit(f"no sampling job with counts of at most {MAX_BITS} bits in {out}")
    job_id = newest["job_id"][0]

try:
    result = oqtopus_data.load_result(out, job_id)  # the SDK's result object, rebuilt from the export alone
except oqtopus_data.JobNotFound:
    sys.exit(f"no job {job_id} in {out}")
counts = result.counts_with_integer_keys()["counts"] if result.sampling else {}  # {outcome: count}
if not counts:
    sys.exit(f"job {job_id} has no counts (only sampling jobs that succeeded have them)")
n_bits = max(len(clean_bitstring(key)) for key in result.get_counts())
if n_bits > MAX_BITS:
    sys.exit(f"job {job_id} measures {n_bits} bits: 2**{n_bits} entries is too many for a dense vector")

probs = np.zeros(2**n_bits)
probs[list(counts)] = list(counts.values())
shots_counted = probs.sum()
probs /= shots_counted

print(f"job {job_id}: {result.name} on {result.device_id}, {int(shots_counted):,} shots counted")
print(f"{n_bits} bits -> probability vector of length {probs.size}")
for k in np.argsort(probs)[::-1][:8]:
    if probs[k] > 0:
        print(f"  probs[{k:>{len(str(probs.size))}}]  {k:0{n_bits}b}  {probs[k]:.6f}")
if probs.size <= 16:
    print("probs =", np.array2string(probs, precision=4, floatmode="fixed"))
print(f"sum of probabilities: {probs.sum():.6f}")
