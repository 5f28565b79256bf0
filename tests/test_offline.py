"""Result objects and counts rebuilt from an export alone: every payload of the corpus, exported and loaded back,
answers every accessor of the SDK's API as `result_from_raw` does on the payload itself."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from test_sdk_parity import ALL, PARITY, build_sdk, canon, models, observe

import oqtopus_data
from oqtopus_data.query.offline import JobNotFound, counts, load_result, load_results
from oqtopus_data.results.objects import result_from_raw

#: What the dataset does not record, so cannot give back: an empty `sampling` object (no count rows, no column), an
#: empty divided_counts (an SSE job's class then follows its counts alone), and the operator of an estimation job
#: without a result (the flattener stores operators in `estimations`, which has a row only with a result).
NOT_RECORDED = {"sampling_no_counts": ("sampling",), "sse_empty_divided_counts": ("get_job_result", "sampling"),
                "estimation_cancelled": ("operator",),
                # an operator coeff sent as [x] is stored as x (noted in `normalised`): the input comes back so
                "tolerant_exp_value_list_of_one": ("input",)}


JOB_INFO_FORM = ("input", "program", "operator", "sse_log")


def payloads() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in ALL]


def built(payload: dict[str, Any]) -> Any:
    try:
        return result_from_raw(payload)
    except ValueError as exc:
        return exc


@pytest.mark.parametrize(("name", "payload"), payloads(), ids=[n for n, _ in payloads()])
def test_every_payload_loads_back_as_result_from_raw_reads_it(tmp_path: Path, name: str,
                                                              payload: dict[str, Any]) -> None:
    corpus = tmp_path / "export"
    oqtopus_data.write_dataset(oqtopus_data.flatten([payload]), corpus)
    original = built(payload)
    job_id = payload.get("job_id")
    exported = oqtopus_data.read(corpus, "jobs").filter(job_id=job_id).height if isinstance(job_id, str) else 0
    if not exported:  # refused by result_from_raw, or by the flattener: load_result says why
        assert isinstance(original, ValueError) or name.startswith(("sampling_invalid", "multi_manual_invalid"))
        if isinstance(job_id, str):
            with pytest.raises(JobNotFound, match=f"job {job_id} is not in the export"):
                load_result(corpus, job_id)
        return
    loaded = load_result(corpus, job_id)
    assert type(loaded) is type(original)
    mine, theirs = observe(loaded), observe(original)
    for key in NOT_RECORDED.get(name, ()):
        mine.pop(key, None), theirs.pop(key, None)
    assert mine == theirs
    if any(p.stem == name for p in PARITY):  # and so as the official SDK reads the payload
        sdk = observe(build_sdk(models.JobsJob.from_dict(payload)))
        for key in NOT_RECORDED.get(name, ()):
            sdk.pop(key, None)
        assert mine == sdk
    assert loaded.normalised == original.normalised
    for key in ("program", "operator", "sse_program", "transpile_result", "message", "combined_program", "extra"):
        if key not in NOT_RECORDED.get(name, ()):
            assert getattr(loaded, key) == getattr(original, key), key
    # job_info comes back in the current form: the input under `input` (the oldest form had it inline), a lone
    # program string as a list of one, and without the presigned sse_log URL (a secret, never stored).
    rebuilt = {k: v for k, v in canon(loaded.job_info).items() if k not in JOB_INFO_FORM}
    sent = {k: v for k, v in canon(original.job_info).items() if k not in JOB_INFO_FORM}
    if name not in NOT_RECORDED:
        assert rebuilt == sent
        expected = canon(original.input)
        if original.program is not None:
            expected = {**expected, "program": original.program}
        assert canon(loaded.input) == expected


# -- against the local cloud -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """An export of 120 jobs of the local cloud, SSE logs included, and every job's payload as the API gives it."""
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.run.export import ExportOptions, export
    from oqtopus_data.testing import FakeCloud

    out = tmp_path_factory.mktemp("cloud") / "out"
    with FakeCloud(n_jobs=120, seed=7) as cloud, ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api:
        assert export(api, out, ExportOptions(page_size=50, sse_logs=True)).ok
        jobs = {job_id: cloud.history.job(job_id) for job_id in cloud.history.job_ids()}
    return out, {job_id: job for job_id, job in jobs.items() if job["status"] != "registered"}


