"""Malformed payloads and archives, served on purpose: one `errors` row each, the rest of the export complete."""

from __future__ import annotations

from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import MALFORMED_KINDS, FakeCloud

# Where each kind of damage is caught, and a phrase the message must carry so a user knows what is wrong.
EXPECTED = {
    "missing_field": ("parse", "shots"),
    "bad_job_type": ("parse", "job_type"),
    "bad_status": ("parse", "status"),
    "absurd_timestamp": ("parse", "date-time"),
    "invalid_bitstring": ("flatten", "invalid bitstring"),
    "non_integer_count": ("flatten", "not an integer"),
    "negative_count": ("flatten", "negative count"),
    "zip_no_entry": ("archive", "no entry"),
    "zip_two_entries": ("archive", "2 entries"),
    "invalid_json": ("archive", "JSON"),
    "json_not_object": ("archive", "object"),
    "non_utf8": ("archive", "UTF-8"),
    "oversized_archive": ("archive", "limit"),
    "zip_bomb": ("archive", "limit"),
    "archive_never_arrives": ("archive", "500"),
}


def test_each_malformed_job_is_one_error_row_and_the_rest_is_complete(tmp_path):
    assert set(EXPECTED) == set(MALFORMED_KINDS)
    with FakeCloud(n_jobs=150, seed=12) as cloud:
        done = [j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded"
                and cloud.history.job(j)["job_type"] in ("sampling", "multi_manual")]
        victims = dict(zip(done, MALFORMED_KINDS, strict=False))
        cloud.faults.malformed.update(victims)
        creds = Credentials(url=cloud.url, token=cloud.token)
        with ApiClient(creds, workers=4, max_tries=2, backoff=0.001, archive_limit=2 * 2**20) as api:
            report = export(api, tmp_path / "out", ExportOptions(page_size=40))
        assert len(report.errors) == len(victims)
        rows = connect(tmp_path / "out").execute("SELECT job_id, stage, message FROM errors").fetchall()
        assert len(rows) == len(victims)
        for job_id, stage, message in rows:
            kind = victims[job_id]
            want_stage, phrase = EXPECTED[kind]
            assert stage == want_stage, (kind, stage, message)
            assert phrase.lower() in message.lower(), (kind, message)
            assert cloud.token not in message and "X-Amz-Signature" not in message
        # No partial rows of a bad job anywhere; every good job whole.
        assert_matches_ground_truth(tmp_path / "out", cloud, exclude=victims)
