"""The typed fast path (`tables.typed`) gives exactly the tables and errors of the slow path (result objects and
per-value checks) on every payload: the corpus, a synthetic history, each value no column holds, and hypothesis'
extreme payloads. The slow path is forced by switching the typed decoder off."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_extreme_payloads import payloads
from test_sdk_parity import ALL
from test_unfit_values import CASES, edit

from oqtopus_data.results.objects import OqtopusJobResult
from oqtopus_data.tables import flatten as flatten_module
from oqtopus_data.tables import storable
from oqtopus_data.tables.flatten import flatten_batch
from oqtopus_data.tables.typed import TypedJob, decode, read_job
from oqtopus_data.testing import generate_history

AT = datetime(2025, 6, 1, tzinfo=UTC)


@contextmanager
def slow_path() -> Iterator[None]:
    """Every job read the way it was before the typed decoder: result objects and per-value checks."""
    original = flatten_module.decode
    flatten_module.decode = lambda item: None  # type: ignore[assignment]
    try:
        yield
    finally:
        flatten_module.decode = original


def both(jobs: list[Any]) -> tuple[Any, Any]:
    """(tables, errors, final ids) of one batch flattened by the fast path and by the slow path, as comparable
    text (NaN equals NaN in its repr)."""
    fast = flatten_batch(jobs, exported_at=AT)
    with slow_path():
        slow = flatten_batch(jobs, exported_at=AT)
    return [_seen(fast), _seen(slow)]


def _seen(flat: Any) -> str:
    tables = {name: (t.schema, t.to_pylist()) for name, t in flat.tables.items()}
    return repr((tables, flat.errors, flat.final_ids))


def corpus() -> list[dict[str, Any]]:
    return [load_payload(path.stem) for path in ALL]


@pytest.mark.parametrize("name", [path.stem for path in ALL])
def test_each_corpus_payload_gives_the_same_rows_by_either_path(name: str) -> None:
    fast, slow = both([load_payload(name)])
    assert fast == slow


def test_the_corpus_and_a_history_flatten_alike_by_either_path_and_most_jobs_take_the_typed_one() -> None:
    history = generate_history(400, seed=3)
    jobs = [history.job(job_id) for job_id in history.job_ids()]
    jobs = [job for job in jobs if job.get("status") != "registered"] + corpus()
    fast, slow = both(jobs)
    assert fast == slow
    refused = [job for job in jobs[:-len(ALL)] if decode(job) is None]
    assert len(refused) < 0.2 * len(jobs)
    # a history job is refused only when the slow path reads an older form (and notes it)
    assert all(read_job(job).normalised for job in refused)
    current = [name for name in (p.stem for p in ALL) if name.endswith("_current")]
    assert current and all(decode(load_payload(name)) is not None for name in current)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_job_with_one_value_no_column_holds_gives_the_same_errors_row_as_before(case: str) -> None:
    """The cases of test_unfit_values, as raw mappings (the typed decoder sees them first): the same message."""
    name, change, message = CASES[case]
    good, bad = load_payload(name), edit(name, change)
    flat = flatten_batch([good, bad], exported_at=AT)
    assert flat.errors == [("bad-job", message)]
    assert flat.tables["jobs"]["job_id"].to_pylist() == [good["job_id"]]
    fast, slow = both([good, bad])
    assert fast == slow


def test_what_the_decoder_refuses_is_read_into_a_result_object() -> None:
    current = load_payload("sampling_current")
    assert isinstance(read_job(current), TypedJob)
    for change in (lambda p: p.update(shots=2**63), lambda p: p.update(shots=-1), lambda p: p.update(shots=True),
                   lambda p: p.update(submitted_at="2024-01-01T00:00:00"),  # naive: read as UTC, with a note
                   lambda p: p["job_info"].update(program=["x"]),  # the oldest form
                   lambda p: p["job_info"]["result"]["sampling"].update(counts='{"0": 1}'),  # counts as text
                   lambda p: p["job_info"]["input"].update(program="OPENQASM 3;")):  # a lone program
        job = copy.deepcopy(current)
        change(job)
        assert decode(job) is None
        assert isinstance(read_job(job), OqtopusJobResult)


def test_the_limits_the_checks_name_are_the_declared_ones() -> None:
    assert (storable.INT64_MIN, storable.INT64_MAX) == (-(2**63), 2**63 - 1)
    assert (storable.INT32_MIN, storable.INT32_MAX) == (-(2**31), 2**31 - 1)
    assert storable.Count.__metadata__[0].le == storable.INT64_MAX


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_extreme_payloads_give_the_same_rows_and_errors_by_either_path(data: st.DataObject) -> None:
    jobs = [data.draw(payloads(i)) for i in range(data.draw(st.integers(1, 4)))]
    fast, slow = both(jobs)
    assert fast == slow


@pytest.mark.parametrize("when", [
    "2024-01-01T00:08:43.367464Z", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00Z", "2024-01-01T00:00:00.1234567Z", "2024-01-01T09:00:00+09:00", "2000-01-01T08:59:59+09:00",
    "2199-12-31T20:00:00-05:00", "2024-01-01Z", "2024-13-01T00:00:00Z", "20240101T000000Z", "0001-01-01T00:00:00+01:00",
    "2024-01-01T00:00:00", "2024-01-01 00:00:00Z", "",
])
def test_a_timestamp_is_read_alike_by_either_path(when: str) -> None:
    job = load_payload("sampling_current")
    job["submitted_at"] = job["ended_at"] = when
    fast, slow = both([job])
    assert fast == slow


def test_json_text_remembered_by_value_gives_each_value_its_own_text() -> None:
    values = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": None}, {"a": float("nan")}, {"a": -0.0}, {"a": 0.0},
              {"b": 1, "a": 2}, {"a": 2, "b": 1}, [1, 2], {"a": 2**63}, {"a": 2**70}, {"a": "x"}]
    expected = [json.dumps(v, sort_keys=True, ensure_ascii=False) for v in values]
    assert [storable.json_text(v, "f") for v in values] == expected
    assert [storable.json_text(v, "f") for v in values] == expected  # the second time, from memory
    for _ in range(2):
        with pytest.raises(storable.Unstorable, match="f is not valid UTF-8"):
            storable.json_text({"a": "\udc00"}, "f")


@pytest.mark.parametrize("job_type", ["estimation", "sse", "sampling"])
@pytest.mark.parametrize("change", [
    lambda e, o: e.update(exp_value=[0.5]), lambda e, o: e.update(exp_value=[0.5, -0.25], stds=[0.1, 0.2]),
    lambda e, o: e.update(stds=[3]), lambda e, o: o[1].update(coeff=[0.5, 1.5]), lambda e, o: o[0].update(coeff=[2]),
    lambda e, o: (e.update(exp_value=[1, 2]), o[0].update(coeff=[1e308, -1e308])),
    lambda e, o: e.update(exp_value=[1.0, 1e400]), lambda e, o: e.update(exp_value=[1.0, 2.0, 3.0]),
])
def test_numbers_sent_as_lists_are_read_and_noted_alike_by_either_path(job_type: str, change: Any) -> None:
    """The server's schema sends exp_value, stds and coefficients as lists of 1 or 2 numbers."""
    job = load_payload("estimation_current")
    job["job_type"] = job_type
    change(job["job_info"]["result"]["estimation"], job["job_info"]["input"]["operator"])
    fast, slow = both([job])
    assert fast == slow
