"""The flatteners: results in, tables with the declared schemas out; bad jobs only in `errors`."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime

import pyarrow as pa
from conftest import load_payload, result
from hypothesis import given, settings
from hypothesis import strategies as st

from oqtopus_data import flatten
from oqtopus_data.results.objects import bitstring_to_int, result_from_raw
from oqtopus_data.tables.schema import SCHEMAS

AT = datetime(2025, 6, 1, tzinfo=UTC)


def test_every_table_has_its_declared_schema(good_results):
    tables = flatten(good_results, exported_at=AT)
    assert set(tables) == {"jobs", "counts", "divided_counts", "estimations", "errors"}
    for name, table in tables.items():
        assert table.schema.equals(SCHEMAS[name], check_metadata=False), name


def test_sampling_job_gives_one_jobs_row_and_one_counts_row_per_bitstring():
    tables = flatten([result("sampling_current")], exported_at=AT)
    assert tables["counts"].to_pylist() == [
        {"job_id": "01JNGQ4W7C9Y1T2R3E5M8A6K0B", "bitstring": b, "outcome": o, "n_bits": 2, "count": c,
         "submitted_month": "2025-03"}
        for b, o, c in [("00", 0, 484), ("01", 1, 12), ("10", 2, 9), ("11", 3, 495)]
    ]
    (job,) = tables["jobs"].to_pylist()
    assert job["job_id"] == "01JNGQ4W7C9Y1T2R3E5M8A6K0B"
    assert (job["job_type"], job["status"], job["device_id"], job["shots"]) == (
        "sampling", "succeeded", "Kawasaki", 1000)
    assert job["submitted_at"] == datetime(2025, 3, 4, 9, 12, 31, 204000, tzinfo=UTC)
    assert job["ended_at"] == datetime(2025, 3, 4, 9, 14, 5, 441000, tzinfo=UTC)
    assert job["execution_time"] == 3.324
    assert job["transpiler_info"] == '{"qubit_allocation": {"0": 12, "1": 16}, "seed_transpilation": 873, ' \
                                     '"skip_transpilation": false}'
    assert job["mitigation_info"] == '{"ro_error_mitigation": "pseudo_inverse"}'
    assert job["program"][0].startswith("OPENQASM 3;")
    assert job["transpiled_program"].startswith("OPENQASM 3;")
    assert '"qubit_mapping": {"0": 12, "1": 16}' in job["virtual_physical_mapping"]
    assert job["n_outcomes"] == 4 and job["total_count"] == 1000
    assert job["exported_at"] == AT and job["submitted_month"] == "2025-03"
    assert tables["errors"].num_rows == 0


def test_multi_manual_job_gives_divided_counts_rows_per_sub_result():
    res = result("multi_manual_current")
    tables = flatten([res], exported_at=AT)
    divided = res.sampling["divided_counts"]
    expected = sorted(
        (int(sub), bits, n) for sub, counts in divided.items() for bits, n in counts.items()
    )
    got = sorted((r["sub_result"], r["bitstring"], r["count"]) for r in tables["divided_counts"].to_pylist())
    assert got == expected
    assert tables["counts"].num_rows == len(res.get_counts())
    assert {r["outcome"] for r in tables["divided_counts"].to_pylist()} == {
        bitstring_to_int(b) for _, b, _ in expected
    }


def test_estimation_row_carries_value_stds_and_operator_terms():
    tables = flatten([result("estimation_current")], exported_at=AT)
    assert tables["estimations"].to_pylist() == [{
        "job_id": "01JNGT0K1L2M3N4P5Q6R7S8T9U", "exp_value": 1.4958, "stds": 0.0231, "exp_value_imag": None,
        "operator": [{"pauli": "X 0 X 1", "coeff": 1.0}, {"pauli": "Z 0 Z 1", "coeff": 0.5}],
        "operator_coeff_imag": None, "submitted_month": "2025-03",
    }]
    assert tables["counts"].num_rows == 0


def test_prefixed_and_spaced_keys_parse_like_the_sdk_and_wide_ones_have_no_outcome():
    payload = load_payload("sampling_current")
    payload["job_info"]["result"]["sampling"]["counts"] = {"0b01": 1, "1 0": 2, "1_1": 3, "1" * 65: 4, "1" * 64: 5}
    rows = flatten([result_from_raw(payload)], exported_at=AT)["counts"].to_pylist()
    assert [(r["bitstring"], r["outcome"], r["n_bits"]) for r in rows] == [
        ("0b01", 1, 2), ("1 0", 2, 2), ("1_1", 3, 2), ("1" * 65, None, 65), ("1" * 64, 2**64 - 1, 64),
    ]


def test_job_with_an_invalid_bitstring_lands_only_in_errors():
    good, bad = result("sampling_current"), load_payload("sampling_current")
    bad["job_id"] = "bad-job"
    bad["job_info"]["result"]["sampling"]["counts"] = {"00": 5, "012": 3}
    tables = flatten([good, result_from_raw(bad)], exported_at=AT)
    assert tables["errors"].to_pylist() == [
        {"job_id": "bad-job", "stage": "flatten", "message": "invalid bitstring '012' in counts", "recorded_at": AT}
    ]
    for name in ("jobs", "counts"):
        assert set(tables[name]["job_id"].to_pylist()) == {good.job_id}


def test_non_integer_negative_and_bool_counts_are_rejected_per_job():
    cases = {"float": 2.5, "negative": -1, "text": "7", "bool": True}
    results = []
    for job_id, value in cases.items():
        payload = copy.deepcopy(load_payload("sampling_current"))
        payload["job_id"] = job_id
        payload["job_info"]["result"]["sampling"]["counts"] = {"00": 1, "11": value}
        results.append(result_from_raw(payload))
    tables = flatten(results, exported_at=AT)
    messages = dict(zip(tables["errors"]["job_id"].to_pylist(), tables["errors"]["message"].to_pylist(), strict=True))
    assert messages == {
        "float": "counts has a count that is not an integer: 2.5",
        "negative": "counts has a negative count: -1",
        "text": "counts has a count that is not an integer: '7'",
        "bool": "counts has a count that is not an integer: True",
    }
    assert tables["jobs"].num_rows == tables["counts"].num_rows == 0


def test_absurd_timestamp_is_an_error_not_a_row():
    payload = load_payload("sampling_current")
    payload["ended_at"] = "2999-01-01T00:00:00Z"
    tables = flatten([result_from_raw(payload)], exported_at=AT)
    assert tables["jobs"].num_rows == 0
    assert tables["errors"]["message"].to_pylist() == [
        "ended_at 2999-01-01T00:00:00+00:00 is out of range (2000 to 2199)"]


def test_legacy_forms_are_read_and_noted():
    tables = flatten([result("tolerant_counts_json_string"), result("tolerant_exp_value_complex")], exported_at=AT)
    jobs = {r["job_id"]: r for r in tables["jobs"].to_pylist()}
    assert tables["errors"].num_rows == 0
    assert all(job["normalised"] for job in jobs.values())
    (est,) = tables["estimations"].to_pylist()
    assert est["exp_value_imag"] is not None
    assert tables["counts"].num_rows == len(result("tolerant_counts_json_string").get_counts())


def test_an_exp_value_of_one_number_in_a_list_is_written_not_refused():
    """`[0.42]` is what the server's schema allows (a list of 1 or 2 numbers): a row, not an `errors` row."""
    tables = flatten([result("tolerant_exp_value_list_of_one")], exported_at=AT)
    assert tables["errors"].num_rows == 0
    (est,) = tables["estimations"].to_pylist()
    assert (est["exp_value"], est["exp_value_imag"], est["stds"]) == (0.42, None, 0.0231)
    assert est["operator"] == [{"pauli": "X 0 X 1", "coeff": 1.0}, {"pauli": "Z 0 Z 1", "coeff": 0.5}]
    assert est["operator_coeff_imag"] is None
    (job,) = tables["jobs"].to_pylist()
    assert job["normalised"] == ["exp_value: [x] [0.42], read as 0.42 (imaginary part 0)",
                                 "operator[0].coeff: [x] [1.0], read as 1.0 (imaginary part 0)"]


