"""The counts columns are built over the keys' bytes at once; every kind of key lands as it was sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oqtopus_data import flatten

EXPORTED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def _job(n: int, counts: dict) -> dict:
    return {"job_id": f"job-{n}", "name": "n", "job_type": "sampling", "status": "succeeded", "device_id": "SVSim",
            "shots": 10, "submitted_at": "2024-03-01T00:00:00Z",
            "job_info": {"result": {"sampling": {"counts": counts}}}}


@pytest.mark.parametrize("keys", [
    ["0", "1"],  # one width
    ["0", "10", "110", "0b1", "1 1", "1_0"],  # several widths and forms the SDK reads
    ["１0"],  # not ASCII (a full-width digit): the general conversion, then the usual check
    ["0\x001"],  # the separator inside a key: the general conversion
])
def test_every_key_lands_as_sent_next_to_the_jobs_around_it(keys: list[str]) -> None:
    jobs = [_job(0, {"00": 5}), _job(1, dict.fromkeys(keys, 1)), _job(2, {}), _job(3, {"11": 7})]
    tables = flatten(jobs, exported_at=EXPORTED_AT)
    counts = tables["counts"].select(["job_id", "bitstring", "count"]).to_pylist()
    bad = {row["job_id"] for row in tables["errors"].to_pylist()}
    middle = [] if "job-1" in bad else [{"job_id": "job-1", "bitstring": k, "count": 1} for k in keys]
    assert counts == [{"job_id": "job-0", "bitstring": "00", "count": 5}, *middle,
                      {"job_id": "job-3", "bitstring": "11", "count": 7}]
    assert bad == (set() if keys[0].isascii() and "\x00" not in keys[0] else {"job-1"})


def test_outcomes_of_one_width_and_of_several_are_the_same_numbers() -> None:
    one = flatten([_job(0, {"101": 1, "011": 2})], exported_at=EXPORTED_AT)["counts"]
    mixed = flatten([_job(0, {"101": 1, "011": 2}), _job(1, {"1": 1, "0b1111": 1})], exported_at=EXPORTED_AT)["counts"]
    assert one["outcome"].to_pylist() == [5, 3]
    assert mixed["outcome"].to_pylist() == [5, 3, 1, 15]
