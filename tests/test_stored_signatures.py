"""Signatures never reach the dataset: a presigned URL quoted in a job's message or in an undeclared key is stored
without what signs it, wherever it stands in the text (issue 20 item 11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import load_payload

from oqtopus_data.redact import scrub_signatures
from oqtopus_data.results.objects import result_from_raw
from oqtopus_data.tables.flatten import error_rows, flatten

AT = datetime(2025, 6, 1, tzinfo=UTC)
SECRET = "c0ffee5ecret"
AWS = ("https://bucket.s3.ap-northeast-1.amazonaws.com/jobs/j1/result.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
       f"&X-Amz-Credential=AKIA{SECRET}%2F20250101%2Fap-northeast-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z"
       f"&X-Amz-Expires=900&X-Amz-Security-Token=FQo{SECRET}&X-Amz-SignedHeaders=host&X-Amz-Signature={SECRET}")


@pytest.mark.parametrize(("text", "stored"), [
    (f'download of "{AWS}" expired.', 'download of "https://bucket.s3.ap-northeast-1.amazonaws.com/jobs/j1/'
                                       'result.zip?<redacted>" expired.'),
    (f"it said X-Amz-Signature={SECRET} and stopped", "it said X-Amz-Signature=<redacted> and stopped"),
    (f"GCS answered for /b/o?X-Goog-Credential=sa%40p&X-Goog-Signature={SECRET}&X-Goog-Date=1 (403)",
     "GCS answered for /b/o?X-Goog-Credential=<redacted>&X-Goog-Signature=<redacted>&X-Goog-Date=1 (403)"),
    (f"blob https://acct.blob.core.windows.net/c/b.zip?sv=2021-08-06&se=2025&sig={SECRET}%3D: gone",
     "blob https://acct.blob.core.windows.net/c/b.zip?<redacted>: gone"),
    (f"sas sv=2021&sr=b&sig={SECRET}%2B%3D then", "sas sv=2021&sr=b&sig=<redacted> then"),
    (f"wrapped https%3A%2F%2Fh%2Fk%3FX-Amz-Credential%3DAKIA{SECRET}%26X-Amz-Signature%3D{SECRET}%26a%3D1 end",
     "wrapped https%3A%2F%2Fh%2Fk%3FX-Amz-Credential%3D<redacted>%26X-Amz-Signature%3D<redacted>%26a%3D1 end"),
    (f"twice https%253A%252F%252Fh%252Fk%253FX-Amz-Signature%253D{SECRET}%2526a", "twice https%253A%252F%252Fh%252F"
                                                                                  "k%253FX-Amz-Signature%253D<redacted>%2526a"),
    (f"https://cdn.example.com/sig={SECRET}/j/result.zip", "https://cdn.example.com/<redacted>/j/result.zip"),
    ("https://cdn.example.com/" + "a1B2" * 16 + "/result.zip", "https://cdn.example.com/<redacted>/result.zip"),
    (f"params {{'X-Amz-Signature': '{SECRET}', 'n': 1}}", "params {'X-Amz-Signature': '<redacted>', 'n': 1}"),
    ("ordinary text: config=1, https://example.com/docs/page, done.",
     "ordinary text: config=1, https://example.com/docs/page, done."),
])
def test_signatures_are_taken_out_wherever_they_stand_and_the_text_is_kept(text, stored):
    assert scrub_signatures(text) == stored


def test_a_presigned_url_in_a_message_or_an_undeclared_key_is_stored_without_its_signature():
    raw = load_payload("sampling_current")
    raw["job_info"]["message"] = f"archive {AWS} could not be read; retry later"
    raw["note"] = f"mirror: see {AWS}"  # an undeclared key: its value holds a URL after a space
    raw["links"] = {"log": f"https://cdn.example.com/logs/sig={SECRET}/j1.zip", "text": f"sig={SECRET} in it"}
    row = flatten([result_from_raw(raw)], exported_at=AT)["jobs"].to_pylist()[0]
    assert SECRET not in json.dumps(row, default=str)
    assert row["message"] == ("archive https://bucket.s3.ap-northeast-1.amazonaws.com/jobs/j1/result.zip?<redacted> "
                              "could not be read; retry later")
    extra = json.loads(row["extra"])
    assert extra["job"]["note"] == ("mirror: see https://bucket.s3.ap-northeast-1.amazonaws.com/jobs/j1/result.zip"
                                    "?<redacted>")
    assert extra["job"]["links"] == {"log": "https://cdn.example.com/logs/<redacted>/j1.zip",
                                     "text": "sig=<redacted> in it"}


def test_an_error_message_quoting_a_signature_is_stored_without_it():
    table = error_rows([("j1", "parse", f"bad value {AWS!r}")], AT)
    assert SECRET not in table["message"][0].as_py()