def test_the_official_sdk_results_flatten_like_ours():
    from oqtopus_client import rest as models
    from oqtopus_client.services.job_results import OqtopusEstimationJobResult, OqtopusSamplingJobResult

    sdk = [
        OqtopusSamplingJobResult.from_raw(models.JobsJob.from_dict(load_payload("sampling_current"))),
        OqtopusEstimationJobResult.from_raw(models.JobsJob.from_dict(load_payload("estimation_current"))),
    ]
    ours = [result("sampling_current"), result("estimation_current")]
    a, b = flatten(sdk, exported_at=AT), flatten(ours, exported_at=AT)
    for name in ("jobs", "counts", "estimations"):
        assert a[name].to_pylist() == b[name].to_pylist(), name


bitstrings = st.text(alphabet="01", min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(bitstrings, st.integers(0, 10**9), max_size=40), min_size=1, max_size=8))
def test_rows_and_sums_of_counts_always_match_the_input(jobs_counts):
    results = []
    for i, counts in enumerate(jobs_counts):
        payload = copy.deepcopy(load_payload("sampling_current"))
        payload["job_id"] = f"job-{i}"
        payload["job_info"]["result"]["sampling"]["counts"] = counts
        results.append(result_from_raw(payload))
    tables = flatten(results, exported_at=AT)
    counts = tables["counts"]
    assert counts.num_rows == sum(len(c) for c in jobs_counts)
    assert tables["jobs"]["total_count"].to_pylist() == [sum(c.values()) for c in jobs_counts]
    for row in counts.to_pylist():
        expected = int(row["bitstring"], 2) if len(row["bitstring"]) <= 64 else None
        assert row["outcome"] == expected and row["n_bits"] == len(row["bitstring"])
    total = pa.compute.sum(counts["count"]).as_py() or 0
    assert total == sum(sum(c.values()) for c in jobs_counts)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="01 _b", min_size=0, max_size=12), min_size=1, max_size=30, unique=True))
