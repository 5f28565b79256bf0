"""Compaction streams: the merge of a partition's files holds one input file at a time, whatever their number."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pyarrow as pa

from oqtopus_data import flatten, write_dataset
from oqtopus_data.dataset import dataset as dataset_module
from oqtopus_data.dataset.dataset import Dataset, compact

EXPORTED_AT = datetime(2025, 1, 1, tzinfo=UTC)
FILES = 8


def _jobs(first: int, n: int, outcomes: int = 2000) -> list[dict]:
    """Sampling jobs of one month, each with `outcomes` count rows: a few MB of Arrow per file."""
    return [{"job_id": f"job-{first + i:06d}", "name": "n", "job_type": "sampling", "status": "succeeded",
             "device_id": "SVSim", "shots": outcomes, "submitted_at": "2024-03-01T00:00:00Z",
             "job_info": {"result": {"sampling": {"counts": {format(k, "016b"): 1 for k in range(outcomes)}}}}}
            for i in range(n)]


def _counts(out) -> pa.Table:
    return Dataset(out).read_table("counts").sort_by([("job_id", "ascending"), ("bitstring", "ascending")])


def _peak_arrow_bytes(work) -> int:
    """The most Arrow memory allocated at once while `work()` runs (sampled every millisecond)."""
    peak = pa.total_allocated_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.001):
            peak = max(peak, pa.total_allocated_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peak


def test_compaction_holds_one_input_file_at_a_time(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    for f in range(FILES):
        write_dataset(flatten(_jobs(f * 20, 20), exported_at=EXPORTED_AT), out)
    before = _counts(out)
    one_file = before.nbytes // FILES
    monkeypatch.setattr(dataset_module, "ROW_GROUP_ROWS", 1, raising=False)  # each input file is a row group of its own
    base = pa.total_allocated_bytes()
    peak = _peak_arrow_bytes(lambda: compact(out))
    manifest = Dataset(out).require_latest()
    assert [len(manifest.entries(t)) for t in ("jobs", "counts")] == [1, 1]
    assert _counts(out).equals(before)
    assert manifest.entries("counts")[0].rows == before.num_rows
    # The whole partition would be FILES files' worth; streaming holds about one (plus the writer's buffers).
    assert peak - base < 3 * one_file


def test_small_files_are_joined_into_row_groups_of_a_useful_size(tmp_path) -> None:
    out = tmp_path / "out"
    for f in range(FILES):
        write_dataset(flatten(_jobs(f * 3, 3, outcomes=10), exported_at=EXPORTED_AT), out)
    compact(out)
    import pyarrow.parquet as pq

    entry = Dataset(out).require_latest().entries("counts")[0]
    assert pq.ParquetFile(out / entry.path).metadata.num_row_groups == 1
    assert entry.rows == FILES * 3 * 10
