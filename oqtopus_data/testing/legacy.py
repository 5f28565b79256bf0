"""The legacy job form of old servers: job_info inline, with the quirks they had."""

from __future__ import annotations

import json
import random
from typing import Any

from oqtopus_data.testing.catalog import mix


def legacy_quirks(seed: int, idx: int, job_type: int, keys: tuple[str, ...]) -> frozenset[str]:
    """Which of LEGACY_QUIRKS job `idx` shows in its legacy form (`keys`: its job_info archives)."""
    rng = random.Random(mix(seed, idx, 20))
    out = set()
    if rng.random() < 0.35 and "result" in keys and job_type != 1:
        out.add("counts_as_string")
    if rng.random() < 0.5 and "result" in keys and job_type == 1:
        out.add("exp_value_complex")
    if rng.random() < 0.3 and job_type != 3 and keys:
        out.add("program_at_top")
    return frozenset(out)


def legacy_form(job: dict[str, Any], quirks: frozenset[str]) -> dict[str, Any]:
    """`job` (ground truth, job_info inline; modified in place) with `quirks` applied."""
    info = job.get("job_info")
    if info is None:
        return job
    sampling = (info.get("result") or {}).get("sampling")
    if "counts_as_string" in quirks and sampling and "counts" in sampling:
        sampling["counts"] = json.dumps(sampling["counts"])
    estimation = (info.get("result") or {}).get("estimation")
    if "exp_value_complex" in quirks and estimation and isinstance(estimation.get("exp_value"), float):
        estimation["exp_value"] = [estimation["exp_value"], 0.0]
    if "program_at_top" in quirks:
        old = info.pop("input")  # its undeclared keys, if any, did not exist in this form
        info = {"program": old["program"], **({"operator": old["operator"]}
                                              if "operator" in old else {}), **info}
        job["job_info"] = info
    return job
