"""What our result objects add to the SDK's API: tolerant reading, helpers, safe SSE logs.

Parity with the SDK itself is in test_sdk_parity.py.
"""

from __future__ import annotations

import base64
import enum
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from oqtopus_data.results.objects import (
    JobStatus,
    JobType,
    OqtopusEstimationJobResult,
    OqtopusJobResult,
    OqtopusMultiManualJobResult,
    OqtopusSamplingJobResult,
    OqtopusSseJobResult,
    bitstring_to_int,
    result_from_raw,
)

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


class FakeClient:
    """Stands in for the SDK's client: only `get_sselog(job_id)` is used."""

    def __init__(self, archive: bytes, file_name: str | None = "sselog.zip", *, as_object=False):
        self.body = {"file": base64.b64encode(archive).decode(), "file_name": file_name}
        self.as_object = as_object
        self.calls: list[str] = []

    def get_sselog(self, job_id: str) -> Any:
        self.calls.append(job_id)
        return SimpleNamespace(**self.body) if self.as_object else dict(self.body)


def sse_result(client: Any) -> OqtopusSseJobResult:
    result = result_from_raw(load("sse_sampling"), client)
    assert isinstance(result, OqtopusSseJobResult)
    return result


# --- tolerant reading of older payloads ---------------------------------------------------------


def test_counts_sent_as_json_text_are_parsed_and_noted() -> None:
    result = result_from_raw(load("tolerant_counts_json_string"))
    assert result.get_counts() == {"00": 503, "11": 497}
    assert result.counts_with_integer_keys() == {"counts": {0: 503, 3: 497}, "divided_counts": {}}
    assert result.normalised == ["counts: parsed from a JSON string"]
    assert result.raw["job_info"]["result"]["sampling"]["counts"] == '{"00": 503, "11": 497}'


def test_divided_counts_sent_as_json_text_are_parsed_and_noted() -> None:
    whole = result_from_raw(load("tolerant_divided_counts_json_string"))
    parts = result_from_raw(load("tolerant_sub_counts_json_string"))
    expected = {"0": {0: 500, 3: 500}, "1": {1: 1000}}
    assert isinstance(whole, OqtopusMultiManualJobResult)
    assert whole.get_divided_counts() == parts.get_divided_counts() == expected
    assert whole.normalised == [
        "counts: parsed from a JSON string", "divided_counts: parsed from a JSON string"]
    assert parts.normalised == [
        "divided_counts[0]: parsed from a JSON string",
        "divided_counts[1]: parsed from a JSON string",
    ]


def test_counts_text_that_is_not_json_is_kept_noted_and_refused_as_integers() -> None:
    payload = load("tolerant_counts_json_string")
    payload["job_info"]["result"]["sampling"]["counts"] = "00: 503, 11: 497"
    result = result_from_raw(payload)
    assert result.normalised == ["counts: a string that is not JSON, left as is"]
    assert result.get_counts() == {}
    with pytest.raises(ValueError, match="counts is not a mapping"):
        result.counts_with_integer_keys()


def test_complex_exp_value_keeps_the_real_part_and_exposes_the_imaginary_one() -> None:
    result = result_from_raw(load("tolerant_exp_value_complex"))
    assert isinstance(result, OqtopusEstimationJobResult)
    assert (result.exp_value, result.exp_value_imag, result.stds) == (0.7523, -0.0012, 0.0104)
    assert result.estimation == {"exp_value": 0.7523, "stds": 0.0104}
    assert result.normalised == [
        "exp_value: [re, im] [0.7523, -0.0012], kept re, im in exp_value_imag",
        "stds: [re, im] [0.0104, 0.0], kept re, dropped im",
        "operator[0].coeff: [re, im] [1.0, 0.0], kept re, im in operator_coeff_imag",
    ]
    assert result.operator == [{"pauli": "X 0 X 1", "coeff": 1.0}]
    assert result.operator_coeff_imag == [0.0]


