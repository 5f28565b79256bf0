"""Check an exported dataset job by job against the local cloud's ground truth."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oqtopus_data import connect, result_from_raw


def expected_results(cloud: Any, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Result objects of every live, submitted job the cloud serves, by job_id."""
    skip = set(exclude)
    out = {}
    for job_id in cloud.history.job_ids():
        job = cloud.history.job(job_id)
        if job["status"] == "registered" or job_id in skip:
            continue
        out[job_id] = result_from_raw(job)
    return out


def assert_matches_ground_truth(out: Path | str, cloud: Any, *, exclude: Iterable[str] = (),
                                may_also_hold: Iterable[str] = (),
                                storage_options: dict[str, str] | None = None) -> dict[str, Any]:
    """No job missing, none twice, every status, count, divided count and estimation equal to the truth.

    `out` is a local directory or an object-store URL (`storage_options` go to its store).
    """
    truth = expected_results(cloud, exclude=exclude)
    con = connect(out, **(storage_options or {}))
    rows = con.execute("SELECT job_id, status, shots, device_id FROM jobs").fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "a job appears twice in jobs"
    extra = set(ids) - set(truth) - set(may_also_hold)
    missing = set(truth) - set(ids)
    assert not missing, f"{len(missing)} jobs missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected jobs, e.g. {sorted(extra)[:3]}"
    for job_id, status, shots, device_id in rows:
        if job_id in truth:
            res = truth[job_id]
            assert (status, shots, device_id) == (res.status, res.shots, res.device_id), job_id

    counts: dict[str, dict[str, int]] = {}
    for job_id, bitstring, n in con.execute("SELECT job_id, bitstring, count FROM counts").fetchall():
        assert bitstring not in counts.setdefault(job_id, {}), f"{job_id}: {bitstring} twice"
        counts[job_id][bitstring] = n
    divided: dict[str, dict[int, dict[str, int]]] = {}
    for job_id, sub, bitstring, n in con.execute(
            "SELECT job_id, sub_result, bitstring, count FROM divided_counts").fetchall():
        divided.setdefault(job_id, {}).setdefault(sub, {})[bitstring] = n
    estimations = {r[0]: r[1:] for r in con.execute("SELECT job_id, exp_value, stds FROM estimations").fetchall()}
    assert len(estimations) == con.execute("SELECT count(*) FROM estimations").fetchone()[0], "estimation twice"

    for job_id, res in truth.items():
        sampling = res.sampling
        want_counts = sampling.get("counts") if sampling else None
        assert counts.get(job_id) == (want_counts or None), f"{job_id}: counts differ"
        want_divided = (sampling or {}).get("divided_counts")
        got_divided = divided.get(job_id)
        if want_divided:
            assert got_divided == {int(k): v for k, v in want_divided.items() if v}, f"{job_id}: divided differ"
        else:
            assert got_divided is None, job_id
        if res.estimation is not None:
            assert estimations[job_id] == (res.estimation.get("exp_value"), res.estimation.get("stds")), job_id
        else:
            assert job_id not in estimations, job_id
    return truth
