"""Payloads with extreme values and odd Unicode (drawn by hypothesis, and served by an in-process API to a whole
export): reading and flattening never raise past the per-job error paths, every job ends in exactly one place (its
rows, or one `errors` row), and every table writes to Parquet."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from conftest import PAYLOADS, load_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data import connect, flatten
from oqtopus_data.errors import ApiError
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.times import parse_time

AT = datetime(2025, 6, 1, tzinfo=UTC)
GOOD = [p.stem for p in sorted(PAYLOADS.glob("*.json"))
        if not p.stem.startswith(("missing_", "rejected_")) and "invalid" not in p.stem]
LONE = st.sampled_from(["\udc00", "\ud800", "\udbff\u0041", "\udfff"])


def storable(job_id: str) -> str:
    """How the errors table stores an id (lone surrogates as \\u escapes)."""
    return job_id.encode("utf-8", "backslashreplace").decode("utf-8")


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


odd_text = st.one_of(
    st.text(max_size=8),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=3), LONE, st.text(max_size=3)),
    st.sampled_from(["", " ", "0b", "１０", "ﾟ", "\x00", "𝟘𝟙", "1" * 70]),
)
big_ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 2**31 - 1, 2**31, 2**64, 2**1024, 10**400]),
)
numbers = st.one_of(big_ints, st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([1e308, -1e308, 5e-324, -0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.one_of(
    st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(odd_text, inner, max_size=3)), max_leaves=8),
    st.integers(50, 3000).map(nested),
)
ODD = object()  # stands for a drawn key in a path
PATHS = [
    ("shots",), ("execution_time",), ("name",), ("description",), ("device_id",), ("job_type",), ("status",),
    ("submitted_at",), ("ended_at",), ("transpiler_info",), ("simulator_info",), ("mitigation_info",), (ODD,),
    ("job_info", "message"), ("job_info", ODD), ("job_info", "combined_program"),
    ("job_info", "input", "program"), ("job_info", "input", "operator"), ("job_info", "input", "sse_program"),
    ("job_info", "input", ODD), ("job_info", "result", ODD), ("job_info", "result", "sampling", "counts"),
    ("job_info", "result", "sampling", "counts", ODD), ("job_info", "result", "sampling", "divided_counts", ODD),
    ("job_info", "result", "sampling", "divided_counts", ODD, ODD), ("job_info", "result", "estimation", "exp_value"),
    ("job_info", "result", "estimation", "stds"), ("job_info", "transpile_result", "stats"),
    ("job_info", "transpile_result", ODD),
]


@st.composite
def payloads(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A corpus payload with a few values replaced by extreme ones, under an id that may itself be odd."""
    payload = load_payload(draw(st.sampled_from(GOOD)))
    for _ in range(draw(st.integers(0, 3))):
        path = [draw(odd_text) if part is ODD else part for part in draw(st.sampled_from(PATHS))]
        value = draw(big_ints if path[-2:-1] == ["counts"] or len(path) > 5 else json_values)
        target = payload
        for part in path[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[path[-1]] = value
    payload["job_id"] = f"job-{index}" + draw(st.sampled_from(["", "", "", "\udc80", "ü"]))
    return payload


def read_and_flatten(jobs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """What the export does with a batch: result_from_raw per job (ValueError/TypeError: a `parse` error, the
    documented path), then flatten; the ids each path gave."""
    results, parse_errors = [], []
    for job in jobs:
        try:
            results.append(result_from_raw(job))
        except (ValueError, TypeError):
            parse_errors.append(job["job_id"])
    return flatten(results, exported_at=AT), parse_errors


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_extreme_payloads_end_in_exactly_one_place_and_always_write(data: st.DataObject) -> None:
    jobs = [data.draw(payloads(i)) for i in range(data.draw(st.integers(1, 5)))]
    tables, parse_errors = read_and_flatten(jobs)  # neither reader changes its input
    for table in tables.values():
        pq.write_table(table, io.BytesIO())
    kept = tables["jobs"]["job_id"].to_pylist()
    failed = tables["errors"]["job_id"].to_pylist()
    assert sorted(kept + failed + parse_errors) == sorted(
        storable(j["job_id"]) if j["job_id"] not in parse_errors else j["job_id"] for j in jobs)
    for name in ("counts", "divided_counts", "estimations"):
        assert set(tables[name]["job_id"].to_pylist()) <= set(kept), name


# ------------------------------------------------------------------------------- a whole export, in process


class InlineApi:
    """An OQTOPUS Cloud serving its jobs inline (the legacy form, no archive URLs), with ApiClient's methods."""

    archive_limit = 2**20

    def __init__(self, jobs: list[dict[str, Any]], devices: list[Any]) -> None:
        self.jobs = {job["job_id"]: job for job in jobs}
        self.devices = devices

    def preflight(self) -> None:
        return None  # no account record, as a server without GET /users/me

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        start, end = parse_time(params.get("start_time")), parse_time(params.get("end_time"))
        chosen = sorted((job for job in self.jobs.values()
                         if (start is None or parse_time(job["submitted_at"]) >= start)
                         and (end is None or parse_time(job["submitted_at"]) <= end)),
                        key=lambda job: (parse_time(job["submitted_at"]), job["job_id"]))
        size, page = int(params.get("size", 100)), int(params.get("page", 1))
        return [dict(job) for job in chosen[(page - 1) * size:page * size]]  # the exporter copies deeper

    def get_job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise ApiError(f"GET /jobs/{job_id}: 404", status=404)
        return dict(self.jobs[job_id])

    def presigned(self, job_id: str | None, job: dict[str, Any], keys: Any, read: Any) -> tuple[dict[str, Any], dict]:
        urls = [key for key in keys if str((job.get("job_info") or {}).get(key, "")).startswith("http")]
        assert not urls, f"nothing here is served by URL: {urls}"
        return job, {}

    def get_devices(self) -> list[Any]:
        return [dict(d) for d in self.devices]


def inline(name: str, job_id: str, submitted: str) -> dict[str, Any]:
    payload = load_payload(name)
    payload.update(job_id=job_id, submitted_at=submitted)
    for key in ("ready_at", "running_at", "ended_at"):
        payload.pop(key, None)
    return payload


def test_an_export_commits_and_each_job_with_a_value_no_column_holds_is_one_error_row(tmp_path: Path) -> None:
    good = [inline(name, f"good-{i}", f"2025-03-0{1 + i % 9}T00:00:0{i % 10}Z")
            for i, name in enumerate(["sampling_current", "estimation_current", "multi_manual_current",
                                      "sse_sampling", "tolerant_exp_value_complex", "sampling_legacy_inline"])]
    bad = {
        "big-count": ("sampling_current",
                      lambda p: p["job_info"]["result"]["sampling"]["counts"].update({"11": 2**63})),
        "big-shots": ("sampling_current", lambda p: p.update(shots=2**64)),
        "inf-time": ("estimation_current", lambda p: p.update(execution_time=json.loads("1e400"))),
        "huge-stds": ("estimation_current", lambda p: p["job_info"]["result"]["estimation"].update(stds=10**400)),
        "big-sub": ("multi_manual_current",
                    lambda p: p["job_info"]["result"]["sampling"]["divided_counts"].update({str(2**31): {"0": 1}})),
        "odd-name": ("sampling_current", lambda p: p.update(name="bell\udc00")),
        "odd-key": ("sampling_current", lambda p: p["job_info"]["result"]["sampling"]["counts"].update({"\ud800": 1})),
        "deep-info": ("sampling_current", lambda p: p.update(mitigation_info=nested(4000))),
    }
    jobs = list(good)
    for i, (job_id, (name, change)) in enumerate(bad.items()):
        job = inline(name, job_id, f"2025-04-0{1 + i % 9}T00:00:00Z")
        change(job)
        jobs.append(job)
    devices = [{"device_id": "Kawasaki", "n_qubits": 64}, {"device_id": "Huge", "n_qubits": 2**70}]
    api = InlineApi(jobs, devices)
    out = tmp_path / "out"

    for run in range(2):  # the next run is not stopped by the same values either
        report = export(api, out, ExportOptions(workers=2, page_size=5))  # type: ignore[arg-type]
        assert report.version == run + 1
        con = connect(out)
        failed = dict(con.execute("SELECT job_id, stage FROM errors WHERE job_id IS NOT NULL").fetchall())
        assert failed == dict.fromkeys(bad, "flatten")
        kept = sorted(r[0] for r in con.execute("SELECT job_id FROM jobs").fetchall())
        assert kept == sorted(j["job_id"] for j in good)
        for table in ("counts", "divided_counts", "estimations"):
            ids = {r[0] for r in con.execute(f"SELECT DISTINCT job_id FROM {table}").fetchall()}
            assert ids <= set(kept), table
        # The device that does not fit is named; none of its values reach the devices table.
        noted = con.execute("SELECT message FROM errors WHERE stage = 'devices'").fetchall()
        assert len(noted) == 1 and "'Huge'" in noted[0][0] and "n_qubits" in noted[0][0]
        assert {r[0] for r in con.execute("SELECT device_id FROM devices").fetchall()} == {"Kawasaki"}