def test_a_list_of_one_number_is_read_as_that_real_number() -> None:
    """The server's schema declares exp_value and an operator coeff as a list of 1 or 2 numbers: `[x]` is x."""
    result = result_from_raw(load("tolerant_exp_value_list_of_one"))
    assert (result.exp_value, result.exp_value_imag, result.stds) == (0.42, None, 0.0231)
    assert result.estimation == {"exp_value": 0.42, "stds": 0.0231}
    assert result.normalised == [
        "exp_value: [x] [0.42], read as 0.42 (imaginary part 0)",
        "operator[0].coeff: [x] [1.0], read as 1.0 (imaginary part 0)",
    ]
    assert result.operator == [{"pauli": "X 0 X 1", "coeff": 1.0}, {"pauli": "Z 0 Z 1", "coeff": 0.5}]
    assert result.operator_coeff_imag is None


def test_plain_payloads_carry_no_notes_and_no_imaginary_part() -> None:
    result = result_from_raw(load("estimation_current"))
    assert result.normalised == []
    assert result.exp_value_imag is None


def test_a_lone_program_string_is_read_as_a_list_of_one() -> None:
    result = result_from_raw(load("tolerant_program_single_string"))
    assert result.program == [load("tolerant_program_single_string")["job_info"]["program"]]
    assert result.normalised == ["program: a single string, read as a list of one program"]


# --- input, program, operator, combined_program, raw --------------------------------------------


def test_input_helpers_read_the_current_form() -> None:
    payload = load("estimation_current")
    result = result_from_raw(payload)
    assert result.input == payload["job_info"]["input"]
    assert result.program == payload["job_info"]["input"]["program"]
    assert result.operator == [
        {"pauli": "X 0 X 1", "coeff": 1.0}, {"pauli": "Z 0 Z 1", "coeff": 0.5}]


def test_input_helpers_read_the_oldest_form_with_program_and_operator_in_job_info() -> None:
    payload = load("estimation_oldest_operator_in_job_info")
    result = result_from_raw(payload)
    program = payload["job_info"]["program"]
    assert result.input == {"program": program, "operator": [{"pauli": "Z 0 Z 1", "coeff": 1}]}
    assert result.program == program
    assert result.operator == [{"pauli": "Z 0 Z 1", "coeff": 1.0}]
    assert isinstance(result.operator[0]["coeff"], float)


def test_sse_input_and_jobs_without_input() -> None:
    assert result_from_raw(load("sse_sampling")).input == {
        "sse_program": load("sse_sampling")["job_info"]["input"]["sse_program"]}
    bare = result_from_raw({**load("sampling_current"), "job_info": {"result": None}})
    assert (bare.input, bare.program, bare.operator, bare.combined_program) == (None,) * 4


def test_combined_program_is_returned_as_sent() -> None:
    current = load("multi_manual_current")
    legacy = load("multi_manual_legacy_inline")
    assert result_from_raw(current).combined_program == current["job_info"]["combined_program"]
    assert result_from_raw(legacy).combined_program == legacy["job_info"]["combined_program"]


def test_raw_is_the_mapping_given_to_from_raw_only() -> None:
    payload = load("sampling_current")
    assert result_from_raw(payload).raw is payload
    kwargs = {key: payload.get(key) for key in (
        "job_id", "job_type", "status", "name", "device_id", "shots", "job_info")}
    assert OqtopusSamplingJobResult(**kwargs).raw is None


def test_job_info_keeps_the_oldest_forms_program_and_adds_message() -> None:
    payload = load("sampling_oldest_program_in_job_info")
    assert result_from_raw(payload).job_info == {**payload["job_info"], "message": None}


# --- timestamps ----------------------------------------------------------------------------------


def test_timestamps_are_always_timezone_aware() -> None:
    utc = result_from_raw(load("sampling_current"))
    naive = result_from_raw(load("estimation_oldest_operator_in_job_info"))
    offset = result_from_raw(load("sampling_legacy_inline"))
    assert utc.submitted_at == datetime(2025, 3, 4, 9, 12, 31, 204000, tzinfo=UTC)
    assert naive.submitted_at == datetime(2023, 9, 19, 7, 20, tzinfo=UTC)
    assert naive.ready_at is None
    assert offset.ended_at.utcoffset() == timedelta(hours=9)
    assert offset.ended_at == datetime(2024, 6, 11, 9, 3, 57, 419000, tzinfo=UTC)


