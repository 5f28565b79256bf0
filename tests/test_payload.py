"""One home for the payload rules: the result objects and `flatten` read every payload form the same way, keep what
no column declares in `jobs.extra`, and read a date-time without a zone by the stated rule."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import PAYLOADS, load_payload

from oqtopus_data import flatten
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.results.payload import URL_MARKER, bitstring_to_int
from oqtopus_data.times import NAIVE_AS_UTC

AT = datetime(2025, 6, 1, tzinfo=UTC)
CORPUS = sorted(p for p in PAYLOADS.glob("*.json") if not p.stem.startswith(("missing_", "rejected_")))
LEGACY = {"tolerant_", "_legacy_", "_oldest_"}


def both_paths(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each rule's outcome as a user of the result objects sees it, and as the tables `flatten` builds hold it;
    `{"error": True}` where the objects' accessor refuses the data / flatten makes the job an `errors` row."""
    res = result_from_raw(payload)
    view = res.get_job_result() if res.is_sse() else res
    objects: dict[str, Any] = {"normalised": res.normalised, "program": res.program, "extra": res.extra or None}
    if res.sampling is not None:
        try:
            keyed = view.counts_with_integer_keys()
        except ValueError:
            objects = {"error": True}
        else:
            objects.update(counts=keyed["counts"], divided_counts=keyed["divided_counts"])
    if res.estimation is not None and "error" not in objects:
        objects.update(exp_value=view.exp_value, stds=view.stds, exp_value_imag=view.exp_value_imag,
                       operator=res.operator, operator_coeff_imag=res.operator_coeff_imag)

    tables = flatten([result_from_raw(payload)], exported_at=AT)
    if tables["errors"].num_rows:
        assert tables["jobs"].num_rows == tables["counts"].num_rows == 0
        return objects, {"error": True}
    (job,) = tables["jobs"].to_pylist()
    flat: dict[str, Any] = {"normalised": job["normalised"], "program": job["program"],
                            "extra": json.loads(job["extra"]) if job["extra"] else None}
    if res.sampling is not None:
        flat["counts"] = {bitstring_to_int(r["bitstring"]): r["count"] for r in tables["counts"].to_pylist()}
        flat["divided_counts"] = {}
        for r in tables["divided_counts"].to_pylist():
            flat["divided_counts"].setdefault(r["sub_result"], {})[bitstring_to_int(r["bitstring"])] = r["count"]
    for est in tables["estimations"].to_pylist():
        flat.update({key: est[key] for key in ("exp_value", "stds", "exp_value_imag", "operator",
                                               "operator_coeff_imag")})
    return objects, flat


def agree(payload: dict[str, Any]) -> None:
    objects, flat = both_paths(payload)
    assert flat == objects


def test_the_corpus_holds_every_legacy_form() -> None:
    names = {p.stem for p in CORPUS}
    assert {n for n in names if any(tag in n for tag in LEGACY)} >= {
        "tolerant_counts_json_string", "tolerant_divided_counts_json_string", "tolerant_sub_counts_json_string",
        "tolerant_exp_value_complex", "tolerant_program_single_string", "sampling_legacy_inline",
        "multi_manual_legacy_inline", "sampling_oldest_program_in_job_info", "estimation_oldest_operator_in_job_info"}


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_every_payload_form_reads_the_same_through_the_objects_and_flatten(path: Path) -> None:
    agree(json.loads(path.read_text(encoding="utf-8")))


def estimation_with_operator(operator: Any) -> dict[str, Any]:
    payload = load_payload("estimation_current")
    payload["job_info"]["input"]["operator"] = operator
    return payload


def test_an_operator_term_that_is_not_a_mapping_leaves_the_operator_out_on_both_paths() -> None:
    sent = [{"pauli": "X 0 X 1", "coeff": 1.0}, "Z 0 Z 1"]
    payload = estimation_with_operator(sent)
    agree(payload)
    res = result_from_raw(payload)
    note = "operator: term 1 is a str, not a mapping; operator left out (kept in extra)"
    assert (res.operator, res.normalised, res.extra) == (None, [note], {"input": {"operator": sent}})
    tables = flatten([res], exported_at=AT)
    assert tables["errors"].num_rows == 0
    (est,) = tables["estimations"].to_pylist()
    assert (est["exp_value"], est["operator"]) == (1.4958, None)
    (job,) = tables["jobs"].to_pylist()
    assert job["normalised"] == [note]
    assert json.loads(job["extra"]) == {"input": {"operator": sent}}


@pytest.mark.parametrize(("operator", "why"), [
    ("X 0 X 1", "a str rather than a list of terms"),
    ([{"coeff": 1.0}], "term 0 has no pauli string"),
    ([{"pauli": "Z 0", "coeff": "1.0"}], "term 0 has a coeff that is a str"),
    ([{"pauli": "Z 0", "coeff": [1.0, 2.0, 3.0]}], "term 0 has a coeff that is a list"),
])
def test_an_operator_of_another_shape_is_noted_and_kept_as_sent(operator: Any, why: str) -> None:
    payload = estimation_with_operator(operator)
    agree(payload)
    res = result_from_raw(payload)
    assert res.normalised == [f"operator: {why}; operator left out (kept in extra)"]
    assert res.extra == {"input": {"operator": operator}}


