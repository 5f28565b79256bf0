"""The reconcile on an object store: a job confirmed deleted leaves the final files, which are rewritten there."""

from __future__ import annotations

from groundtruth import assert_matches_ground_truth

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud

pytest_plugins = ["s3server"]  # the `s3` fixture: moto's server on 127.0.0.1


def test_verify_drops_a_deleted_jobs_final_rows_from_files_on_s3(s3, monkeypatch):
    for key, value in s3.env().items():
        if key.startswith("AWS_"):  # the fake credentials, for this process's own S3 client
            monkeypatch.setenv(key, value)
    url = f"s3://{s3.bucket()}/exports/verify"
    with FakeCloud(n_jobs=60, seed=9) as cloud:
        def run(**options):
            with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=4) as api:
                return export(api, url, ExportOptions(**options), storage_options=s3.options)

        assert run().ok
        (victim,) = cloud.delete_oldest(1)
        report = run(verify=True)
        assert report.ok and report.gone == [victim]
        assert_matches_ground_truth(url, cloud, storage_options=s3.options)
