"""Our result objects against oqtopus-client 1.3.0's on every payload of the corpus, accessor by accessor.

The SDK reads each payload two ways: from `JobsJob.from_dict(payload)`, and from that model with
job_info's input/result/transpile_result parsed into its S3 models (what its client does after
downloading the archives). Ours reads the plain dict and both models; every pairing is compared.
`tolerant_*` payloads are where we differ on purpose (see test_results.py and the last test here);
`rejected_*` ones the SDK's pydantic model refuses, so they are compared at the constructor.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from oqtopus_client import rest as models
from oqtopus_client.services import job_results as sdk

from oqtopus_data.results import objects as ours

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"
ALL = sorted(PAYLOADS.glob("*.json"))
PARITY = [p for p in ALL if not p.name.startswith(("tolerant_", "rejected_"))]
REJECTED = [p for p in ALL if p.name.startswith("rejected_")]
TOLERANT = [p for p in ALL if p.name.startswith("tolerant_")]

PROPERTIES = (
    "job_id", "job_type", "status", "name", "description", "device_id", "shots",
    "transpiler_info", "simulator_info", "mitigation_info", "transpile_result", "message",
    "execution_time", "submitted_at", "ready_at", "running_at", "ended_at", "sampling", "estimation",
    "exp_value", "stds",
)
METHODS = (
    "is_sampling", "is_estimation", "is_multi_manual", "is_sse", "get_counts",
    "counts_with_integer_keys", "get_divided_counts", "get_exp_value", "get_stds",
)
FIELDS = (
    "job_id", "job_type", "status", "name", "description", "device_id", "shots", "job_info",
    "transpiler_info", "simulator_info", "mitigation_info", "execution_time",
    "submitted_at", "ready_at", "running_at", "ended_at",
)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def canon(value: Any) -> Any:
    """Compare by meaning: enums by value, SDK models as their dicts, naive datetimes as UTC, and a
    None-valued key the same as an absent one (pydantic's dumps drop some, keep others)."""
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return canon(value.to_dict())
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return {
            key: canon(item) for key, item in value.items()
            if item is not None and not (key == "additional_properties" and item == {})
        }
    if isinstance(value, list | tuple):
        return [canon(item) for item in value]
    return value


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", canon(call())
    except Exception as exc:  # the exception itself is what is compared
        return "raises", type(exc).__name__, str(exc)


def observe(result: Any) -> dict[str, Any]:
    """Everything the SDK's API lets a user see of a result (job_info apart, see below)."""
    seen: dict[str, Any] = {"class": type(result).__name__}
    seen["repr"] = re.sub(r"<Jobs(JobType|JobStatus)\.", r"<\1.", repr(result))  # enum names
    for name in PROPERTIES:
        if hasattr(type(result), name):
            seen[name] = outcome(lambda name=name: getattr(result, name))
    for name in METHODS:
        if hasattr(result, name):
            seen[name] = outcome(getattr(result, name))
    if hasattr(result, "get_job_result"):
        seen["get_job_result"] = observe(result.get_job_result())
    return seen


def assert_same_job_info(our_info: Any, sdk_info: Any, raw_info: Any) -> None:
    """Ours keeps every key the SDK keeps, equal; it may also keep what the SDK's model drops
    (the oldest form's program/operator in job_info), equal to what the payload sent."""
    mine, theirs = canon(our_info), canon(sdk_info)
    if theirs is None:
        assert mine is None
        return
    assert {key: mine.get(key) for key in theirs} == theirs
    for key in set(mine) - set(theirs):
        assert mine[key] == canon(raw_info[key]), key


def sdk_class(job_type: Any) -> type[sdk.OqtopusJobResult]:
    """The class the SDK's client `_to_result` picks."""
    return {
        models.JobsJobType.MULTI_MANUAL: sdk.OqtopusMultiManualJobResult,
        models.JobsJobType.SSE: sdk.OqtopusSseJobResult,
        models.JobsJobType.SAMPLING: sdk.OqtopusSamplingJobResult,
        models.JobsJobType.ESTIMATION: sdk.OqtopusEstimationJobResult,
    }.get(job_type, sdk.OqtopusJobResult)


def resolved(job: models.JobsJob) -> models.JobsJob:
    """The job as the SDK's client returns it once the archives are downloaded and parsed."""
    info = job.job_info
    if info is None:
        return job
    parsers = {
        "input": models.JobsS3SubmitJobInfo.from_dict,
        "result": models.JobsS3JobResult.from_dict,
        "transpile_result": models.JobsS3TranspileResult.from_dict,
    }
    update = {key: parse(getattr(info, key)) for key, parse in parsers.items()
              if isinstance(getattr(info, key), dict)}
    return job.model_copy(update={"job_info": info.model_copy(update=update)})


def build_sdk(job: models.JobsJob) -> Any:
    try:
        return sdk_class(job.job_type).from_raw(job)
    except ValueError as exc:
        return exc


def build_ours(job: Any) -> Any:
    try:
        return ours.result_from_raw(job)
    except ValueError as exc:
        return exc


def assert_same(mine: Any, theirs: Any, raw: dict[str, Any]) -> None:
    if isinstance(theirs, Exception):
        assert isinstance(mine, ValueError), mine
        assert str(mine) == str(theirs)
        return
    assert not isinstance(mine, Exception), mine
    assert observe(mine) == observe(theirs)
    assert_same_job_info(mine.job_info, theirs.job_info, raw.get("job_info"))


@pytest.mark.parametrize("path", PARITY, ids=[p.name for p in PARITY])
def test_every_accessor_matches_the_sdk(path: Path) -> None:
    payload = load(path)
    model = models.JobsJob.from_dict(payload)
    theirs, theirs_resolved = build_sdk(model), build_sdk(resolved(model))
    for job in (payload, model, resolved(model)):
        assert_same(build_ours(job), theirs, payload)
        assert_same(build_ours(job), theirs_resolved, payload)


@pytest.mark.parametrize("path", REJECTED, ids=[p.name for p in REJECTED])
def test_constructor_matches_the_sdk_where_its_model_refuses_the_payload(path: Path) -> None:
    payload = load(path)
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        models.JobsJob.from_dict(payload)
    info = payload.get("job_info") or {}
    kwargs = {key: payload.get(key) for key in FIELDS}
    kwargs.update(transpile_result=info.get("transpile_result"), message=info.get("message"))
    with pytest.raises(ValueError) as theirs:
        sdk.OqtopusJobResult(**kwargs)
    with pytest.raises(ValueError) as mine:
        ours.OqtopusJobResult(**kwargs)
    assert str(mine.value) == str(theirs.value)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        ours.result_from_raw(payload)


def test_corpus_covers_what_it_claims() -> None:
    """Guard against a corpus that quietly stops exercising a case."""
    kinds = {load(p).get("job_type") for p in PARITY}
    assert {"sampling", "estimation", "multi_manual", "sse"} <= kinds
    raising = {p.stem for p in PARITY if isinstance(build_sdk(models.JobsJob.from_dict(load(p))),
                                                     ValueError)}
    assert {f"missing_{f}" for f in ("job_id", "job_type", "status", "name", "device_id",
                                     "shots", "job_info")} <= raising
    bad_keys = [p for p in PARITY if "invalid" in p.stem]
    for path in bad_keys:
        result = build_sdk(models.JobsJob.from_dict(load(path)))
        assert outcome(result.counts_with_integer_keys)[0] == "raises", path.name


@pytest.mark.parametrize("path", TOLERANT, ids=[p.name for p in TOLERANT])
def test_tolerant_payloads_are_where_we_differ_from_the_sdk(path: Path) -> None:
    """Documents the deliberate difference: the SDK reads nothing (or fails), we read and note."""
    payload = load(path)
    theirs = build_sdk(models.JobsJob.from_dict(payload))
    mine = build_ours(payload)
    assert mine.normalised
    if isinstance(mine, ours.OqtopusSamplingJobResult) and "counts: parsed" in mine.normalised[0]:
        assert theirs.get_counts() == {} != mine.get_counts()
    if isinstance(mine, ours.OqtopusEstimationJobResult):
        assert theirs.get_exp_value() is None is not mine.get_exp_value()