def test_datetime_arguments_are_made_aware_and_bad_text_is_refused() -> None:
    payload = load("sampling_current")
    tokyo = timezone(timedelta(hours=9))
    result = result_from_raw({**payload, "submitted_at": datetime(2025, 1, 2, 3, 4),
                              "ended_at": datetime(2025, 1, 2, 12, 0, tzinfo=tokyo)})
    assert result.submitted_at == datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    assert result.ended_at.tzinfo is tokyo
    with pytest.raises(ValueError, match="ready_at is not an ISO-8601 date-time"):
        result_from_raw({**payload, "ready_at": "yesterday"})
    with pytest.raises(ValueError, match="running_at is not a date-time"):
        result_from_raw({**payload, "running_at": 1700000000})


# --- class choice, enums, bitstrings -------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [
    ("sampling_current", OqtopusSamplingJobResult),
    ("estimation_current", OqtopusEstimationJobResult),
    ("multi_manual_current", OqtopusMultiManualJobResult),
    ("sse_sampling", OqtopusSseJobResult),
])
def test_result_from_raw_picks_the_class_by_job_type(name: str, cls: type) -> None:
    assert type(result_from_raw(load(name))) is cls


def test_result_from_raw_refuses_an_unknown_or_missing_job_type() -> None:
    with pytest.raises(ValueError, match="Invalid job_type: 'annealing'"):
        result_from_raw(load("rejected_unknown_job_type"))
    with pytest.raises(ValueError, match=r"missing required fields: job_type$"):
        result_from_raw(load("missing_job_type"))
    with pytest.raises(ValueError, match="fields: job_type, name, device_id, shots, job_info"):
        result_from_raw(load("missing_registered_job"))


def test_enums_are_str_enums_and_sdk_enums_are_accepted() -> None:
    result = result_from_raw(load("estimation_current"))
    assert result.job_type is JobType.ESTIMATION and result.job_type == "estimation"
    assert result.status is JobStatus.SUCCEEDED

    class JobsJobType(str, enum.Enum):  # noqa: UP042 (shaped like the SDK's enum)
        MULTI_MANUAL = "multi_manual"

    payload = {**load("multi_manual_current"), "job_type": JobsJobType.MULTI_MANUAL}
    assert result_from_raw(payload).job_type is JobType.MULTI_MANUAL


def test_repr_names_the_class_and_job() -> None:
    assert repr(result_from_raw(load("sampling_current"))) == (
        "OqtopusSamplingJobResult(job_id='01JNGQ4W7C9Y1T2R3E5M8A6K0B')")
    base = result_from_raw(load("sse_failed_no_result")).get_job_result()
    assert repr(base) == ("OqtopusJobResult(job_id='01JNGW3D4E5F6G7H8J9K0L1M2N', "
                          "job_type=<JobType.SSE: 'sse'>, status=<JobStatus.FAILED: 'failed'>)")


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("0101", 5), ("0b0101", 5), (" 01 01 ", 5), ("01_01", 5), ("\t11\n", 3),
    ("1" * 70, 2**70 - 1),
])
def test_bitstring_to_int_reads_what_the_sdk_reads(text: str, value: int) -> None:
    assert bitstring_to_int(text) == value


@pytest.mark.parametrize("text", ["", "0b", "012", "ab", "0x1", "1\t0", "-1", "0b0b1"])
def test_bitstring_to_int_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="Invalid bitstring"):
        bitstring_to_int(text)


# --- SSE logs -------------------------------------------------------------------------------------

LOG = zip_of({"sse.log": "step 1\nstep 2\n", "worker/err.log": "warning: slow\n"})


@pytest.mark.parametrize("as_object", [False, True])
def test_download_log_returns_the_archive_bytes(as_object: bool) -> None:
    client = FakeClient(LOG, as_object=as_object)
    assert sse_result(client).download_log() == LOG
    assert client.calls == ["01JNGS8Y4S1K3W6X2D0B0PS5E7"]


