"""The export library end to end against the local OQTOPUS Cloud: every job once, whatever the server does."""

from __future__ import annotations

import pytest
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.errors import AuthError, ConfigError
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud, Faults

FAST = {"max_tries": 8, "backoff": 0.001, "max_backoff": 0.01}


def run(cloud: FakeCloud, out, options: ExportOptions | None = None, **client):
    creds = Credentials(url=cloud.url, token=cloud.token)
    with ApiClient(creds, workers=8, **{**FAST, **client}) as api:
        return export(api, out, options or ExportOptions(page_size=50))


@pytest.mark.parametrize("faults", [
    Faults(),
    Faults(rate_limit_every=7),
    Faults(error_every=9),
    Faults(drop_every=11),
    Faults(expire_first_download=True),
    Faults(page_size_cap=17),
    Faults(add_during_listing=25, delete_during_listing=25),
], ids=["clean", "429", "500", "dropped", "expired-urls", "page-cap", "churn"])
def test_every_job_exported_once_whatever_the_server_does(tmp_path, faults):
    with FakeCloud(n_jobs=300, seed=3, faults=faults) as cloud:
        report = run(cloud, tmp_path / "out")
        assert report.ok, report.errors[:3]
        assert_matches_ground_truth(tmp_path / "out", cloud, may_also_hold=cloud.deleted_ids)
        if faults.add_during_listing:
            ids = {r[0] for r in connect(tmp_path / "out").execute("SELECT job_id FROM jobs").fetchall()}
            assert set(cloud.added_ids) <= ids


def test_legacy_inline_payloads_export_like_the_current_form(tmp_path):
    with FakeCloud(n_jobs=200, seed=5, legacy=True) as cloud:
        assert run(cloud, tmp_path / "out").ok
        assert_matches_ground_truth(tmp_path / "out", cloud)
        assert cloud.requests["storage"] == 0
        notes = connect(tmp_path / "out").execute("SELECT count(*) FROM jobs WHERE len(normalised) > 0").fetchone()
        assert notes[0] > 0


def test_a_job_whose_archive_never_arrives_is_an_error_row_and_the_rest_completes(tmp_path):
    with FakeCloud(n_jobs=120, seed=1) as cloud:
        victim = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
        cloud.faults.malformed[victim] = "archive_never_arrives"
        report = run(cloud, tmp_path / "out", max_tries=2)
        assert not report.ok
        assert [(e[0], e[1]) for e in report.errors] == [(victim, "archive")]
        con = connect(tmp_path / "out")
        assert con.execute("SELECT job_id, stage FROM errors").fetchall() == [(victim, "archive")]
        assert_matches_ground_truth(tmp_path / "out", cloud, exclude=[victim])
        # The server heals: the next run retries the job and clears its error.
        del cloud.faults.malformed[victim]
        assert run(cloud, tmp_path / "out").ok
        assert connect(tmp_path / "out").execute("SELECT count(*) FROM errors").fetchone() == (0,)
        assert_matches_ground_truth(tmp_path / "out", cloud)


def test_a_refused_token_stops_the_run_and_leaves_nothing(tmp_path):
    with FakeCloud(n_jobs=20) as cloud:
        creds = Credentials(url=cloud.url, token="wrong-token")
        with ApiClient(creds) as api, pytest.raises(AuthError):
            export(api, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_filters_keep_only_matching_jobs(tmp_path):
    with FakeCloud(n_jobs=200, seed=2) as cloud:
        run(cloud, tmp_path / "out", ExportOptions(devices=("Kawasaki",), statuses=("succeeded",)))
        rows = connect(tmp_path / "out").execute("SELECT DISTINCT device_id, status FROM jobs").fetchall()
        assert rows == [("Kawasaki", "succeeded")]
        truth = [j for j in cloud.history.job_ids()
                 if cloud.history.status(j) == "succeeded" and cloud.history.job(j)["device_id"] == "Kawasaki"]
        assert connect(tmp_path / "out").execute("SELECT count(*) FROM jobs").fetchone() == (len(truth),)


@pytest.mark.parametrize(("device", "hint"), [("kawasaki", "did you mean Kawasaki?"),
                                              ("Kawasak1", "did you mean Kawasaki?"), ("Osaka", "")])
def test_an_unknown_device_is_refused_before_anything_is_written(tmp_path, device, hint):
    with (FakeCloud(n_jobs=20) as cloud, ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api,
          pytest.raises(ConfigError) as caught):
        export(api, tmp_path / "out", ExportOptions(devices=(device,)))
    assert str(caught.value).startswith(f"--device {device}: no such device{'; ' + hint if hint else ''} (devices: ")
    assert not (tmp_path / "out").exists()