def test_complex_coefficients_keep_their_imaginary_parts_in_their_own_column() -> None:
    payload = estimation_with_operator([{"pauli": "X 0", "coeff": [0.5, -0.25]}, {"pauli": "Z 0", "coeff": 2}])
    agree(payload)
    (est,) = flatten([result_from_raw(payload)], exported_at=AT)["estimations"].to_pylist()
    assert est["operator"] == [{"pauli": "X 0", "coeff": 0.5}, {"pauli": "Z 0", "coeff": 2.0}]
    assert est["operator_coeff_imag"] == [-0.25, None]


def test_a_program_of_another_shape_is_left_out_noted_and_kept_in_extra() -> None:
    payload = load_payload("sampling_current")
    payload["job_info"]["input"]["program"] = ["OPENQASM 3;", {"qasm": "x q[0];"}]
    agree(payload)
    (job,) = flatten([result_from_raw(payload)], exported_at=AT)["jobs"].to_pylist()
    assert job["program"] is None
    assert job["normalised"] == ["program: a list rather than a list of strings, left out (kept in extra)"]
    assert json.loads(job["extra"]) == {"input": {"program": ["OPENQASM 3;", {"qasm": "x q[0];"}]}}


def test_keys_no_column_declares_are_kept_in_extra_by_section_with_presigned_urls_replaced() -> None:
    payload = load_payload("sse_sampling")
    signed = "https://bucket.s3.amazonaws.com/j/log.zip?X-Amz-Signature=abc123&X-Amz-Expires=600"
    payload.update(priority=3, owner={"group": "lab", "avatar": signed}, docs="https://example.org/jobs/1")
    payload["job_info"]["queue"] = "batch"
    payload["job_info"]["input"]["seed"] = 7
    payload["job_info"]["result"] = {**payload["job_info"]["result"], "memory": ["0", "1"]}
    payload["job_info"]["result"]["sampling"] = {**payload["job_info"]["result"]["sampling"], "shots_used": 1000}
    payload["job_info"]["transpile_result"] = {"transpiled_program": "OPENQASM 3;", "cost": {"depth": 4}}
    (job,) = flatten([result_from_raw(payload)], exported_at=AT)["jobs"].to_pylist()
    expected = {
        "job": {"docs": "https://example.org/jobs/1", "owner": {"avatar": URL_MARKER, "group": "lab"}, "priority": 3},
        "job_info": {"queue": "batch"},
        "input": {"seed": 7},
        "result": {"memory": ["0", "1"], "sampling": {"shots_used": 1000}},
        "transpile_result": {"cost": {"depth": 4}},
    }
    assert job["extra"] == json.dumps(expected, sort_keys=True, ensure_ascii=False)
    assert "X-Amz-Signature" not in job["extra"]
    assert job["transpiled_program"] == "OPENQASM 3;"


def test_a_payload_of_declared_keys_only_has_no_extra() -> None:
    results = [result_from_raw(json.loads(p.read_text(encoding="utf-8"))) for p in CORPUS]
    tables = flatten(results, exported_at=AT)
    jobs = tables["jobs"]
    assert jobs.num_rows + tables["errors"].num_rows == len(CORPUS)  # invalid keys and sub-results are errors
    assert jobs.num_rows > 20
    assert set(jobs["extra"].to_pylist()) == {None}  # sse_log (a presigned URL) is declared, never stored


def test_a_result_or_input_that_is_not_an_object_is_kept_whole() -> None:
    payload = load_payload("sampling_running_minimal")
    payload["job_info"]["input"] = ["OPENQASM 3;"]
    payload["job_info"]["result"] = "pending"
    res = result_from_raw(payload)
    assert res.extra == {"job_info": {"input": ["OPENQASM 3;"]}, "result": "pending"}
    agree(payload)


def test_a_timestamp_without_a_zone_is_read_as_utc_and_noted_on_both_paths() -> None:
    payload = load_payload("estimation_oldest_operator_in_job_info")
    agree(payload)
    res = result_from_raw(payload)
    assert res.normalised == [f"submitted_at: {NAIVE_AS_UTC}", f"ended_at: {NAIVE_AS_UTC}"]
    assert res.submitted_at == datetime(2023, 9, 19, 7, 20, tzinfo=UTC)
    (job,) = flatten([res], exported_at=AT)["jobs"].to_pylist()
    assert (job["submitted_at"], job["ended_at"]) == (
        datetime(2023, 9, 19, 7, 20, tzinfo=UTC), datetime(2023, 9, 19, 7, 20, 1, 250000, tzinfo=UTC))


def test_the_official_sdk_results_flatten_like_ours_on_every_form_its_model_keeps() -> None:
    from oqtopus_client import rest as models
    from oqtopus_client.services import job_results as sdk

    kinds = {"sampling": sdk.OqtopusSamplingJobResult, "estimation": sdk.OqtopusEstimationJobResult,
             "multi_manual": sdk.OqtopusMultiManualJobResult, "sse": sdk.OqtopusSseJobResult}
    for path in CORPUS:
        payload = json.loads(path.read_text(encoding="utf-8"))
        theirs = flatten([kinds[payload["job_type"]].from_raw(models.JobsJob.from_dict(payload))], exported_at=AT)
        ours = flatten([result_from_raw(copy.deepcopy(payload))], exported_at=AT)
        if "program" in payload["job_info"]:  # the oldest form: the SDK's model drops job_info.program/operator
            continue
        for name in ("jobs", "counts", "divided_counts", "estimations", "errors"):
            assert theirs[name].to_pylist() == ours[name].to_pylist(), (path.stem, name)