def test_vectorised_parser_agrees_with_the_sdk_rule(keys):
    payload = load_payload("sampling_current")
    payload["job_info"]["result"]["sampling"]["counts"] = dict.fromkeys(keys, 1)
    tables = flatten([result_from_raw(payload)], exported_at=AT)
    valid = {}
    for key in keys:
        with contextlib.suppress(ValueError):
            valid[key] = bitstring_to_int(key)
    if len(valid) < len(keys):
        assert tables["errors"].num_rows == 1 and tables["counts"].num_rows == 0
    else:
        got = {r["bitstring"]: r["outcome"] for r in tables["counts"].to_pylist()}
        assert got == valid


def test_flatten_batch_hands_back_errors_and_final_ids_as_values_beside_the_tables():
    """The exporter reads failures and final ids from values, not back from the Arrow tables."""
    from oqtopus_data.tables.flatten import flatten_batch

    running = load_payload("sampling_current")
    running.update(job_id="running-job", status="running")
    bad_count = load_payload("sampling_current")
    bad_count["job_id"] = "bad-count"
    bad_count["job_info"]["result"]["sampling"]["counts"] = {"00": -1}
    bad_key = load_payload("sampling_current")
    bad_key["job_id"] = "bad-key"
    bad_key["job_info"]["result"]["sampling"]["counts"] = {"0x2": 5}
    items = [result("sampling_current"), result_from_raw(running), result_from_raw(bad_count),
             result_from_raw(bad_key), {"job_id": 7}]
    flat = flatten_batch(items, exported_at=AT)
    assert flat.final_ids == [result("sampling_current").job_id]
    assert flat.errors == [
        ("bad-count", "counts has a negative count: -1"),
        ("7", "Job payload is missing required fields: job_type, status, name, device_id, shots, job_info"),
        ("bad-key", "invalid bitstring '0x2' in counts"),
    ]
    assert flat.tables == flatten(items, exported_at=AT)
    assert [(r["job_id"], r["message"]) for r in flat.tables["errors"].to_pylist()] == flat.errors
    assert flat.tables["jobs"]["job_id"].to_pylist() == [result("sampling_current").job_id, "running-job"]