def test_load_results_gives_every_exported_job_as_the_api_payload_reads(cloud_export: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out, jobs = cloud_export
    monkeypatch.setattr("oqtopus_data.query.offline.BATCH", 7)  # several batches
    loaded = list(load_results(out))
    assert sorted(r.job_id for r in loaded) == sorted(jobs)
    submitted = [r.submitted_at for r in loaded]
    assert submitted == sorted(submitted)
    for result in loaded:
        original = result_from_raw(jobs[result.job_id])
        original_view, loaded_view = observe(original), observe(result)
        assert loaded_view == original_view, result.job_id
        assert result.transpile_result == original.transpile_result


def test_load_results_selects_by_type_device_status_and_time(cloud_export: Any) -> None:
    out, jobs = cloud_export
    some = sorted(jobs)[:5]
    assert sorted(r.job_id for r in load_results(out, [*some, "no-such-job"])) == some
    picked = list(load_results(out, job_type=["sampling", "sse"], status="succeeded"))
    assert picked and all(r.job_type in ("sampling", "sse") and r.status == "succeeded" for r in picked)
    assert len(picked) == sum(1 for j in jobs.values() if j["job_type"] in ("sampling", "sse")
                              and j["status"] == "succeeded")
    middle = sorted(r.submitted_at for r in load_results(out))[len(jobs) // 2]
    device = jobs[some[0]]["device_id"]
    late = list(load_results(out, device=device, since=middle))
    assert late and all(r.submitted_at >= middle and r.device_id == device for r in late)
    assert all(r.submitted_at <= middle for r in load_results(out, until=middle))
    naive = middle.astimezone(UTC).replace(tzinfo=None)  # a naive bound is UTC
    assert [r.job_id for r in load_results(out, since=naive)] == [r.job_id for r in load_results(out, since=middle)]


def test_an_sse_job_reads_its_exported_log(cloud_export: Any) -> None:
    out, jobs = cloud_export
    sse = [j for j in jobs.values() if j["job_type"] == "sse" and j["status"] in ("succeeded", "failed")]
    assert sse
    result = load_result(out, sse[0]["job_id"])
    assert result.is_sse()
    text = result.read_log_text()
    assert "===== sse_log.log =====" in text and "INFO start" in text
    assert result.download_log()[:2] == b"PK"


def test_counts_are_the_api_keys_and_sub_results(cloud_export: Any) -> None:
    out, jobs = cloud_export
    for job in jobs.values():
        result = (job["job_info"].get("result") or {}).get("sampling") or {}
        assert counts(out, job["job_id"]) == result.get("counts", {})
        for index, sub in (result.get("divided_counts") or {}).items():
            assert counts(out, job["job_id"], sub_result=int(index)) == sub
    assert any(j["job_type"] == "multi_manual" for j in jobs.values())


def test_counts_keep_every_key_form_as_sent(tmp_path: Path) -> None:
    payload = dict(payloads())["sampling_bitstring_key_forms"]
    oqtopus_data.write_dataset(oqtopus_data.flatten([payload]), tmp_path / "out")
    sent = payload["job_info"]["result"]["sampling"]["counts"]
    got = counts(tmp_path / "out", payload["job_id"])
    assert (got, list(got)) == (sent, list(sent))


def test_an_unknown_job_is_a_clear_error(tmp_path: Path) -> None:
    bad = dict(payloads())["sampling_invalid_key_letters"]
    oqtopus_data.write_dataset(oqtopus_data.flatten([bad]), tmp_path / "out")
    with pytest.raises(JobNotFound, match=f"job {bad['job_id']} is not in the export: its flatten failed "
                                          r"\(invalid bitstring"):
        counts(tmp_path / "out", bad["job_id"])
    with pytest.raises(JobNotFound, match=r"job nope is not in the export$"):
        load_result(tmp_path / "out", "nope")
