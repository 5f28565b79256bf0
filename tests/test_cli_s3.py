"""Every reading command takes --storage-option and an s3:// location (issue 13), against moto's S3 server; an
unknown storage option is a usage error there as for a local directory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cli_support import run_data
from conftest import result

from oqtopus_data import flatten, write_dataset
from oqtopus_data.query.offline import JobNotFound, counts, load_result, load_results

pytest_plugins = ["s3server"]  # the `s3` fixture: moto's server on 127.0.0.1
AT = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def url(s3):
    """An export of two corpus jobs on S3, written with the endpoint from the environment (boto3's standard way)."""
    location = f"s3://{s3.bucket()}/cli"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
        write_dataset(flatten([result("sampling_current"), result("estimation_current")], exported_at=AT), location)
    return location


def on_s3(s3, *args):
    done = run_data(*args, "--storage-option", f"endpoint_url={s3.endpoint}")
    assert done.exit_code == 0, done.output
    return done


def test_info_and_sql_read_an_export_on_s3(s3, url):
    assert "rows: counts 4, estimations 1, jobs 2" in on_s3(s3, "info", url).stdout
    assert on_s3(s3, "sql", url, "SELECT count(*) AS n FROM counts").stdout.splitlines()[2] == "4"


def test_report_reads_an_export_on_s3(s3, url, tmp_path):
    done = on_s3(s3, "report", url, tmp_path / "r.html")
    assert done.stdout.startswith(f"wrote {tmp_path / 'r.html'}: ") and done.stdout.endswith(" over 2 jobs\n")
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_report_reads_an_export_on_s3_configured_by_the_environment(s3, url, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    done = run_data("report", url, tmp_path / "r.html")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"wrote {tmp_path / 'r.html'}: ") and done.stdout.endswith(" over 2 jobs\n")


def test_ddl_checks_the_export_on_s3_and_prints_its_location(s3, url):
    assert f"LOCATION '{url}/jobs'" in on_s3(s3, "ddl", url, "--engine", "spark").stdout


@pytest.mark.parametrize("command", [["info"], ["sql", "SELECT 1"], ["ddl", "--engine", "trino"]])
def test_an_unknown_storage_option_is_a_usage_error_for_s3(s3, url, command):
    done = run_data(command[0], url, *command[1:], "--storage-option", "tyop=1")
    assert done.exit_code == 2
    assert done.stderr.startswith("oqtopus-data: unknown storage option 'tyop' for s3://") and done.stdout == ""


def test_result_objects_and_counts_come_back_from_an_export_on_s3(s3, url):
    """load_result, load_results and counts take the storage options connect takes (they read with defaults only)."""
    job_ids = {result(name).job_id: name for name in ("sampling_current", "estimation_current")}
    for job_id, name in job_ids.items():
        loaded = load_result(url, job_id, **s3.options)
        assert type(loaded) is type(result(name)) and loaded.job_id == job_id
    assert {r.job_id for r in load_results(url, **s3.options)} == set(job_ids)
    sampling = result("sampling_current")
    assert counts(url, sampling.job_id, **s3.options) == sampling.get_counts()
    with pytest.raises(JobNotFound, match="job nope is not in the export"):
        load_result(url, "nope", **s3.options)