def test_log_text_lists_each_file_and_show_log_prints_it() -> None:
    printed: list[str] = []
    text = sse_result(FakeClient(LOG)).show_log(print_fn=printed.append)
    assert text == "===== sse.log =====\nstep 1\nstep 2\n\n===== worker/err.log =====\nwarning: slow"
    assert printed == [text]
    assert sse_result(FakeClient(b"plain log\n")).read_log_text() == "plain log\n"
    assert sse_result(FakeClient(zip_of({}))).read_log_text() == ""


def test_log_operations_refuse_bad_use_and_bad_responses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need a client"):
        sse_result(None).download_log()
    with pytest.raises(ValueError, match="require persist=True"):
        sse_result(FakeClient(LOG)).download_log(save_dir=tmp_path)
    bad = FakeClient(LOG)
    bad.body["file"] = "not base64!"
    with pytest.raises(ValueError, match="not valid base64"):
        sse_result(bad).download_log()
    bad.body["file"] = None
    with pytest.raises(ValueError, match="does not contain file data"):
        sse_result(bad).read_log_text()
    with pytest.raises(ValueError, match="does not exist"):
        sse_result(FakeClient(LOG)).download_log(persist=True, save_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="plain file name"):
        sse_result(FakeClient(LOG)).download_log(persist=True, save_dir=tmp_path, file_name="../x")


FALLBACK = "01JNGS8Y4S1K3W6X2D0B0PS5E7_sselog.zip"


@pytest.mark.parametrize(("server_name", "written"), [
    ("sselog_01JNGS8Y4S1K3W6X2D0B0PS5E7.zip", "sselog_01JNGS8Y4S1K3W6X2D0B0PS5E7.zip"),
    ("../escape.zip", "escape.zip"),
    ("../../../../../../tmp/escape.zip", "escape.zip"),
    ("/etc/cron.d/evil", "evil"),
    ("a/b.zip", "b.zip"),
    ("..\\..\\win.zip", "win.zip"),
    ("", FALLBACK),
    ("..", FALLBACK),
    ("logs/..", FALLBACK),
    ("x\x00.zip", FALLBACK),
    (None, FALLBACK),
])
def test_persisted_log_stays_inside_save_dir(
    tmp_path: Path, server_name: str | None, written: str
) -> None:
    save_dir = tmp_path / "logs"
    save_dir.mkdir()
    path = sse_result(FakeClient(LOG, server_name)).download_log(persist=True, save_dir=save_dir)
    assert path == str(save_dir / written)
    assert [p.name for p in save_dir.iterdir()] == [written]
    assert (save_dir / written).read_bytes() == LOG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


def test_persist_does_not_follow_a_symlink_out_of_save_dir(tmp_path: Path) -> None:
    save_dir, outside = tmp_path / "logs", tmp_path / "precious.txt"
    save_dir.mkdir()
    outside.write_text("keep me")
    (save_dir / "sselog.zip").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        sse_result(FakeClient(LOG)).download_log(persist=True, save_dir=save_dir, overwrite=True)
    assert outside.read_text() == "keep me"


def test_persist_overwrites_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sselog.zip").write_bytes(b"old")
    with pytest.raises(ValueError, match="already exists"):
        sse_result(FakeClient(LOG)).download_log(persist=True)
    assert (tmp_path / "sselog.zip").read_bytes() == b"old"
    path = sse_result(FakeClient(LOG)).download_log(persist=True, overwrite=True, file_name="sselog.zip")
    assert Path(path).read_bytes() == LOG


def test_get_job_result_keeps_the_client_and_the_notes() -> None:
    payload = load("sse_estimation_like")
    payload["job_info"]["result"]["estimation"]["exp_value"] = [-1.1372, 0.002]
    client = FakeClient(LOG)
    inner = result_from_raw(payload, client).get_job_result()
    assert type(inner) is OqtopusEstimationJobResult and inner.is_sse()
    assert (inner.exp_value, inner.exp_value_imag) == (-1.1372, 0.002)
    assert inner.normalised == result_from_raw(payload).normalised != []
    assert inner._client is client and inner.raw is payload
    assert type(result_from_raw(load("sse_failed_no_result")).get_job_result()) is OqtopusJobResult
